"""Who can stop, delay, forge or steer a run (issue 8): a role that can only connect, the
runner calling the run's steps by hand, and an analyst holding locks. Each test plays one actor
of the threat model against a real server, in a database migrated as the fixtures do, with the
grants `migrate` gives pipeline_runner and pipeline_reader."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from pytools.migrations import migrate
from tests.helpers.cli import assert_one_error_line, clean_env, cli
from tests.helpers.databases import with_params
from tests.helpers.pipeline import (
    DISK_FULL,
    advisory_locks_held,
    current_failures,
    latest_run,
    run_in_thread,
    two_activity_journeys,
    wait_until_blocked,
)

OLD_RUN_LOCK = 4857394021  # the fixed advisory key runs used to keep each other out with
Conn = psycopg.Connection[dict[str, Any]]
MOVE_ONE_OPERATION = (
    "UPDATE public.patient_journey SET operation_date = operation_date + interval '1 day' WHERE id = 1"
)


def connect(url: str, user: str, **kwargs: Any) -> Conn:
    return psycopg.connect(url, user=user, autocommit=True, row_factory=dict_row, **kwargs)


def runs(conn: Conn) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute("SELECT * FROM pipeline.pipeline_runs ORDER BY run_id")]


def next_run_id(conn: Conn) -> int:
    row = conn.execute("SELECT coalesce(max(run_id), 0) + 1 AS n FROM pipeline.pipeline_runs").fetchone()
    assert row is not None
    return int(row["n"])


@pytest.fixture
def nobody(db: Conn, db_url: str) -> Iterator[Conn]:
    """A session of a role that has CONNECT and PUBLIC's defaults, nothing else."""
    role = f"pjp_nobody_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE ROLE {role} LOGIN")
    try:
        with connect(db_url, role) as conn:
            yield conn
    finally:
        db.execute(f"DROP ROLE {role}")


@pytest.fixture
def runner(db_url: str) -> Iterator[Conn]:
    with connect(db_url, "pipeline_runner") as conn:
        conn.execute("SET statement_timeout = '60s'")  # a run that would hang fails the test instead
        yield conn


# --- anyone who can connect (no grants) -------------------------------------------------------


def test_a_role_that_can_only_connect_cannot_stop_or_delay_the_pipeline(
    db: Conn, nobody: Conn, runner: Conn
) -> None:
    """Actor: anyone who can connect. It takes every lock PUBLIC may take on the pipeline: the
    old run lock (exclusive and shared), and ACCESS SHARE on every relation of schema pipeline
    (pg_relation_size opens a table by oid without a privilege check), in an open transaction."""
    two_activity_journeys(db, 20)
    oids = [
        r["oid"] for r in db.execute("SELECT oid FROM pg_class WHERE relnamespace = 'pipeline'::regnamespace")
    ]
    assert not nobody.execute("SELECT has_schema_privilege('pipeline', 'USAGE') AS u").fetchone()["u"]
    nobody.execute("SELECT pg_advisory_lock(%s), pg_advisory_lock_shared(%s)", (OLD_RUN_LOCK, OLD_RUN_LOCK))
    nobody.autocommit = False
    for oid in oids:
        nobody.execute("SELECT pg_relation_size(%s::oid)", (oid,))
    try:
        started = time.monotonic()
        runner.execute("CALL pipeline.run_patient_journey_pipeline('cron', true)")
        db.execute(MOVE_ONE_OPERATION)
        runner.execute("CALL pipeline.run_patient_journey_pipeline('cron')")
        assert time.monotonic() - started < 30
    finally:
        nobody.rollback()
    assert [(r["status"], r["mode"]) for r in runs(db)] == [
        ("succeeded", "full"),
        ("succeeded", "incremental"),
    ]


def run_lock_class(conn: Conn) -> int:
    """key1 of every run's own lock, as the pipeline declares it (any role may read it)."""
    row = conn.execute("SELECT run_lock FROM pipeline._advisory_lock_classes()").fetchone()
    assert row is not None
    return int(row["run_lock"])


def run_lock_key(db: Conn, run_id: int) -> tuple[int, int]:
    """A run's own lock key, which only the owner (here: a superuser) can compute."""
    row = db.execute("SELECT run_key1, run_key2 FROM pipeline._run_lock_keys(%s)", (run_id,)).fetchone()
    assert row is not None
    return int(row["run_key1"]), int(row["run_key2"])


def test_no_role_can_take_a_runs_lock_before_it_begins_and_a_run_blocked_anyway_fails_loudly(
    db: Conn, db_url: str, nobody: Conn, runner: Conn, tmp_path: Path
) -> None:
    """Actor: anyone who can connect. The one lock that could keep a run from starting is that
    run's own, whose key is derived from its run_id and a secret of the owner's: keys built
    from the next run_ids block nothing. Should a role hold the real key anyway (here a
    superuser hands it over), that one run fails, loudly, naming its session, and the next run
    has another key. The failures analysts see still show the data failures, beside the block."""
    two_activity_journeys(db, 5)
    db.execute("UPDATE public.schedule SET slug = '7d-post-surgery' WHERE id = 2")  # a data failure
    guessed = next_run_id(db)
    for key2 in range(guessed, guessed + 50):
        nobody.execute("SELECT pg_advisory_lock(%s, %s)", (run_lock_class(db), key2))
    runner.execute("CALL pipeline.run_patient_journey_pipeline('cron')")
    assert latest_run(runner)["status"] == "succeeded"
    [data_failure] = current_failures(db)

    squatted = next_run_id(db)
    nobody.execute("SELECT pg_advisory_lock(%s, %s)", run_lock_key(db, squatted))
    pid = nobody.execute("SELECT pg_backend_pid() AS pid").fetchone()["pid"]
    role = nobody.execute("SELECT current_user AS r").fetchone()["r"]
    with pytest.raises(psycopg.errors.ExternalRoutineException, match="could not start: blocked") as caught:
        runner.execute("CALL pipeline.run_patient_journey_pipeline('cron')")
    assert f"pid {pid} (role {role})" in str(caught.value)
    blocked = runs(db)[-1]
    assert blocked["run_id"] == squatted and blocked["status"] == "failed"
    assert blocked["error_message"].startswith("blocked: ")
    assert f"pid {pid} (role {role})" in blocked["error_message"]
    shown = [(f["stage"], f["schedule_slug"], f["error_message"][:8]) for f in current_failures(db)]
    assert sorted(shown) == [
        ("parse", "7d-post-surgery", data_failure["error_message"][:8]),
        ("run", None, "blocked:"),
    ]

    # run-now exits 1 and says why, in one line
    nobody.execute("SELECT pg_advisory_lock(%s, %s)", run_lock_key(db, squatted + 1))
    result = cli("run-now", env=clean_env(with_params(db_url, user="pipeline_runner")), cwd=tmp_path)
    line = assert_one_error_line(result, 1)
    assert "could not start: blocked:" in line and f"pid {pid} (role {role})" in line

    runner.execute("CALL pipeline.run_patient_journey_pipeline('cron')")
    assert latest_run(runner)["status"] == "succeeded"


# --- pipeline_runner ------------------------------------------------------------------------


def test_the_runner_cannot_forge_a_failed_run_with_a_message_of_its_own(
    db: Conn, db_url: str, runner: Conn
) -> None:
    """Actor: pipeline_runner, calling the steps by hand, with the old run lock taken itself."""
    runner.execute("SELECT pg_advisory_lock(%s)", (OLD_RUN_LOCK,))
    run_id = runner.execute("SELECT pipeline._begin_run('cron') AS r").fetchone()["r"]
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="SQLSTATE"):
        runner.execute("SELECT pipeline._fail_run(%s, 'all is well: no failures')", (run_id,))
    # another session of the same role cannot fail (or carry out) the run this one began
    with connect(db_url, "pipeline_runner") as other:
        other.execute("SELECT pg_advisory_lock(%s)", (OLD_RUN_LOCK + 1,))
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            other.execute("SELECT pipeline._fail_run(%s, 'XX000')", (run_id,))
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            other.execute("SELECT pipeline._execute_run(%s, true)", (run_id,))
    # nor can the session that began it: _fail_run is for a run whose _execute_run broke
    # before recording the outcome, which it knows by a lock whose key the runner cannot compute
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="broke before recording"):
        runner.execute("SELECT pipeline._fail_run(%s, 'XX000')", (run_id,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        runner.execute("SELECT * FROM pipeline._run_lock_keys(%s)", (run_id,))
    assert [r["status"] for r in runs(db)] == ["running"]


def test_a_run_that_breaks_while_recording_its_outcome_is_failed_in_fixed_words(
    db: Conn, runner: Conn
) -> None:
    """The one way to _fail_run: a real run whose outcome cannot be written (here a trigger
    refuses the run's final update, as a full disk would)."""
    two_activity_journeys(db, 5)
    db.execute(DISK_FULL)
    db.execute(
        "CREATE TRIGGER pjp_disk_full BEFORE UPDATE ON pipeline.pipeline_runs "
        "FOR EACH ROW WHEN (NEW.mode IS NOT NULL) EXECUTE FUNCTION public.pjp_disk_full()"
    )
    with pytest.raises(psycopg.errors.ExternalRoutineException, match="while recording its outcome"):
        runner.execute("CALL pipeline.run_patient_journey_pipeline()")
    [failed] = runs(db)
    assert failed["status"] == "failed"
    assert failed["error_message"].startswith("the run broke while recording its outcome (SQLSTATE 53100)")
    assert advisory_locks_held(runner) == 0


def test_two_runner_sessions_never_carry_out_runs_at_once(db: Conn, db_url: str) -> None:
    """Actor: pipeline_runner, two sessions holding the old run lock SHARED (which used to
    satisfy every step's guard in both): one begins a run and executes it (held mid-run by a
    lock on a source table); the other's start is skipped, and it cannot execute that run."""
    two_activity_journeys(db, 20)
    blocker = psycopg.connect(db_url)
    blocker.execute("LOCK TABLE public.schedule IN ACCESS EXCLUSIVE MODE")
    first = connect(db_url, "pipeline_runner", application_name="first-runner")
    first.execute("SELECT pg_advisory_lock_shared(%s)", (OLD_RUN_LOCK,))
    run_id = first.execute("SELECT pipeline._begin_run('manual') AS r").fetchone()["r"]
    outcome: dict[str, Any] = {}

    def execute() -> None:
        try:
            outcome["status"] = first.execute(
                "SELECT pipeline._execute_run(%s, true) AS s", (run_id,)
            ).fetchone()["s"]
        except psycopg.Error as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=execute, daemon=True)
    thread.start()
    try:
        wait_until_blocked(db, "first-runner")
        with connect(db_url, "pipeline_runner") as second:
            second.execute("SELECT pg_advisory_lock_shared(%s)", (OLD_RUN_LOCK,))
            skipped = second.execute("SELECT pipeline._begin_run('manual') AS r").fetchone()["r"]
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
                second.execute("SELECT pipeline._execute_run(%s, true)", (run_id,))
        statuses = {r["run_id"]: r["status"] for r in runs(db)}
        assert statuses == {run_id: "running", skipped: "skipped"}
    finally:
        blocker.rollback()
        blocker.close()
        thread.join(30)
        first.close()
    assert outcome == {"status": "succeeded"}


def test_a_run_begun_by_hand_and_left_idle_does_not_keep_other_runs_out(db: Conn, db_url: str) -> None:
    """Actor: pipeline_runner, beginning a run by hand (with the old run lock taken too) and
    leaving its session idle: it is not running the pipeline, so the next run marks it aborted
    and goes ahead. While that session idles inside an open transaction it looks like a live
    run: then the other runs are skipped, each naming the run, pid and role that hold them."""
    two_activity_journeys(db, 5)
    with connect(db_url, "pipeline_runner") as squatter:
        squatter.execute("SELECT pg_advisory_lock(%s)", (OLD_RUN_LOCK,))
        pid = squatter.execute("SELECT pg_backend_pid() AS p").fetchone()["p"]
        idle = squatter.execute("SELECT pipeline._begin_run('cron') AS r").fetchone()["r"]
        db.execute("CALL pipeline.run_patient_journey_pipeline()")
        assert latest_run(db)["status"] == "succeeded"
        aborted = runs(db)[0]
        assert (aborted["run_id"], aborted["status"]) == (idle, "aborted")
        assert f"pid {pid}) is idle outside any run" in aborted["error_message"]

        # the residual: a hand-begun run whose session stays inside a transaction
        posing = squatter.execute("SELECT pipeline._begin_run('cron') AS r").fetchone()["r"]
        squatter.autocommit = False
        squatter.execute("SELECT 1")
        db.execute("CALL pipeline.run_patient_journey_pipeline()")
        skipped = latest_run(db)
        assert skipped["status"] == "skipped"
        assert f"run {posing} (pid {pid}, role pipeline_runner)" in skipped["error_message"]
        squatter.rollback()
    db.execute("CALL pipeline.run_patient_journey_pipeline()")  # its session is gone now
    assert latest_run(db)["status"] == "succeeded"


@pytest.mark.parametrize(
    "trigger",
    ["x" * 65, "cron\x1b[2J", "", "ma\nnual", "x" * 32 * 1024 * 1024],
    ids=["65", "esc", "empty", "nl", "32MB"],
)
def test_a_runs_trigger_is_short_printable_text(db: Conn, runner: Conn, trigger: str) -> None:
    """Actor: pipeline_runner, passing a trigger that would be kept for the retention period."""
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="1 to 64 printable"):
        runner.execute("CALL pipeline.run_patient_journey_pipeline(%s)", (trigger,))
    assert runs(db) == []
    with pytest.raises(psycopg.errors.CheckViolation):  # and the table itself refuses it
        db.execute("INSERT INTO pipeline.pipeline_runs (trigger, status) VALUES (%s, 'skipped')", (trigger,))
    runner.execute("CALL pipeline.run_patient_journey_pipeline(%s)", ("cron " + "x" * 59,))
    assert latest_run(runner)["status"] == "succeeded"


def test_a_session_holding_the_old_run_lock_shared_runs_at_once_and_never_loops(
    db: Conn, runner: Conn
) -> None:
    """Actor: pipeline_runner holding the old run lock SHARED when it calls the procedure (it
    used to loop for ever on pg_advisory_unlock, flooding the server log with warnings)."""
    two_activity_journeys(db, 5)
    runner.execute("SELECT pg_advisory_lock_shared(%s)", (OLD_RUN_LOCK,))
    runner.execute("SET statement_timeout = '10s'")
    started = time.monotonic()
    runner.execute("CALL pipeline.run_patient_journey_pipeline()")
    assert latest_run(runner)["status"] == "succeeded" and time.monotonic() - started < 10


def test_releasing_a_runs_lock_taken_by_hand_over_and_over_ends_with_a_clear_error(runner: Conn) -> None:
    """Actor: pipeline_runner taking its run's own lock 150 times by hand: the release that
    every run and every start does stops after 100 and says why, rather than looping."""
    runner.execute("SELECT pipeline._begin_run('manual')")
    # its key is secret, but once the session holds the lock it sees the key in pg_locks
    runner.execute(
        "SELECT pg_advisory_lock(classid::bigint::integer, "
        "  (objid::bigint - CASE WHEN objid::bigint >= 2147483648 THEN 4294967296 ELSE 0 END)::integer) "
        "FROM pg_locks, generate_series(1, 150) "
        "WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND classid = %s::oid",
        (run_lock_class(runner),),
    )
    runner.execute("SET statement_timeout = '10s'")
    with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="more than 100 times"):
        runner.execute("CALL pipeline.run_patient_journey_pipeline()")
    runner.execute("SELECT pg_advisory_unlock_all()")
    runner.execute("CALL pipeline.run_patient_journey_pipeline()")
    assert latest_run(runner)["status"] == "succeeded"


PLANTED = {
    # a table of a run's name, with a trigger calling the runner's own code
    "table with trigger": (
        "pg_temp.run_change",
        "CREATE TEMP TABLE run_change (kind text, keys bigint[]); "
        "CREATE FUNCTION pg_temp.pjp_steer() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN INSERT INTO pg_temp.pjp_caught VALUES (current_user); RETURN NEW; END $$; "
        "CREATE TRIGGER pjp_steer BEFORE INSERT ON pg_temp.run_change "
        "FOR EACH ROW EXECUTE FUNCTION pg_temp.pjp_steer()",
    ),
    "view": (
        "pg_temp.run_survey_pair",
        "CREATE TEMP VIEW run_survey_pair AS SELECT 1::bigint AS patient_journey_id",
    ),
    "type": ("pg_temp.run_schedule", "CREATE TYPE pg_temp.run_schedule AS (schedule_id bigint)"),
}


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_temporary_objects_named_like_the_runs_own_are_refused_clearly(
    db: Conn, runner: Conn, kind: str
) -> None:
    """Actor: pipeline_runner, planting temporary objects of the names a run creates for its
    own intermediate results in its session before it calls the procedure."""
    two_activity_journeys(db, 5)
    name, plant = PLANTED[kind]
    runner.execute("CREATE TEMP TABLE pjp_caught (who text)")
    runner.execute(plant)
    with pytest.raises(
        psycopg.errors.ExternalRoutineException, match="temporary objects named like the run's own"
    ):
        runner.execute("CALL pipeline.run_patient_journey_pipeline('manual', true)")
    failed = latest_run(runner)
    assert failed["status"] == "failed" and name in failed["error_message"]
    assert runner.execute("SELECT count(*) AS n FROM pg_temp.pjp_caught").fetchone()["n"] == 0
    assert (
        db.execute("SELECT count(*) AS n FROM pipeline.patient_journey_schedule_window").fetchone()["n"] == 0
    )

    runner.execute("DISCARD TEMP")
    runner.execute("CALL pipeline.run_patient_journey_pipeline()")
    assert latest_run(runner)["status"] == "succeeded"


# --- pipeline_reader ------------------------------------------------------------------------


def test_an_analyst_holding_locks_on_the_pipelines_tables_does_not_block_runs(
    db: Conn, db_url: str, runner: Conn
) -> None:
    """Actor: pipeline_reader, in an open transaction holding ACCESS SHARE (all that SELECT
    allows) on every relation it may read, the old run lock, and an ANALYZE of the start lock
    (skipped: it is not the owner): full and routine runs go ahead (a full run takes the way
    that waits for no reader) and finish promptly."""
    two_activity_journeys(db, 20)
    with connect(db_url, "pipeline_reader") as reader:
        reader.execute("SELECT pg_advisory_lock(%s)", (OLD_RUN_LOCK,))
        reader.autocommit = False
        for name in (
            "patient_journey_schedule_window",
            "pipeline_failures",
            "current_failures",
            "pipeline_runs",
            "activity_adherence",
            "adherence_group",
        ):
            reader.execute(f"LOCK TABLE pipeline.{name} IN ACCESS SHARE MODE")
        # adherence's other reads: columns only, which LOCK TABLE does not take; a SELECT does
        reader.execute("SELECT count(patient_id) FROM pipeline.held_back_pair")
        reader.execute("SELECT report_time_zone FROM pipeline.settings")
        reader.execute("ANALYZE pipeline.run_lock, pipeline.pipeline_runs")  # skipped: not the owner
        try:
            started = time.monotonic()
            for full in (True, True):
                runner.execute("CALL pipeline.run_patient_journey_pipeline('cron', %s)", (full,))
            db.execute(MOVE_ONE_OPERATION)
            runner.execute("CALL pipeline.run_patient_journey_pipeline('cron')")
            assert time.monotonic() - started < 30
        finally:
            reader.rollback()
    assert [(r["status"], r["mode"]) for r in runs(db)] == [
        ("succeeded", "full"),
        ("succeeded", "full"),
        ("succeeded", "incremental"),
    ]


def test_an_analyst_stalling_migrate_does_not_block_runs(db: Conn, db_url: str, runner: Conn) -> None:
    """Actor: pipeline_reader, in an open transaction over pipeline.activity_adherence, which
    migrate replaces and so waits for. Meanwhile migrate holds no lock that a run's writes wait
    for: the window table's counting triggers and the recount come last, once nothing can keep
    migrate waiting. Found by a hostile review: with the triggers' DDL among the routines, every
    run waited behind the stalled migrate (for lock_timeout per pair)."""
    two_activity_journeys(db, 5)
    runner.execute("CALL pipeline.run_patient_journey_pipeline('cron', true)")
    outcome: dict[str, Any] = {}
    with connect(db_url, "pipeline_reader") as reader:
        reader.autocommit = False
        reader.execute("SELECT count(*) FROM pipeline.activity_adherence").fetchall()
        thread = threading.Thread(target=lambda: outcome.setdefault("migrated", migrate(db_url)), daemon=True)
        thread.start()
        try:
            wait_until_blocked(db, "pytools")
            db.execute(MOVE_ONE_OPERATION)
            runner.execute("SET lock_timeout = '2s'")
            started = time.monotonic()
            runner.execute("CALL pipeline.run_patient_journey_pipeline('cron')")
            assert time.monotonic() - started < 10
            assert "migrated" not in outcome  # still waiting for the reader
        finally:
            reader.rollback()
            thread.join(60)
    assert "migrated" in outcome
    assert [(r["status"], r["mode"]) for r in runs(db)][-1] == ("succeeded", "incremental")


@pytest.mark.slow  # waits out the 10 s the start lock is given
def test_a_start_kept_waiting_over_10_s_for_the_start_lock_fails_naming_the_session(
    db: Conn, db_url: str, runner: Conn
) -> None:
    """Not an actor of the threat model: only the owner (or a superuser) can take a lock on
    pipeline.run_lock that a run's start waits for. Should one keep it, runs say so."""
    holder = psycopg.connect(db_url)
    holder.execute("LOCK TABLE pipeline.run_lock IN ACCESS EXCLUSIVE MODE")
    pid = holder.info.backend_pid
    try:
        with pytest.raises(psycopg.errors.ExternalRoutineException, match="could not start: blocked"):
            runner.execute("CALL pipeline.run_patient_journey_pipeline()")
    finally:
        holder.rollback()
        holder.close()
    [blocked] = runs(db)
    assert blocked["status"] == "failed"
    assert blocked["error_message"].startswith(
        f"blocked: pid {pid} (role postgres) held a lock on pipeline.run_lock"
    )
    runner.execute("CALL pipeline.run_patient_journey_pipeline()")
    assert latest_run(runner)["status"] == "succeeded"


@pytest.mark.parametrize("isolation", ["repeatable read", "serializable"])
def test_a_runner_session_defaulting_to_an_older_snapshot_still_sees_a_live_run(
    db: Conn, db_url: str, isolation: str
) -> None:
    """pipeline_runner: start a run while another is live, by giving its session a default
    isolation whose snapshot predates the start lock, so that the live run's row is invisible
    to it and two runs go on at once. The procedure reads committed data whatever the default:
    the second run is skipped, naming the first; a start by hand in such a transaction is refused."""
    two_activity_journeys(db, 2)
    first = connect(db_url, "pipeline_runner")
    second = connect(db_url, "pipeline_runner")
    try:
        second.execute(f"SET default_transaction_isolation = '{isolation}'")
        first.execute("BEGIN")
        first_run = first.execute("SELECT pipeline._begin_run('first') AS r").fetchone()
        assert first_run is not None
        outcome: dict[str, Any] = {}

        def start_second() -> None:
            try:
                second.execute("CALL pipeline.run_patient_journey_pipeline('second')")
                outcome["ok"] = True
            except psycopg.Error as exc:
                outcome["error"] = exc

        waiting = threading.Thread(target=start_second)
        waiting.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            row = db.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (second.info.backend_pid,)
            ).fetchone()
            if row and row["wait_event_type"] == "Lock":
                break
            time.sleep(0.05)
        first.execute("COMMIT")
        first.execute("BEGIN")  # the first run goes on, inside a transaction
        first.execute("SELECT 1")
        waiting.join(30)
        assert outcome == {"ok": True}
        statuses = {r["trigger"]: r for r in runs(db)}
        assert statuses["second"]["status"] == "skipped"
        assert f"run {first_run['r']}" in statuses["second"]["error_message"]
        first.execute("ROLLBACK")
        second.execute("BEGIN")
        with pytest.raises(psycopg.errors.InvalidTransactionState, match="read committed"):
            second.execute("SELECT pipeline._begin_run('by hand')")
        second.execute("ROLLBACK")
    finally:
        first.close()
        second.close()


def test_a_run_begun_by_hand_and_abandoned_is_not_taken_for_a_crash(db: Conn, db_url: str) -> None:
    """pipeline_runner: begin a `cron` run by hand and disconnect, so that it looks like a run
    that a crash killed. The next run marks it aborted saying it may have been begun by hand."""
    with connect(db_url, "pipeline_runner") as runner:
        runner.execute("SELECT pipeline._begin_run('cron')")
    with connect(db_url, "pipeline_runner") as runner:
        runner.execute("CALL pipeline.run_patient_journey_pipeline('cron')")
    abandoned = runs(db)[0]
    assert abandoned["status"] == "aborted"
    assert "or its steps called by hand" in abandoned["error_message"]


@contextmanager
def a_schedule_writer(db: Conn, prefix: str) -> Iterator[str]:
    """A new role that may write public.schedule, as the application does (which lets it LOCK
    TABLE it); dropped afterwards with everything it owns."""
    role = f"{prefix}_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE ROLE {role} LOGIN")
    db.execute(f"GRANT SELECT, UPDATE ON public.schedule TO {role}")
    try:
        yield role
    finally:
        db.execute(f"DROP OWNED BY {role}")
        db.execute(f"DROP ROLE {role}")


@pytest.mark.slow
def test_a_run_kept_waiting_by_a_lock_on_a_source_table_fails_within_a_minute_naming_the_blocker(
    db: Conn, db_url: str
) -> None:
    """The application writer: hold a source table locked (LOCK TABLE needs only UPDATE on it),
    so that a run waits for ever and every later run is skipped behind it while the change
    queue grows. A run waits at most a minute for a lock, then fails, naming the session that
    holds it; a run started meanwhile is skipped, naming the session the live run waits for."""
    two_activity_journeys(db, 2)
    with a_schedule_writer(db, "pjp_locker") as writer_role:
        with connect(db_url, writer_role) as writer:
            writer.execute("BEGIN")
            writer.execute("LOCK TABLE public.schedule IN ACCESS EXCLUSIVE MODE")
            outcome: dict[str, Any] = {}

            def kept_waiting() -> None:
                with connect(db_url, "pipeline_runner") as runner:
                    try:
                        runner.execute("CALL pipeline.run_patient_journey_pipeline('cron')")
                        outcome["ok"] = True
                    except psycopg.Error as exc:
                        outcome["error"] = exc

            waiting = threading.Thread(target=kept_waiting)
            started = time.monotonic()
            waiting.start()
            time.sleep(3)  # the run is waiting for the lock by now
            with connect(db_url, "pipeline_runner") as runner:
                runner.execute("CALL pipeline.run_patient_journey_pipeline('cron')")
            skipped = runs(db)[-1]
            assert skipped["status"] == "skipped"
            assert (
                f"waiting for a lock held by pid {writer.info.backend_pid} (role {writer_role})"
                in (skipped["error_message"])
            )
            waiting.join(120)
            assert time.monotonic() - started < 90
            assert isinstance(outcome.get("error"), psycopg.Error)
            failed = runs(db)[0]
            assert failed["status"] == "failed"
            assert (
                "lock timeout: waited 1min for ACCESS SHARE on public.schedule: "
                f"pid {writer.info.backend_pid} (role {writer_role}" in failed["error_message"]
            ), failed["error_message"]
            assert "holds public.schedule in ACCESS EXCLUSIVE mode" in failed["error_message"]
            writer.execute("ROLLBACK")
        with connect(db_url, "pipeline_runner") as runner:
            runner.execute("CALL pipeline.run_patient_journey_pipeline('cron')")
        assert runs(db)[-1]["status"] == "succeeded"


def test_a_lock_held_by_a_prepared_transaction_fails_runs_naming_that_transaction(
    db: Conn, db_url: str
) -> None:
    """The application writer: take a source table's lock in a transaction and PREPARE it (a
    two-phase commit left behind). Its locks outlive every session, even a restart, and have
    no pid: each run fails at its lock timeout naming the prepared transaction and its role,
    not a session that has ended."""
    allowed = db.execute("SELECT current_setting('max_prepared_transactions')::integer AS n").fetchone()
    if not allowed or allowed["n"] == 0:
        pytest.skip("this server allows no prepared transactions (max_prepared_transactions = 0)")
    two_activity_journeys(db, 2)
    with a_schedule_writer(db, "pjp_preparer") as writer_role:
        gid = f"pjp_forgotten_{writer_role[-8:]}\x1b[2J"  # its name: any text, a terminal's escapes too
        with connect(db_url, writer_role) as writer:
            writer.execute("BEGIN")
            writer.execute("LOCK TABLE public.schedule IN ACCESS EXCLUSIVE MODE")
            writer.execute(sql.SQL("PREPARE TRANSACTION {}").format(sql.Literal(gid)))
        try:
            with connect(db_url, "pipeline_runner") as runner, contextlib.suppress(psycopg.Error):
                runner.execute("SET lock_timeout = '1s'")
                runner.execute("CALL pipeline.run_patient_journey_pipeline('cron', true)")
            # a run started while another waits on it is skipped, naming what the other waits for
            outcome: dict[str, Any] = {}
            waiting = run_in_thread(
                with_params(db_url, user="pipeline_runner"), "pjp_waits", outcome, full=True
            )
            wait_until_blocked(db, "pjp_waits")
            with connect(db_url, "pipeline_runner") as runner:
                runner.execute("CALL pipeline.run_patient_journey_pipeline('cron')")
            skipped = runs(db)[-1]
            assert skipped["status"] == "skipped"
            assert "waiting for a lock held by a prepared transaction" in skipped["error_message"], skipped
        finally:  # before the role goes, and the database: both would wait on it for ever
            db.execute(sql.SQL("ROLLBACK PREPARED {}").format(sql.Literal(gid)))
        waiting.join(60)
        assert outcome["status"] == "returned", outcome  # the waiting run, once the lock was gone
        failed = runs(db)[0]
        assert failed["status"] == "failed"
        assert (
            "lock timeout: waited 1s for ACCESS SHARE on public.schedule: prepared transaction "
            f"{json.dumps(gid)} "
            f"(role {writer_role}, prepared at "
        ) in failed["error_message"], failed["error_message"]
        assert "holds public.schedule in ACCESS EXCLUSIVE mode" in failed["error_message"]
    with connect(db_url, "pipeline_runner") as runner:
        runner.execute("CALL pipeline.run_patient_journey_pipeline('cron')")
    assert runs(db)[-1]["status"] == "succeeded"


def test_a_lock_on_a_child_of_a_source_table_is_named_as_the_one_in_the_runs_way(
    db: Conn, db_url: str
) -> None:
    """LOCK TABLE, as a run takes it, locks every child of the table too: a session holding a
    child locked (an application's ALTER TABLE of a partition, say) keeps the run waiting, and
    the failure names that session and the child, not an ended one."""
    two_activity_journeys(db, 2)
    db.execute("CREATE TABLE public.schedule_archive () INHERITS (public.schedule)")
    with psycopg.connect(db_url, autocommit=True, application_name="pjp_child_locker") as locker:
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE public.schedule_archive IN ACCESS EXCLUSIVE MODE")
        with connect(db_url, "pipeline_runner") as runner, contextlib.suppress(psycopg.Error):
            runner.execute("SET lock_timeout = '1s'")
            runner.execute("CALL pipeline.run_patient_journey_pipeline('cron', true)")
        failed = runs(db)[-1]
        assert failed["status"] == "failed"
        assert (
            f"pid {locker.info.backend_pid} (role postgres, application 'pjp_child_locker'"
            in failed["error_message"]
        ), failed["error_message"]
        assert "holds public.schedule_archive in ACCESS EXCLUSIVE mode" in failed["error_message"]
        locker.execute("ROLLBACK")


def test_a_role_let_create_in_schema_pipeline_gets_no_function_of_its_called_by_runs_or_capture(
    db: Conn, db_url: str
) -> None:
    """A planter given CREATE on schema pipeline by mistake: plant functions there with a closer
    match than the catalog's (every run step's search_path names pipeline), so that runs and the
    capture triggers call them with the owner's rights. Runs refuse while the schema holds
    another role's object or another role may create in it, naming both; capture names nothing
    of schema pipeline unqualified; nothing planted runs."""
    two_activity_journeys(db, 2)
    planter = f"pjp_pipeline_planter_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE ROLE {planter} LOGIN")
    db.execute("CREATE TABLE public.planted_ran (who text)")
    db.execute("GRANT INSERT ON public.planted_ran TO PUBLIC")
    db.execute(f"GRANT USAGE, CREATE ON SCHEMA pipeline TO {planter}")
    try:
        with connect(db_url, planter) as conn:
            conn.execute(
                "CREATE FUNCTION pipeline.cardinality(text[]) RETURNS integer LANGUAGE plpgsql AS $$ "
                "BEGIN INSERT INTO public.planted_ran VALUES (current_user); "
                "RETURN pg_catalog.cardinality($1::anyarray); END $$"
            )
            conn.execute(
                "CREATE FUNCTION pipeline.planted_agg(bigint[], bigint) RETURNS bigint[] "
                "LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.planted_ran VALUES (current_user); "
                "RETURN $1 || $2; END $$;"
                "CREATE AGGREGATE pipeline.array_agg(bigint) (SFUNC = pipeline.planted_agg, STYPE = bigint[])"
            )
        refused = psycopg.errors.InsufficientPrivilege
        with connect(db_url, "pipeline_runner") as runner, pytest.raises(refused, match=f"role {planter}"):
            runner.execute("CALL pipeline.run_patient_journey_pipeline('cron')")
        db.execute(MOVE_ONE_OPERATION)  # the capture triggers run as the owner
        assert db.execute("SELECT count(*) AS n FROM public.planted_ran").fetchone() == {"n": 0}
        db.execute("DROP FUNCTION pipeline.cardinality(text[])")
        db.execute("DROP AGGREGATE pipeline.array_agg(bigint)")
        db.execute("DROP FUNCTION pipeline.planted_agg(bigint[], bigint)")
        with (
            connect(db_url, "pipeline_runner") as runner,
            pytest.raises(
                psycopg.errors.InsufficientPrivilege, match=f"REVOKE CREATE ON SCHEMA pipeline FROM {planter}"
            ),
        ):
            runner.execute("CALL pipeline.run_patient_journey_pipeline('cron')")
        db.execute(f"REVOKE CREATE ON SCHEMA pipeline FROM {planter}")
        with connect(db_url, "pipeline_runner") as runner:
            runner.execute("CALL pipeline.run_patient_journey_pipeline('cron')")
        assert runs(db)[-1]["status"] == "succeeded"
        assert db.execute("SELECT count(*) AS n FROM public.planted_ran").fetchone() == {"n": 0}
    finally:
        db.execute(f"REVOKE ALL ON SCHEMA pipeline FROM {planter}")
        db.execute(f"DROP OWNED BY {planter} CASCADE")
        db.execute(f"DROP ROLE {planter}")
