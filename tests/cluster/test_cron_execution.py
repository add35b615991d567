"""A real pg_cron execution: the scheduler runs the job in the test database, as the role that
may only run the pipeline, and reports success; a run that breaks shows as failed in
cron.job_run_details, data problems do not, and neither does a run that cannot even log its
failure go unnoticed."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import dict_row

from pytools import cron
from tests.helpers.databases import TEMPLATE, create_database, drop_database
from tests.helpers.pipeline import DISK_FULL, insert, one_journey

pytestmark = [pytest.mark.cron, pytest.mark.slow]


@pytest.fixture
def unloggable_db_url(server: str, template_url: str) -> Iterator[str]:
    """A migrated database whose pipeline_failures refuses every row, as on a full disk."""
    name = f"pjp_unloggable_{os.getpid()}"
    url = create_database(server, name, template=TEMPLATE)
    with psycopg.connect(url, autocommit=True) as conn:
        one_journey(conn, slug="7d-post-surgery")  # the run must write a failure row
        conn.execute(DISK_FULL)
        conn.execute(
            "CREATE TRIGGER pjp_disk_full BEFORE INSERT ON pipeline.pipeline_failures "
            "FOR EACH ROW EXECUTE FUNCTION public.pjp_disk_full()"
        )
    yield url
    drop_database(server, name)


def _job_details(server: str, jobid: int) -> list[dict]:
    with psycopg.connect(server, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT status, return_message FROM cron.job_run_details WHERE jobid = %s "
            "AND status IN ('succeeded', 'failed') ORDER BY runid",
            (jobid,),
        ).fetchall()


def test_pg_cron_runs_the_pipeline_and_reports_whether_the_run_worked(
    server, db, db_url, empty_db_url, unloggable_db_url
):
    # A healthy database with a data problem (a broken slug): the run succeeds.
    one_journey(db)
    insert(db, "schedule", ["id", "slug"], [(200, "7d-post-surgery")])
    insert(db, "activity", ["id", "content_slug", "schedule_id"], [(20, "broken", 200)])
    insert(db, "journey_activity", ["journey_id", "activity_id"], [(1, 20)])
    healthy = cron.schedule(db_url, "* * * * *", cron.default_job_name(db_url))
    assert healthy.username == "pipeline_runner"  # scheduled by a superuser, run as the runner

    # A database where the run itself breaks: the pipeline is installed, a source table is not.
    from pytools.migrations import migrate

    migrate(empty_db_url)
    broken = cron.schedule(empty_db_url, "* * * * *", cron.default_job_name(empty_db_url))
    # A database where the run breaks and cannot even log the failure.
    unloggable = cron.schedule(unloggable_db_url, "* * * * *", cron.default_job_name(unloggable_db_url))

    deadline = time.monotonic() + 150  # minute granularity: the next minute boundary, plus slack
    while time.monotonic() < deadline:
        if all(_job_details(server, job.jobid) for job in (healthy, broken, unloggable)):
            break
        time.sleep(2)
    healthy_runs = _job_details(server, healthy.jobid)
    broken_runs = _job_details(server, broken.jobid)
    unloggable_runs = _job_details(server, unloggable.jobid)
    cron.unschedule(db_url, healthy.jobname)
    cron.unschedule(empty_db_url, broken.jobname)
    cron.unschedule(unloggable_db_url, unloggable.jobname)

    assert healthy_runs and healthy_runs[0]["status"] == "succeeded", healthy_runs
    window = db.execute("SELECT count(*) AS n FROM pipeline.patient_journey_schedule_window").fetchone()
    assert window["n"] == 1
    run = db.execute("SELECT * FROM pipeline.pipeline_runs ORDER BY run_id LIMIT 1").fetchone()
    assert (run["trigger"], run["status"], run["failures"]) == ("cron", "succeeded", 1)
    assert run["run_by"] == "pipeline_runner"

    assert broken_runs and broken_runs[0]["status"] == "failed", broken_runs
    assert "pipeline run" in broken_runs[0]["return_message"]
    with psycopg.connect(empty_db_url, row_factory=dict_row) as conn:
        failed = conn.execute("SELECT * FROM pipeline.pipeline_runs ORDER BY run_id LIMIT 1").fetchone()
    assert (failed["trigger"], failed["status"]) == ("cron", "failed")

    assert unloggable_runs and unloggable_runs[0]["status"] == "failed", unloggable_runs
    assert "could not be logged" in unloggable_runs[0]["return_message"]
    with psycopg.connect(unloggable_db_url, row_factory=dict_row) as conn:
        unlogged = conn.execute("SELECT * FROM pipeline.pipeline_runs ORDER BY run_id LIMIT 1").fetchone()
    assert (unlogged["trigger"], unlogged["status"]) == ("cron", "failed")
    assert "No space left on device" in unlogged["error_message"]
