"""Runs and the application at the same time: a run blocks no application write, and many
runs (CLI and pg_cron) interleaved with application writes end where a fresh full run does."""

from __future__ import annotations

import itertools
import random
import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from pytools import cli, cron
from pytools.generate import generate
from tests.helpers.pipeline import (
    COMPARED,
    FAILURE_KEY,
    insert,
    one_journey,
    quiet,
    run,
    wait_until_blocked,
    windows,
)

# --- a run in progress blocks no application write -----------------------------------------

APPLICATION_WRITES = {
    "patient_journey": [
        "INSERT INTO public.patient_journey (id, patient_id, journey_id, operation_date) "
        "VALUES (9001, 9001, 1, DATE '2026-04-01')",
        "UPDATE public.patient_journey SET operation_date = operation_date + interval '1 day' WHERE id = 1",
        "DELETE FROM public.patient_journey WHERE id = 9001",
    ],
    "journey_activity": [
        "INSERT INTO public.journey_activity (journey_id, activity_id) VALUES (2, 10)",
        "UPDATE public.journey_activity SET journey_id = 3 WHERE journey_id = 2",
        "DELETE FROM public.journey_activity WHERE journey_id = 3",
    ],
    "activity": [
        "INSERT INTO public.activity (id, content_slug, schedule_id) VALUES (11, 'new', 100)",
        "UPDATE public.activity SET content_slug = 'renamed' WHERE id = 11",
        "DELETE FROM public.activity WHERE id = 11",
    ],
    "schedule": [
        "INSERT INTO public.schedule (id, slug) VALUES (101, '1d-7d-post-op')",
        "UPDATE public.schedule SET slug = '2d-7d-post-op' WHERE id = 101",
        "DELETE FROM public.schedule WHERE id = 101",
    ],
    "survey_result": [
        "INSERT INTO public.survey_result (id, patient_journey_id, activity_id) VALUES (1, 1, 10)",
        "UPDATE public.survey_result SET score_value = 3 WHERE id = 1",
        "DELETE FROM public.survey_result WHERE id = 1",
    ],
}


@pytest.mark.parametrize("full", [True, False], ids=["full", "incremental"])
def test_a_run_in_progress_blocks_no_application_write_to_a_source_table(db, db_url, full):
    one_journey(db, slug="7d-post-surgery")  # a failure row, to be purged later
    assert run(db)["failures"] == 1
    insert(
        db,
        "patient_journey",
        ["id", "patient_id", "journey_id", "operation_date"],
        [(i, i, 1, "2026-03-10") for i in range(2, 50)],
    )
    db.execute("UPDATE pipeline.pipeline_failures SET failed_at = now() - interval '1 year'")

    # The run is held at its last step, purging that old failure row: by then it has read every
    # source table in its transaction and holds whatever locks it took on them.
    blocker = psycopg.connect(db_url)
    blocker.execute("SELECT 1 FROM pipeline.pipeline_failures FOR UPDATE")
    outcome: dict = {}

    def held_run() -> None:
        with psycopg.connect(db_url, autocommit=True, application_name="held-run") as conn:
            conn.execute("CALL pipeline.run_patient_journey_pipeline('manual', %s)", (full,))
        outcome["status"] = "returned"

    thread = threading.Thread(target=held_run, daemon=True)
    thread.start()
    try:
        pid = wait_until_blocked(db, "held-run")
        held = db.execute(
            "SELECT c.relname, l.mode FROM pg_locks AS l JOIN pg_class AS c ON c.oid = l.relation "
            "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE l.pid = %s AND n.nspname = 'public' AND c.relkind = 'r'",
            (pid,),
        ).fetchall()
        assert "patient_journey" in {r["relname"] for r in held}, "the run has read the source tables"
        assert {r["mode"] for r in held} == {"AccessShareLock"}, held

        # The application's writes go through while the run holds on; a write that had to wait
        # for the run would fail on lock_timeout instead of hanging the test.
        with psycopg.connect(db_url, autocommit=True) as app:
            app.execute("SET lock_timeout = '10s'")
            for table, statements in APPLICATION_WRITES.items():
                for statement in statements:
                    try:
                        app.execute(statement)
                    except psycopg.errors.LockNotAvailable:
                        pytest.fail(f"a run in progress blocked the application's write to {table}")
        assert "status" not in outcome, "the run was still in progress during the writes"
    finally:
        blocker.rollback()
        blocker.close()
        thread.join(60)
    assert outcome.get("status") == "returned"
    statuses = [r["status"] for r in db.execute("SELECT status FROM pipeline.pipeline_runs ORDER BY run_id")]
    assert statuses == ["succeeded", "succeeded"]


# --- many runs, pg_cron and the application at once ----------------------------------------


def _application_writer(db_url: str, kind: str, seed: int, stop: threading.Event, errors: list) -> None:
    """Small application transactions on one kind of source row until `stop`; pairs are only
    added or changed, never removed, so the window table must end equal to a fresh full run."""
    rng = random.Random(seed)
    ids = itertools.count(1_000_000 + seed * 100_000)
    try:
        with psycopg.connect(db_url, autocommit=True, application_name=f"app-{kind}") as conn:
            while not stop.is_set():
                with conn.transaction():
                    if kind == "patient_journey":
                        new = next(ids)
                        operation = (
                            None if rng.random() < 0.2 else f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
                        )
                        conn.execute(
                            "INSERT INTO public.patient_journey "
                            "(id, patient_id, journey_id, registration_date, operation_date) "
                            "VALUES (%s, %s, %s, DATE '2026-01-05', %s)",
                            (new, new, rng.randint(1, 5), operation),
                        )
                        conn.execute(
                            "UPDATE public.patient_journey SET operation_date = coalesce(operation_date, "
                            "DATE '2026-02-01') + %s * interval '1 day', discharge_date = NULL WHERE id = %s",
                            (rng.randint(-9, 9), rng.randint(1, 300)),
                        )
                    elif kind == "journey_activity":
                        # The app creates a prescription, then fills in its activity.
                        conn.execute(
                            "INSERT INTO public.journey_activity (journey_id, activity_id) VALUES (%s, NULL)",
                            (rng.randint(1, 5),),
                        )
                        conn.execute(
                            "UPDATE public.journey_activity SET activity_id = %s WHERE ctid = "
                            "(SELECT ctid FROM public.journey_activity WHERE activity_id IS NULL LIMIT 1)",
                            (rng.randint(1, 205),),
                        )
                    else:
                        new = next(ids)
                        conn.execute(
                            "INSERT INTO public.survey_result (id, patient_journey_id, activity_id) "
                            "VALUES (%s, %s, NULL), (%s, %s, %s)",
                            (new, rng.randint(1, 300), -new, rng.randint(1, 300), rng.randint(1, 205)),
                        )
                        conn.execute(
                            "UPDATE public.survey_result SET activity_id = %s, score_value = 1 WHERE id = %s",
                            (rng.randint(1, 205), new),
                        )
                time.sleep(rng.uniform(0.01, 0.05))
    except psycopg.Error as exc:
        errors.append(f"application writer {kind}: {type(exc).__name__}: {exc}")


def _run_now_loop(db_url: str, seed: int, stop: threading.Event, exits: list, errors: list) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        try:
            exits.append(cli.main(["run-now", "--database-url", db_url, "--format", "json"]))
        except Exception as exc:
            errors.append(f"run-now: {type(exc).__name__}: {exc}")
        time.sleep(rng.uniform(0.05, 0.3))


def _cron_executions(server: str, jobid: int) -> list[dict]:
    with psycopg.connect(server, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT status, return_message FROM cron.job_run_details WHERE jobid = %s "
            "AND status IN ('succeeded', 'failed') ORDER BY runid",
            (jobid,),
        ).fetchall()


@pytest.mark.slow
@pytest.mark.cron
def test_eight_run_nows_the_cron_job_and_application_writes_end_equal_to_a_fresh_full_run(server, db, db_url):
    generate(db_url, 300, progress=quiet)  # not run yet: the first run is a full load into an empty table
    job = cron.schedule(db_url, "* * * * *", cron.default_job_name(db_url))
    # pg_cron starts jobs on the minute: start the load shortly before the next one.
    time.sleep(max(0.0, 50 - time.time() % 60))

    stop = threading.Event()
    errors: list[str] = []
    exits: list[int] = []
    threads = [
        threading.Thread(target=_application_writer, args=(db_url, kind, n, stop, errors), daemon=True)
        for n, kind in enumerate(("patient_journey", "journey_activity", "survey_result"))
    ] + [
        threading.Thread(target=_run_now_loop, args=(db_url, n, stop, exits, errors), daemon=True)
        for n in range(8)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 150
    try:
        while not _cron_executions(server, job.jobid) and time.monotonic() < deadline and not errors:
            time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        cron.unschedule(db_url, job.jobname)

    assert errors == []
    executions = _cron_executions(server, job.jobid)
    assert executions and {e["status"] for e in executions} == {"succeeded"}, executions
    assert exits and set(exits) == {0}, exits
    runs = db.execute("SELECT trigger, status, error_message FROM pipeline.pipeline_runs").fetchall()
    assert {r["status"] for r in runs} == {"succeeded", "skipped"}, [
        r for r in runs if r["status"] != "succeeded"
    ]
    assert "cron" in {r["trigger"] for r in runs}
    deadlocks = db.execute(
        "SELECT count(*) AS n FROM pipeline.pipeline_failures WHERE sqlstate = '40P01'"
    ).fetchone()
    assert deadlocks["n"] == 0

    # One more run takes what the last writes queued; then the table must be what a full run
    # computes from scratch, with the key intact (the first load dropped and rebuilt it).
    last = run(db)
    assert last["status"] == "succeeded"
    settled = db.execute(
        f"SELECT {COMPARED} FROM pipeline.patient_journey_schedule_window ORDER BY 2, 3"
    ).fetchall()
    dupes = db.execute(
        "SELECT count(*) AS n FROM (SELECT 1 FROM pipeline.patient_journey_schedule_window "
        "GROUP BY patient_journey_id, activity_id HAVING count(*) > 1) AS d"
    ).fetchone()
    assert dupes["n"] == 0
    key = db.execute(
        "SELECT count(*) AS n FROM pg_constraint WHERE conname = 'patient_journey_schedule_window_pkey'"
    ).fetchone()
    assert key["n"] == 1
    db.execute("TRUNCATE pipeline.patient_journey_schedule_window")
    fresh = run(db, full=True)
    assert fresh["rows_inserted"] == len(settled) > 300 * 30
    assert (
        db.execute(
            f"SELECT {COMPARED} FROM pipeline.patient_journey_schedule_window ORDER BY 2, 3"
        ).fetchall()
        == settled
    )
    failures = (
        f"SELECT {FAILURE_KEY} FROM pipeline.pipeline_failures WHERE run_id = %s ORDER BY 1, 2, 4, 5, 6"
    )
    assert (
        db.execute(failures, (fresh["run_id"],)).fetchall()
        == db.execute(failures, (last["run_id"],)).fetchall()
    )


@pytest.mark.parametrize("table", ["held_back_pair", "patient_journey_schedule_window"])
def test_a_full_run_never_waits_for_a_reader_of_the_pipelines_tables(db, db_url, table):
    """A full run loads an empty table of its own (the window table, held_back_pair) with its
    key dropped and rebuilt under an exclusive lock only when it can take it at once: a reader
    (a dump, a DBA in an open transaction) is never waited for."""
    one_journey(db)
    insert(db, "schedule", ["id", "slug"], [(200, "7d-post-surgery")])  # one held-back pair
    insert(db, "activity", ["id", "content_slug", "schedule_id"], [(20, "broken", 200)])
    insert(db, "journey_activity", ["journey_id", "activity_id"], [(1, 20)])
    run(db)
    # the empty-table load (a loaded held_back_pair is written by difference, under no such lock)
    db.execute(f"TRUNCATE pipeline.{table}")
    outcome: dict[str, Any] = {}

    def full_run() -> None:
        with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
            outcome.update(run(conn, full=True))

    with psycopg.connect(db_url) as reader:  # not autocommit: the transaction stays open
        reader.execute(f"SELECT count(*) FROM pipeline.{table}")
        worker = threading.Thread(target=full_run)
        worker.start()
        worker.join(timeout=30)  # a run waiting for the reader would wait until it ends
        waited = worker.is_alive()
        reader.rollback()
        worker.join()
    assert not waited, f"the full run waited for a reader of pipeline.{table}"
    assert (outcome["status"], outcome["failures"]) == ("succeeded", 1), outcome
    assert len(windows(db)) == 1
    assert db.execute("SELECT count(*) AS n FROM pipeline.held_back_pair").fetchone()["n"] == 1


def test_a_pair_the_application_prescribes_during_a_run_is_counted_once(db, db_url):
    """A run finds survey pairs that no journey prescribes before it reads the journeys' pairs;
    should the application prescribe such a pair in between, it must not come twice."""
    one_journey(db)
    insert(db, "schedule", ["id", "slug"], [(200, "7d-post-surgery")])  # held back: a broken slug
    insert(db, "activity", ["id", "content_slug", "schedule_id"], [(20, "broken", 200)])
    insert(db, "survey_result", ["id", "patient_journey_id", "activity_id"], [(1, 1, 20)])
    run(db)
    db.execute("UPDATE public.patient_journey SET patient_id = 502 WHERE id = 1")
    outcome: dict[str, Any] = {}

    def incremental_run() -> None:
        with psycopg.connect(
            db_url, autocommit=True, row_factory=dict_row, application_name="held-run"
        ) as conn:
            outcome.update(run(conn))

    with psycopg.connect(db_url) as holder:  # holds the run at its first write to held_back_pair
        holder.execute("LOCK TABLE pipeline.held_back_pair IN SHARE MODE")
        worker = threading.Thread(target=incremental_run)
        worker.start()
        wait_until_blocked(db, "held-run")
        insert(db, "journey_activity", ["journey_id", "activity_id"], [(1, 20)])
        holder.commit()
        worker.join()
    assert (outcome["mode"], outcome["status"]) == ("incremental", "succeeded"), outcome
    full = run(db, full=True)
    assert (full["rows_inserted"], full["rows_updated"], full["rows_held_back"]) == (0, 0, 1), full
