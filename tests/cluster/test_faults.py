"""Faults during a run: the server stopped, timeouts, a failures table that cannot be written.
Each leaves no half-written state, says why where it can, releases the pipeline lock, and the
next run completes the work. (A killed backend: tests/sql/test_run_control.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from pytools.cluster import LocalCluster, as_server_user, throwaway_cluster, wait_until_accepting
from pytools.migrations import migrate
from pytools.sql_files import sample_file
from tests.helpers.pipeline import (
    DISK_FULL,
    advisory_locks_held,
    insert,
    latest_run,
    one_journey,
    run,
    run_in_thread,
    two_activity_journeys,
    wait_until_blocked,
    windows,
)

REPO = Path(__file__).resolve().parents[2]


def _run_now_cli(url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("PIPELINE_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "pytools", "run-now", "--database-url", url, "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


# --- statement_timeout and lock_timeout ----------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "sqlstate", "words"),
    [("statement_timeout", "57014", "statement timeout"), ("lock_timeout", "55P03", "lock timeout")],
)
def test_a_timeout_during_a_run_fails_it_cleanly_and_the_next_run_succeeds(
    db, db_url, setting, sqlstate, words
):
    two_activity_journeys(db, 20)
    assert run(db)["status"] == "succeeded"
    db.execute("UPDATE public.patient_journey SET operation_date = DATE '2026-07-01' WHERE id = 1")
    before = windows(db)

    blocker = psycopg.connect(db_url)
    blocker.execute("LOCK TABLE public.schedule IN ACCESS EXCLUSIVE MODE")  # the run waits reading it
    try:
        with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as session:
            # 1 s, the least a run accepts (pipeline._check_run_session refuses shorter ones)
            session.execute(f"SET {setting} = '1s'")
            with pytest.raises(psycopg.errors.ExternalRoutineException, match=words):
                session.execute("CALL pipeline.run_patient_journey_pipeline()")
            assert advisory_locks_held(session) == 0
            failed = session.execute(
                "SELECT * FROM pipeline.pipeline_runs ORDER BY run_id DESC LIMIT 1"
            ).fetchone()
    finally:
        blocker.rollback()
        blocker.close()

    assert failed["status"] == "failed" and failed["finished_at"] is not None
    assert words in failed["error_message"] and sqlstate in failed["error_message"]
    logged = db.execute(
        "SELECT stage, sqlstate, error_message FROM pipeline.pipeline_failures WHERE run_id = %s",
        (failed["run_id"],),
    ).fetchall()
    assert [(f["stage"], f["sqlstate"]) for f in logged] == [("run", sqlstate)]
    assert words in logged[0]["error_message"]
    assert windows(db) == before, "the failed run must have written nothing"

    # The drained change went back to the queue: the next run (no timeout) does the work.
    recovered = run(db)
    assert (recovered["status"], recovered["mode"]) == ("succeeded", "incremental")
    assert recovered["rows_updated"] == 2
    assert str(windows(db)[(1, 1)]["milestone_date"]) == "2026-07-01"


# --- the failures table cannot be written ---------------------------------------------------

FAILING_TRIGGERS = {
    # Every insert fails at once, like a full disk.
    "row trigger": "CREATE TRIGGER pjp_disk_full BEFORE INSERT ON pipeline.pipeline_failures "
    "FOR EACH ROW EXECUTE FUNCTION public.pjp_disk_full()",
    # The insert is accepted and the error comes at COMMIT.
    "deferred trigger": "CREATE CONSTRAINT TRIGGER pjp_disk_full AFTER INSERT ON pipeline.pipeline_failures "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.pjp_disk_full()",
}


@pytest.mark.parametrize("trigger", sorted(FAILING_TRIGGERS))
def test_a_failures_table_that_cannot_be_written_still_fails_the_run_and_frees_the_pipeline(
    db, db_url, trigger
):
    one_journey(db, slug="7d-post-surgery")  # a data failure: the run must write a failure row
    db.execute(DISK_FULL)
    db.execute(FAILING_TRIGGERS[trigger])

    # A long-lived session (psql, an application pool): the call errors out...
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as session:
        with pytest.raises(psycopg.errors.ExternalRoutineException, match="could not be logged"):
            session.execute("CALL pipeline.run_patient_journey_pipeline()")
        # ...and the session no longer holds the pipeline: another session's run is not skipped.
        assert advisory_locks_held(session) == 0
        with pytest.raises(psycopg.errors.ExternalRoutineException):
            db.execute("CALL pipeline.run_patient_journey_pipeline()")
        assert latest_run(db)["status"] == "failed"

    runs = db.execute("SELECT * FROM pipeline.pipeline_runs ORDER BY run_id").fetchall()
    assert [r["status"] for r in runs] == ["failed", "failed"]
    for failed in runs:
        assert failed["finished_at"] is not None and failed["failures"] == 0
        assert "No space left on device" in failed["error_message"]
        assert "could not be logged in pipeline_failures" in failed["error_message"]
    assert db.execute("SELECT count(*) AS n FROM pipeline.pipeline_failures").fetchone()["n"] == 0
    assert windows(db) == {}

    # The CLI exits 1 and says why.
    cli = _run_now_cli(db_url)
    assert cli.returncode == 1, cli.stderr
    assert "could not be logged" in cli.stderr and "Traceback" not in cli.stderr

    db.execute("DROP TRIGGER pjp_disk_full ON pipeline.pipeline_failures")
    recovered = run(db)
    assert (recovered["status"], recovered["failures"]) == ("succeeded", 1)


@pytest.mark.parametrize("broken", ["the running row", "the outcome"])
def test_when_the_run_cannot_even_record_itself_the_caller_gets_an_error_and_the_lock_is_freed(
    db, db_url, broken
):
    one_journey(db, slug="7d-post-surgery")
    db.execute(DISK_FULL)
    db.execute(FAILING_TRIGGERS["row trigger"])
    if broken == "the running row":
        db.execute(
            "CREATE TRIGGER pjp_disk_full BEFORE INSERT ON pipeline.pipeline_runs "
            "FOR EACH ROW WHEN (NEW.status = 'running') EXECUTE FUNCTION public.pjp_disk_full()"
        )
    else:
        db.execute(
            "CREATE TRIGGER pjp_disk_full BEFORE UPDATE ON pipeline.pipeline_runs "
            "FOR EACH ROW WHEN (NEW.status <> 'running') EXECUTE FUNCTION public.pjp_disk_full()"
        )

    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as session:
        with pytest.raises(psycopg.Error, match="No space left on device"):
            session.execute("CALL pipeline.run_patient_journey_pipeline()")
        assert advisory_locks_held(session) == 0

        db.execute("DROP TRIGGER pjp_disk_full ON pipeline.pipeline_runs")
        db.execute("DROP TRIGGER pjp_disk_full ON pipeline.pipeline_failures")
        recovered = run(db)  # while the broken session lives on
    assert recovered["status"] == "succeeded"
    statuses = [r["status"] for r in db.execute("SELECT status FROM pipeline.pipeline_runs ORDER BY run_id")]
    # A run that could not mark itself failed stays running until this run marks it aborted.
    assert statuses == (["succeeded"] if broken == "the running row" else ["aborted", "succeeded"])


def test_a_deferred_error_at_a_runs_start_releases_the_lock_in_a_long_lived_session(db, db_url):
    """An error the first COMMIT would raise (a deferred trigger on pipeline_runs) must not
    leave the session holding the pipeline's lock, which would make every other run skip."""
    one_journey(db)
    db.execute(DISK_FULL)
    db.execute(
        "CREATE CONSTRAINT TRIGGER pjp_disk_full AFTER INSERT ON pipeline.pipeline_runs "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.status = 'running') "
        "EXECUTE FUNCTION public.pjp_disk_full()"
    )
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as session:
        with pytest.raises(psycopg.Error, match="No space left on device"):
            session.execute("CALL pipeline.run_patient_journey_pipeline()")
        assert advisory_locks_held(session) == 0
        db.execute("DROP TRIGGER pjp_disk_full ON pipeline.pipeline_runs")
        assert run(db)["status"] == "succeeded"  # another session is not kept out


# --- the server stopped mid-run ------------------------------------------------------------


@pytest.fixture
def own_cluster() -> Iterator[LocalCluster]:
    """A server of this test's own, since it gets stopped (pytools' LocalCluster, fsync off)."""
    with throwaway_cluster(prefix="pjp-crash-") as cluster:
        yield cluster


def _pg_ctl(cluster: LocalCluster, *args: str) -> None:
    argv = [str(cluster.bindir / "pg_ctl"), *args, "-D", str(cluster.datadir)]
    subprocess.run(as_server_user(argv), check=True, capture_output=True, timeout=120)


@pytest.mark.slow  # a cluster of its own
def test_a_server_stopped_mid_run_leaves_nothing_half_written_and_the_next_run_finishes(own_cluster):
    url = own_cluster.url()
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        # LocalCluster commits asynchronously; a crash could then lose the running row itself.
        conn.execute("ALTER SYSTEM SET synchronous_commit = on")
        conn.execute("SELECT pg_reload_conf()")
        conn.execute(sample_file("source_tables.sql").read_text().encode())
    migrate(url)
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        two_activity_journeys(conn, 200)
        assert run(conn)["rows_inserted"] == 400
        before = windows(conn)
        # Every row will change and 100 journeys are new; the run writes rows until it reaches
        # the one row another session holds locked, and waits there.
        conn.execute("UPDATE public.patient_journey SET operation_date = operation_date + interval '7 days'")
        insert(
            conn,
            "patient_journey",
            ["id", "patient_id", "journey_id", "operation_date"],
            [(i, 1000 + i, 1, "2026-06-01") for i in range(201, 301)],
        )

    blocker = psycopg.connect(url)
    blocker.execute(
        "SELECT 1 FROM pipeline.patient_journey_schedule_window "
        "WHERE patient_journey_id = 200 AND activity_id = 2 FOR UPDATE"
    )
    outcome: dict = {}

    thread = run_in_thread(url, "doomed-run", outcome)
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as admin:
        wait_until_blocked(admin, "doomed-run")
    _pg_ctl(own_cluster, "stop", "-m", "immediate")
    thread.join(30)
    assert outcome.get("status") == "error", outcome
    blocker.close()
    own_cluster.start()
    wait_until_accepting(url)

    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        dead = conn.execute("SELECT * FROM pipeline.pipeline_runs ORDER BY run_id DESC LIMIT 1").fetchone()
        assert dead["status"] == "running"
        assert windows(conn) == before, "none of the interrupted run's writes may survive"
        assert (
            conn.execute(
                "SELECT count(*) AS n FROM pipeline.pipeline_failures WHERE run_id = %s", (dead["run_id"],)
            ).fetchone()["n"]
            == 0
        )

        recovered = run(conn)
        assert (recovered["status"], recovered["mode"]) == ("succeeded", "incremental")
        assert (recovered["rows_inserted"], recovered["rows_updated"]) == (200, 400)
        aborted = conn.execute(
            "SELECT * FROM pipeline.pipeline_runs WHERE run_id = %s", (dead["run_id"],)
        ).fetchone()
        assert aborted["status"] == "aborted" and "session ended" in aborted["error_message"]
        # What the next run left is what a full run computes.
        full = run(conn, full=True)
        assert (full["rows_inserted"], full["rows_updated"]) == (0, 0)
