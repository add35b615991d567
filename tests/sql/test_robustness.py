"""Ways the pipeline could stop, duplicate or miss rows, each shown not to happen."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.helpers.pipeline import (
    advisory_locks_held,
    current_failures,
    insert,
    one_journey,
    refuse_success,
    run,
    run_in_thread,
    wait_until_blocked,
    windows,
)


def test_a_call_inside_a_transaction_block_fails_without_leaking_the_lock(db, db_url):
    one_journey(db)
    with psycopg.connect(db_url) as conn:  # not autocommit: psycopg opens a transaction
        with pytest.raises(psycopg.errors.InvalidTransactionTermination):
            conn.execute("CALL pipeline.run_patient_journey_pipeline()")
        conn.rollback()
        assert advisory_locks_held(conn) == 0
        assert run(db)["status"] == "succeeded"  # another session is not skipped


def test_duplicated_ids_in_the_source_give_one_row_per_pair(db):
    one_journey(db)
    insert(
        db,
        "activity",
        ["id", "content_slug", "schedule_id"],
        [(10, "knee-survey", 100), (11, "x", 999), (11, "x", 999)],
    )
    insert(db, "journey_activity", ["journey_id", "activity_id"], [(1, 11), (1, 10)])
    copy_journey_1(db, 501, "2026-03-10")
    for full in (True, False):
        result = run(db, full=full)
        assert result["status"] == "succeeded", result
    assert list(windows(db)) == [(1, 10)]
    held = [f for f in current_failures(db) if f["schedule_id"] == 999]
    assert len(held) == 1 and held[0]["rows_held_back"] == 1


def test_changes_made_in_replica_mode_are_captured(db):
    one_journey(db)
    run(db)
    with db.transaction():
        db.execute("SET LOCAL session_replication_role = replica")
        db.execute("UPDATE public.patient_journey SET operation_date = '2026-04-01' WHERE id = 1")
    result = run(db)
    assert (result["mode"], result["rows_updated"]) == ("incremental", 1)
    assert str(windows(db)[(1, 10)]["milestone_date"]) == "2026-04-01"


def test_a_broken_capture_trigger_never_breaks_the_application_and_asks_for_a_full_run(db):
    one_journey(db)
    run(db)
    db.execute("ALTER TABLE public.survey_result RENAME COLUMN patient_journey_id TO pj_id")
    try:
        db.execute("INSERT INTO public.survey_result (id, pj_id, activity_id) VALUES (1, 1, 10)")
        kinds = [r["kind"] for r in db.execute("SELECT kind FROM pipeline.change_queue")]
        assert kinds == ["full"]
    finally:
        db.execute("ALTER TABLE public.survey_result RENAME COLUMN pj_id TO patient_journey_id")


def test_a_row_the_table_refuses_is_logged_and_retried_while_the_others_load(db):
    one_journey(db)
    insert(db, "activity", ["id", "content_slug", "schedule_id"], [(13, "refused", 100)])
    insert(db, "journey_activity", ["journey_id", "activity_id"], [(1, 13)])
    db.execute(
        "ALTER TABLE pipeline.patient_journey_schedule_window ADD CONSTRAINT no_13 CHECK (activity_id <> 13)"
    )
    first = run(db)
    assert (first["status"], first["rows_inserted"]) == ("succeeded", 1)
    refused = [f for f in current_failures(db) if f["stage"] == "load"]
    assert [(f["patient_journey_id"], f["activity_id"], f["sqlstate"]) for f in refused] == [(1, 13, "23514")]
    again = run(db)  # re-queued, so still reported rather than forgotten
    assert again["mode"] == "incremental"
    assert [f["activity_id"] for f in current_failures(db) if f["stage"] == "load"] == [13]


def test_a_timestamptz_milestone_column_is_refused_rather_than_read_in_some_time_zone(db):
    one_journey(db, slug="2d-post-consent")
    db.execute("ALTER TABLE public.patient_journey ALTER COLUMN consent_date TYPE timestamptz")
    db.execute("UPDATE public.patient_journey SET consent_date = '2026-01-01 23:30+00'")
    run(db)
    assert windows(db) == {}
    (failure,) = current_failures(db)
    assert failure["sqlstate"] == "42703" and "consent" in failure["error_message"]


def test_cli_reports_a_permission_error_in_one_line(db_url, db, tmp_path):
    db.execute("CREATE ROLE pjp_nobody LOGIN")
    try:
        url = db_url.replace("postgresql://postgres@", "postgresql://pjp_nobody@")
        result = subprocess.run(
            [sys.executable, "-m", "pytools", "status", "--database-url", url],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert result.returncode == 6, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1 and "permission denied" in result.stderr
    finally:
        db.execute("DROP ROLE pjp_nobody")


def test_only_granted_roles_may_run_the_pipeline(db, db_url):
    db.execute("CREATE ROLE pjp_stranger LOGIN")
    try:
        url = db_url.replace("postgresql://postgres@", "postgresql://pjp_stranger@")
        with (
            psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute("CALL pipeline.run_patient_journey_pipeline()")
        assert run(db)["status"] == "succeeded"  # no lock was left behind
    finally:
        db.execute("DROP ROLE pjp_stranger")


def test_duplicated_patient_journeys_keep_the_same_row_in_full_and_incremental_runs(db):
    one_journey(db, operation=None)
    copy_journey_1(db, 501, "2026-03-10")
    run(db, full=True)
    insert(
        db,
        "patient_journey",
        ["id", "patient_id", "journey_id", "operation_date"],
        [(2, 502, 1, "2026-05-01")],
    )
    assert run(db)["mode"] == "incremental"
    before = windows(db)[(1, 10)]["milestone_date"]
    full = run(db, full=True)
    assert (full["rows_inserted"], full["rows_updated"]) == (0, 0)
    assert windows(db)[(1, 10)]["milestone_date"] == before


def copy_journey_1(db, patient_id: int, operation: str) -> None:
    """Patient journey 1 again, with other values (`one_journey`'s has patient 501)."""
    insert(
        db,
        "patient_journey",
        ["id", "patient_id", "journey_id", "operation_date"],
        [(1, patient_id, 1, operation)],
    )


def ids_repeat(db) -> bool | None:
    row = db.execute(
        "SELECT ids_repeat FROM pipeline.change_capture_state WHERE table_name = 'public.patient_journey'"
    ).fetchone()
    return row["ids_repeat"] if row else None


def test_runs_remember_whether_patient_journey_ids_repeat(db):
    """A full run records whether an id repeats; while none does, a routine run looks for copies
    only among the ids its changes name, so the one that queues a copy must record it, and the
    routine runs after it look at their whole reach again until a full run finds no copy."""
    one_journey(db)
    run(db, full=True)
    assert ids_repeat(db) is False
    db.execute("UPDATE public.patient_journey SET patient_id = 7 WHERE id = 1")
    assert run(db)["mode"] == "incremental"
    assert ids_repeat(db) is False
    copy_journey_1(db, 501, "2026-01-01")
    assert run(db)["mode"] == "incremental"
    assert ids_repeat(db) is True
    db.execute("DELETE FROM public.patient_journey WHERE patient_id = 501")
    assert run(db)["mode"] == "incremental"
    assert ids_repeat(db) is True  # a routine run does not look at every id
    assert run(db, full=True)["mode"] == "full"
    assert ids_repeat(db) is False
    # a run that fails at its end, after it found the copy, keeps nothing of what it found
    copy_journey_1(db, 502, "2026-01-01")
    refuse_success(db)
    with pytest.raises(psycopg.errors.ExternalRoutineException):
        db.execute("CALL pipeline.run_patient_journey_pipeline()")
    db.execute("DROP TRIGGER refuse_success ON pipeline.pipeline_runs")
    assert ids_repeat(db) is False
    assert run(db)["mode"] == "incremental"
    assert ids_repeat(db) is True


def test_where_replica_mode_writes_go_unseen_routine_runs_look_at_every_id_they_reach(db):
    """Without the replica-mode capture trigger (migrate does not own the table), a superuser's
    write in session_replication_role = replica is queued nowhere: a copy written so names no
    queued id, so a full run records nothing, and a routine run reaching the copy another way
    (here its activity) de-duplicates it as a full run would."""
    one_journey(db)
    db.execute("DROP TRIGGER pipeline_capture_replica ON public.patient_journey")
    run(db, full=True)
    assert ids_repeat(db) is None
    with db.transaction():
        db.execute("SET LOCAL session_replication_role = replica")
        insert(
            db,
            "patient_journey",
            ["id", "patient_id", "journey_id", "operation_date"],
            [(1, 502, 1, "2026-06-01")],
        )
    assert db.execute("SELECT count(*) AS n FROM pipeline.change_queue").fetchone()["n"] == 0
    db.execute("UPDATE public.activity SET content_slug = content_slug || '-v2' WHERE id = 10")
    assert run(db)["mode"] == "incremental"
    full = run(db, full=True)
    assert (full["rows_inserted"], full["rows_updated"]) == (0, 0)


def test_a_copy_written_while_a_routine_run_works_is_found_by_that_run_or_the_next(db, db_url):
    """A copy committed after the run drained the queue is not among the ids it drained; the run
    looks at the ids still queued too, so it de-duplicates the journey it reaches another way."""
    one_journey(db)
    run(db, full=True)
    assert ids_repeat(db) is False
    db.execute("UPDATE public.activity SET content_slug = 'knee-survey-2' WHERE id = 10")  # reaches journey 1
    blocker = psycopg.connect(db_url)
    blocker.execute("LOCK TABLE pipeline.milestone_alias IN ACCESS EXCLUSIVE MODE")  # read after the drain
    outcome: dict[str, object] = {}
    thread = run_in_thread(db_url, "copy-run", outcome)
    wait_until_blocked(db, "copy-run")
    copy_journey_1(db, 502, "2026-06-01")
    blocker.rollback()
    blocker.close()
    thread.join(30)
    assert outcome["status"] == "returned"
    # the copy's change waits for the next run: the one above had drained the queue before it
    assert db.execute("SELECT count(*) AS n FROM pipeline.change_queue").fetchone()["n"] == 1
    assert windows(db)[(1, 10)]["patient_id"] == 501  # the copy first by patient_id
    assert ids_repeat(db) is True
    full = run(db, full=True)
    assert (full["rows_inserted"], full["rows_updated"]) == (0, 0)


@pytest.mark.parametrize("reached_through", ["patient journey", "activity", "survey result"])
def test_a_duplicate_reached_by_an_incremental_run_is_de_duplicated_as_a_full_run_would(db, reached_through):
    """An incremental run checks for duplicated ids only among the journeys it recomputes; each
    way a scope reaches a journey must find its duplicate."""
    one_journey(db)
    insert(db, "activity", ["id", "content_slug", "schedule_id"], [(11, "walk", 100)])
    insert(db, "survey_result", ["id", "patient_journey_id", "activity_id"], [(1, 1, 11)])
    run(db, full=True)
    copy_journey_1(db, 501, "2026-01-01")
    run(db)  # the duplicate is known; each change below reaches journey 1 another way
    change = {
        "patient journey": "UPDATE public.patient_journey SET patient_id = 502 WHERE id = 1",
        "activity": "UPDATE public.activity SET content_slug = 'knee-survey-2' WHERE id = 10",
        "survey result": "UPDATE public.activity SET content_slug = 'walk-2' WHERE id = 11",
    }[reached_through]
    db.execute(change)
    incremental = run(db)
    assert (incremental["mode"], incremental["status"], current_failures(db)) == (
        "incremental",
        "succeeded",
        [],
    )
    full = run(db, full=True)
    assert (full["rows_inserted"], full["rows_updated"], full["failures"]) == (0, 0, 0)


def test_a_trigger_disabled_and_enabled_again_forces_a_full_run(db):
    one_journey(db)
    run(db)
    db.execute("ALTER TABLE public.patient_journey DISABLE TRIGGER pipeline_capture_update")
    db.execute("UPDATE public.patient_journey SET operation_date = '2026-06-01' WHERE id = 1")
    db.execute("ALTER TABLE public.patient_journey ENABLE TRIGGER pipeline_capture_update")
    result = run(db)
    assert (result["mode"], result["rows_updated"]) == ("full", 1)
