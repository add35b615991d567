"""One run at a time, and a run that dies leaves nothing half-written and is marked aborted."""

from __future__ import annotations

import time

import psycopg
from psycopg.rows import dict_row

from tests.helpers.pipeline import (
    advisory_locks_held,
    insert,
    run,
    run_in_thread,
    two_activity_journeys,
    wait_until_blocked,
    windows,
)


def test_a_run_that_starts_while_another_runs_is_skipped_at_once(db, db_url):
    two_activity_journeys(db, 50)
    blocker = psycopg.connect(db_url, row_factory=dict_row)
    blocker.execute("LOCK TABLE public.schedule IN ACCESS EXCLUSIVE MODE")  # holds run 1 mid-run
    first: dict = {}
    thread = run_in_thread(db_url, "first-run", first)
    wait_until_blocked(db, "first-run")

    started = time.monotonic()
    second = run(db)
    assert second["status"] == "skipped"
    assert time.monotonic() - started < 5, "a skipped run must not wait for the running one"
    assert "status" not in first, "the first run is still blocked, so the second did not wait for it"

    blocker.rollback()
    blocker.close()
    thread.join(30)
    assert first["status"] == "returned"
    statuses = [r["status"] for r in db.execute("SELECT status FROM pipeline.pipeline_runs ORDER BY run_id")]
    assert sorted(statuses) == ["skipped", "succeeded"]
    assert len(windows(db)) == 100
    dupes = db.execute(
        "SELECT count(*) AS n FROM (SELECT patient_journey_id, activity_id "
        "FROM pipeline.patient_journey_schedule_window GROUP BY 1, 2 HAVING count(*) > 1) AS d"
    ).fetchone()
    assert dupes["n"] == 0


def test_killed_run_leaves_nothing_half_written_and_next_run_marks_it_aborted(db, db_url, server):
    two_activity_journeys(db, 200)
    assert run(db)["rows_inserted"] == 400
    before = {k: (v["window_start_date"], v["updated_at"]) for k, v in windows(db).items()}

    # Every row will change and 100 journeys are new, so the run writes many rows before it
    # reaches the one row another session holds locked: it dies mid-upsert.
    db.execute("UPDATE public.patient_journey SET operation_date = operation_date + interval '7 days'")
    insert(
        db,
        "patient_journey",
        ["id", "patient_id", "journey_id", "operation_date"],
        [(i, 1000 + i, 1, "2026-06-01") for i in range(201, 301)],
    )
    blocker = psycopg.connect(db_url, row_factory=dict_row)
    blocker.execute(
        "SELECT 1 FROM pipeline.patient_journey_schedule_window "
        "WHERE patient_journey_id = 200 AND activity_id = 2 FOR UPDATE"
    )
    doomed: dict = {}
    thread = run_in_thread(db_url, "doomed-run", doomed)
    pid = wait_until_blocked(db, "doomed-run")
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    thread.join(30)
    blocker.rollback()
    blocker.close()
    assert doomed["status"] == "error"

    dead = db.execute("SELECT * FROM pipeline.pipeline_runs ORDER BY run_id DESC LIMIT 1").fetchone()
    assert dead["status"] == "running"
    after_kill = {k: (v["window_start_date"], v["updated_at"]) for k, v in windows(db).items()}
    assert after_kill == before, "the killed run's writes must all be rolled back"
    assert (
        db.execute(
            "SELECT count(*) AS n FROM pipeline.pipeline_failures WHERE run_id = %s", (dead["run_id"],)
        ).fetchone()["n"]
        == 0
    )

    recovered = run(db)
    assert recovered["status"] == "succeeded"
    assert (recovered["rows_inserted"], recovered["rows_updated"]) == (200, 400)
    aborted = db.execute(
        "SELECT * FROM pipeline.pipeline_runs WHERE run_id = %s", (dead["run_id"],)
    ).fetchone()
    assert aborted["status"] == "aborted"
    assert aborted["finished_at"] is not None and "session ended" in aborted["error_message"]


def test_a_running_row_is_not_aborted_while_its_run_is_alive(db, db_url):
    two_activity_journeys(db, 10)
    blocker = psycopg.connect(db_url, row_factory=dict_row)
    blocker.execute("LOCK TABLE public.schedule IN ACCESS EXCLUSIVE MODE")
    alive: dict = {}
    thread = run_in_thread(db_url, "alive-run", alive)
    wait_until_blocked(db, "alive-run")
    assert run(db)["status"] == "skipped"
    running = db.execute("SELECT count(*) AS n FROM pipeline.pipeline_runs WHERE status = 'running'")
    assert running.fetchone()["n"] == 1
    blocker.rollback()
    blocker.close()
    thread.join(30)
    assert latest_status(db) == "succeeded"


def latest_status(conn) -> str:
    row = conn.execute(
        "SELECT status FROM pipeline.pipeline_runs WHERE status <> 'skipped' ORDER BY run_id DESC LIMIT 1"
    ).fetchone()
    return str(row["status"])


def test_the_lock_is_released_after_each_run_in_the_same_session(db):
    two_activity_journeys(db, 5)
    assert [run(db)["status"] for _ in range(2)] == ["succeeded", "succeeded"]
    assert advisory_locks_held(db) == 0
