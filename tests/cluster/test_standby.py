"""A hot standby (pg_basebackup -R of a primary holding the pipeline, both clusters of this
test's own): a run there is refused at once, saying why and where to run it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import psycopg
import pytest

from pytools.cluster import SERVER_USER, LocalCluster, as_server_user, throwaway_cluster
from pytools.demo import create_roles
from pytools.migrations import migrate
from pytools.sql_files import sample_file
from tests.helpers.databases import with_params
from tests.helpers.pipeline import advisory_locks_held

pytestmark = pytest.mark.slow


def base_backup_of(primary: LocalCluster) -> Callable[[LocalCluster], None]:
    """Makes a cluster's data directory a streaming standby of `primary`."""

    def make(replica: LocalCluster) -> None:
        argv = [str(primary.bindir / "pg_basebackup"), "-h", str(primary.datadir), "-p", str(primary.port)]
        argv += ["-U", SERVER_USER, "-D", str(replica.datadir), "-R", "-X", "stream", "-c", "fast"]
        subprocess.run(as_server_user(argv), check=True, capture_output=True, timeout=120)

    return make


@pytest.fixture
def standby() -> Iterator[str]:
    """The URL of a hot standby of a primary holding the pipeline."""
    with throwaway_cluster(prefix="pjp-primary-") as primary:
        with psycopg.connect(primary.url(), autocommit=True) as conn:
            create_roles(conn)
            conn.execute(sample_file("source_tables.sql").read_text().encode())
        migrate(primary.url())
        with throwaway_cluster(prefix="pjp-standby-", make=base_backup_of(primary)) as replica:
            yield replica.url()


def test_a_run_on_a_standby_is_refused_saying_so(standby: str) -> None:
    """A DBA schedules the pipeline on a hot standby: the run refuses at once, saying why and
    where to run it, rather than failing on its first write."""
    with psycopg.connect(with_params(standby, user="pipeline_runner"), autocommit=True) as runner:
        assert runner.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        with pytest.raises(
            psycopg.errors.ReadOnlySqlTransaction, match="cannot run on a standby server"
        ) as refused:
            runner.execute("CALL pipeline.run_patient_journey_pipeline()")
        assert "run it on the primary" in (refused.value.diag.message_primary or "")
        assert advisory_locks_held(runner) == 0
