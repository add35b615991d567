"""Logical replication into the source tables, for real: a cluster of this module's own with
wal_level = logical, a publisher database and a subscriber database (the one the pipeline
runs in) subscribed to it. The apply worker fires row-level triggers enabled REPLICA or
ALWAYS, never a statement-level one, so replicated changes are either captured by the
row-level pipeline_capture_replica or, where it cannot fire, every run is a full one."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from pytools.cluster import SERVER_USER, LocalCluster, throwaway_cluster
from pytools.demo import create_roles
from pytools.migrations import migrate
from pytools.sql_files import sample_file
from tests.helpers.databases import grant_owner, with_params
from tests.helpers.pipeline import insert, one_journey, run, windows

pytestmark = pytest.mark.slow
_names = itertools.count()


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with throwaway_cluster({"wal_level": "logical"}, prefix="pjp-logical-") as own:
        with psycopg.connect(own.url(), autocommit=True) as conn:
            create_roles(conn)
        yield own


class Replication:
    """A publisher and a subscriber database with the app's tables and the same journey 1."""

    def __init__(self, cluster: LocalCluster, *, migrate_as: str) -> None:
        n = next(_names)
        self.cluster = cluster
        self.publisher_name, self.subscriber_name, self.slot = f"pub_{n}", f"sub_{n}", f"slot_{n}"
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            for name in (self.publisher_name, self.subscriber_name):
                conn.execute(f"CREATE DATABASE {name}")
        self.publisher = self._connect(self.publisher_name)
        self.subscriber = self._connect(self.subscriber_name)
        for conn in (self.publisher, self.subscriber):
            conn.execute(sample_file("source_tables.sql").read_text().encode())
            one_journey(conn)
        # No primary key on the app's tables: updates are published with the whole old row.
        self.publisher.execute("ALTER TABLE public.patient_journey REPLICA IDENTITY FULL")
        self.publisher.execute("CREATE PUBLICATION journeys FOR TABLE public.patient_journey")
        self.publisher.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (self.slot,))
        if migrate_as != SERVER_USER:
            grant_owner(self.subscriber, self.subscriber_name)
        self.migrated = migrate(with_params(cluster.url(self.subscriber_name), user=migrate_as))

    def _connect(self, name: str) -> psycopg.Connection[dict[str, Any]]:
        return psycopg.connect(self.cluster.url(name), autocommit=True, row_factory=dict_row)

    def subscribe(self) -> None:
        # The publisher is on this cluster: its slot exists already, so CREATE SUBSCRIPTION
        # must not wait for one to be created by a walsender of the same server.
        self.subscriber.execute(
            f"CREATE SUBSCRIPTION journeys_{self.slot} "
            f"CONNECTION 'host={self.cluster.datadir} port={self.cluster.port} dbname={self.publisher_name} "
            f"user={SERVER_USER}' PUBLICATION journeys "
            f"WITH (create_slot = false, slot_name = '{self.slot}', copy_data = false)"
        )

    def replicated(self, sql: str, until: str, timeout: float = 60.0) -> None:
        """Run `sql` on the publisher and wait until `until` holds on the subscriber."""
        self.publisher.execute(sql)
        deadline = time.monotonic() + timeout
        while not self.subscriber.execute(f"SELECT ({until}) AS done").fetchone()["done"]:
            assert time.monotonic() < deadline, f"not replicated within {timeout}s: {sql}"
            time.sleep(0.2)

    def unsubscribe(self) -> None:
        name = f"journeys_{self.slot}"
        if self.subscriber.execute("SELECT 1 FROM pg_subscription WHERE subname = %s", (name,)).fetchone():
            # Its slot stays (the walsender lets go of it later); the cluster goes with the module.
            self.subscriber.execute(f"ALTER SUBSCRIPTION {name} DISABLE")
            self.subscriber.execute(f"ALTER SUBSCRIPTION {name} SET (slot_name = NONE)")
            self.subscriber.execute(f"DROP SUBSCRIPTION {name}")

    def close(self) -> None:
        self.unsubscribe()
        self.publisher.close()
        self.subscriber.close()


@pytest.fixture
def as_tables_owner(cluster: LocalCluster) -> Iterator[Replication]:
    """migrate run by the tables' owner (here the superuser that created them)."""
    replication = Replication(cluster, migrate_as=SERVER_USER)
    yield replication
    replication.close()


@pytest.fixture
def as_pipeline_owner(cluster: LocalCluster) -> Iterator[Replication]:
    """migrate run as pipeline_owner, which does not own the tables (README "Roles")."""
    replication = Replication(cluster, migrate_as="pipeline_owner")
    yield replication
    replication.close()


def test_changes_published_to_a_source_table_are_captured_by_the_next_incremental_run(as_tables_owner):
    """The application writer, through logical replication: make a change go unnoticed."""
    rep, sub = as_tables_owner, as_tables_owner.subscriber
    assert rep.migrated.unwatched == [] and rep.migrated.capture_notes == []
    assert run(sub)["mode"] == "full"
    rep.subscribe()
    assert run(sub)["mode"] == "full"  # a subscription appeared: the queue could not have seen it coming
    rep.replicated(
        "INSERT INTO public.patient_journey (id, patient_id, journey_id, operation_date) "
        "VALUES (2, 502, 1, '2026-04-01')",
        until="EXISTS (SELECT FROM public.patient_journey WHERE id = 2)",
    )
    rep.replicated(
        "UPDATE public.patient_journey SET operation_date = '2026-05-01' WHERE id = 1",
        until="EXISTS (SELECT FROM public.patient_journey WHERE id = 1 AND operation_date = '2026-05-01')",
    )
    result = run(sub)
    assert (result["mode"], result["rows_inserted"], result["rows_updated"]) == ("incremental", 1, 1)
    assert {k: str(w["milestone_date"]) for k, w in windows(sub).items()} == {
        (1, 10): "2026-05-01",
        (2, 10): "2026-04-01",
    }
    rep.replicated("TRUNCATE public.patient_journey", until="NOT EXISTS (SELECT FROM public.patient_journey)")
    assert run(sub)["mode"] == "full"
    assert run(sub)["mode"] == "noop"
    # Dropped: one full run, since without a REPLICA trigger what it replicated just before the
    # drop would have gone unseen, and no run could tell afterwards.
    rep.unsubscribe()
    assert run(sub)["mode"] == "full"


def test_a_subscribed_table_whose_replicated_changes_fire_no_capture_trigger_makes_every_run_full(
    as_pipeline_owner,
):
    """The application writer, through logical replication, where pipeline_owner could not
    enable the row-level trigger REPLICA: the run cannot see replicated changes coming, so
    while the table is subscribed every run is full, and migrate says what fixes it."""
    rep, sub = as_pipeline_owner, as_pipeline_owner.subscriber
    assert rep.migrated.unwatched == []
    assert "public.patient_journey" in dict(rep.migrated.capture_notes)
    run(sub)
    rep.subscribe()
    again = migrate(with_params(rep.cluster.url(rep.subscriber_name), user="pipeline_owner"))
    [(table, problem)] = again.unwatched
    assert table == "public.patient_journey" and "a subscription replicates into it" in problem
    assert "ENABLE REPLICA TRIGGER pipeline_capture_replica" in problem
    for day in ("2026-05-01", "2026-05-02"):
        rep.replicated(
            f"UPDATE public.patient_journey SET operation_date = '{day}' WHERE id = 1",
            until=f"EXISTS (SELECT FROM public.patient_journey WHERE id = 1 AND operation_date = '{day}')",
        )
        result = run(sub)
        assert (result["mode"], result["rows_updated"]) == ("full", 1)
        assert str(windows(sub)[(1, 10)]["milestone_date"]) == day

    # The tables' owner runs what migrate named: one full run, then replicated changes are captured.
    sub.execute(problem.split("its owner can run ", 1)[1])
    assert run(sub)["mode"] == "full"
    rep.replicated(
        "UPDATE public.patient_journey SET operation_date = '2026-05-03' WHERE id = 1",
        until="EXISTS (SELECT FROM public.patient_journey WHERE id = 1 AND operation_date = '2026-05-03')",
    )
    result = run(sub)
    assert (result["mode"], result["rows_updated"]) == ("incremental", 1)
    insert(
        sub,
        "patient_journey",
        ["id", "patient_id", "journey_id", "operation_date"],
        [(3, 503, 1, "2026-06-01")],
    )
    assert (
        run(sub)["mode"] == "incremental"
    )  # the application's own writes still go through the statement triggers
