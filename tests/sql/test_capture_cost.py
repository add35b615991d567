"""Change capture on the application's writes (issue 12, target 5): the trigger runs static SQL,
one statement per event and key column, with no subtransaction, into a queue of kind and keys
only. What that must keep: every watched table queues its own keys for every kind of write; a
session whose trigger planned its SQL before the key column changed queues the keys of the
column as it is now, or a full run, and its statement never fails; and a queue row of a kind the
run does not know (the queue no longer has a CHECK on kind) makes the run full."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.helpers.pipeline import one_journey, run

Conn = psycopg.Connection[dict[str, Any]]

# Each watched table with a key: a row to insert, the update and the delete of it, and the
# (kind, key) the three queue.
WRITES = {
    "patient_journey": (
        "INSERT INTO public.patient_journey (id, patient_id, journey_id) VALUES (7, 507, 1)",
        "UPDATE public.patient_journey SET operation_date = '2026-05-01' WHERE id = 7",
        "DELETE FROM public.patient_journey WHERE id = 7",
        ("patient_journey", 7),
    ),
    "survey_result": (
        "INSERT INTO public.survey_result (id, patient_journey_id, activity_id) VALUES (70, 1, 10)",
        "UPDATE public.survey_result SET score_value = 3 WHERE id = 70",
        "DELETE FROM public.survey_result WHERE id = 70",
        ("patient_journey", 1),
    ),
    "journey_activity": (
        "INSERT INTO public.journey_activity (journey_id, activity_id) VALUES (3, 10)",
        "UPDATE public.journey_activity SET activity_id = 11 WHERE journey_id = 3",
        "DELETE FROM public.journey_activity WHERE journey_id = 3",
        ("journey", 3),
    ),
    "activity": (
        "INSERT INTO public.activity (id, content_slug, schedule_id) VALUES (12, 'a', 100)",
        "UPDATE public.activity SET content_slug = 'b' WHERE id = 12",
        "DELETE FROM public.activity WHERE id = 12",
        ("activity", 12),
    ),
    "schedule": (
        "INSERT INTO public.schedule (id, slug) VALUES (101, 'op')",
        "UPDATE public.schedule SET slug = '1d-op' WHERE id = 101",
        "DELETE FROM public.schedule WHERE id = 101",
        ("schedule", 101),
    ),
}


def queued(db: Conn) -> list[tuple[str, list[int] | None]]:
    rows = db.execute("SELECT kind, keys FROM pipeline.change_queue").fetchall()
    return sorted(((r["kind"], r["keys"]) for r in rows), key=lambda q: (q[0], q[1] or []))


@pytest.mark.parametrize("table", list(WRITES))
def test_every_watched_table_queues_its_own_keys_for_each_kind_of_write(db: Conn, table: str) -> None:
    """Each table's key column has its static branch, for INSERT, UPDATE and DELETE: none of
    them falls back to a full run."""
    one_journey(db)
    run(db)
    *writes, (kind, key) = WRITES[table]
    for write, keys in zip(writes, ([key], [key, key], [key]), strict=True):
        db.execute(write)
        assert queued(db) == [(kind, keys)], write
        db.execute("DELETE FROM pipeline.change_queue")


def test_a_single_row_write_queues_its_keys_in_the_writers_own_transaction_not_a_subtransaction(
    db: Conn,
) -> None:
    """The trigger opens no subtransaction on the common path (an EXCEPTION block did, and its
    INSERT took a subtransaction id of its own): the queue row carries the writer's own xid."""
    one_journey(db)
    run(db)
    with db.transaction():
        db.execute("UPDATE public.patient_journey SET operation_date = '2026-05-02' WHERE id = 1")
        db.execute(WRITES["survey_result"][0])
        own = db.execute(
            "SELECT count(*) FILTER (WHERE q.xmin = pg_current_xact_id()::xid) AS own, count(*) AS queued "
            "FROM pipeline.change_queue AS q"
        ).fetchone()
    assert own == {"own": 2, "queued": 2}


def test_a_session_that_captured_before_its_key_column_was_swapped_queues_the_new_columns_keys(
    db: Conn, db_url: str
) -> None:
    """The tables' owner swaps the key column for another (renames) while a session of the
    application keeps the trigger's SQL planned for the old one: its next write queues the keys
    of the column now named id, never those of the old one; and once id is retyped to a type
    that is no integer, its writes still succeed and ask for a full run."""
    one_journey(db)
    run(db)
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as app:
        app.execute("UPDATE public.patient_journey SET operation_date = '2026-05-03' WHERE id = 1")
        app.execute("INSERT INTO public.patient_journey (id, patient_id, journey_id) VALUES (2, 502, 1)")
        app.execute("DELETE FROM public.patient_journey WHERE id = 2")
        db.execute("DELETE FROM pipeline.change_queue")
        db.execute(
            "ALTER TABLE public.patient_journey RENAME COLUMN id TO old_id;"
            "ALTER TABLE public.patient_journey RENAME COLUMN patient_id TO id"
        )
        app.execute("UPDATE public.patient_journey SET operation_date = '2026-05-04' WHERE old_id = 1")
        app.execute("INSERT INTO public.patient_journey (old_id, id, journey_id) VALUES (3, 503, 1)")
        app.execute("DELETE FROM public.patient_journey WHERE old_id = 3")
        assert queued(db) == [("patient_journey", keys) for keys in ([501, 501], [503], [503])]
        db.execute("DELETE FROM pipeline.change_queue")
        db.execute("ALTER TABLE public.patient_journey ALTER COLUMN id TYPE numeric")
        app.execute("UPDATE public.patient_journey SET operation_date = '2026-05-05' WHERE old_id = 1")
        app.execute("INSERT INTO public.patient_journey (old_id, id, journey_id) VALUES (4, 504.5, 1)")
        assert queued(db) == [("full", None), ("full", None)]


def test_a_queued_kind_the_run_does_not_know_makes_the_run_full(db: Conn) -> None:
    """The queue has no CHECK on kind any more (it cost every application statement): a row of
    a kind the run does not know is never dropped as if it were nothing; the run is full."""
    one_journey(db)
    run(db)
    db.execute("UPDATE public.patient_journey SET operation_date = '2026-05-06' WHERE id = 1")
    db.execute("INSERT INTO pipeline.change_queue (kind, keys) VALUES ('patient', '{1}')")
    assert run(db)["mode"] == "full"
    assert queued(db) == []


def test_a_key_column_of_a_domain_over_an_integer_type_still_queues_its_keys(db: Conn) -> None:
    """A key column whose type is a domain over bigint is read as the integer it is (a domain's
    CHECK runs on writes to the domain only), not turned into a full run."""
    one_journey(db)
    run(db)
    db.execute("CREATE DOMAIN public.schedule_key AS bigint CHECK (VALUE > 0)")
    db.execute("ALTER TABLE public.schedule ALTER COLUMN id TYPE public.schedule_key")
    db.execute("DELETE FROM pipeline.change_queue")
    insert, update, delete, _ = WRITES["schedule"]
    for write in (insert, update, delete):
        db.execute(write)
    assert queued(db) == [("schedule", [101]), ("schedule", [101]), ("schedule", [101, 101])]
