"""The original pipeline's failures.log, kept two ways: each run writes its failures to the
PostgreSQL server log (one `pipeline_failure run_id=...` line each, where a DBA already
collects logs), and `failures --log FILE` appends the retained failures FILE lacks, the same
lines, never one twice."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
import unicodedata
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pytools import failure_log
from pytools.errors import UserError
from tests.helpers.cli import USAGE, assert_ok, assert_one_error_line, clean_env, cli
from tests.helpers.databases import TEMPLATE, connect, create_database, drop_database, with_params
from tests.helpers.pipeline import DISK_FULL, insert, one_journey, run

PREFIX = "pipeline_failure run_id="


def server_log(db: psycopg.Connection[Any]) -> Path:
    """The server log of the tests' local cluster (server.log beside its data directory)."""
    datadir = Path(str(db.execute("SHOW data_directory").fetchone()["data_directory"]))
    log = datadir.parent / "server.log"
    if not log.is_file():
        pytest.skip(f"the server log is not a local file here ({log}): TEST_DATABASE_URL or a container")
    return log


def logged_lines(log: Path, start: int) -> list[str]:
    """What the server logged at LOG level after byte `start`, each without its line prefix."""
    with log.open("rb") as handle:
        handle.seek(start)
        text = handle.read().decode("utf-8", errors="replace")
    return [line.split("LOG:  ", 1)[1] for line in text.splitlines() if "LOG:  " in line]


def expected_lines(db: psycopg.Connection[Any], where: str = "true") -> list[str]:
    rows = db.execute(
        f"SELECT pipeline.failure_log_line(to_jsonb(f)) AS line FROM pipeline.pipeline_failures AS f "
        f"WHERE {where} ORDER BY f.run_id, f.failure_id"
    ).fetchall()
    return [row["line"] for row in rows]


def plant_bad_slugs(db: psycopg.Connection[Any], slugs: list[str], first_id: int = 200) -> None:
    """Journey 1 (one_journey) also prescribes one activity per slug."""
    ids = range(first_id, first_id + len(slugs))
    insert(db, "schedule", ["id", "slug"], list(zip(ids, slugs, strict=True)))
    insert(db, "activity", ["id", "content_slug", "schedule_id"], [(i, f"a{i}", i) for i in ids])
    insert(db, "journey_activity", ["journey_id", "activity_id"], [(1, i) for i in ids])


def test_each_failure_of_a_run_is_one_line_of_the_server_log_that_a_slug_cannot_forge_or_flood(
    db: psycopg.Connection[Any],
) -> None:
    """Actor: the source tables' owner, whose slugs the lines quote. A newline and a look-alike
    line in a slug, a terminal escape, U+2028 and a slug of 10,000 characters stay inside one
    line each, escaped and cut; every failure of the run is there, as failure_log_line writes it."""
    log = server_log(db)
    token = uuid.uuid4().hex
    forged = f"2026-01-01 00:00:00.000 UTC [1] LOG:  {PREFIX}1 failure_id=1 forged-{token}"
    slugs = [f"bad-{token}", f"x-{token}\n{forged}", f"esc-{token}\x1b[2J\x9b\u2028\u202e", "9" * 10_000]
    one_journey(db)
    plant_bad_slugs(db, slugs)
    start = log.stat().st_size
    ran = run(db)
    assert ran["status"] == "succeeded" and ran["failures"] == len(slugs)

    expected = expected_lines(db, f"f.run_id = {ran['run_id']}")
    ours = [line for line in logged_lines(log, start) if line in expected]
    assert ours == expected  # each once, in failure order
    text = log.read_text(errors="replace")
    assert not any(line.startswith(forged[:40]) for line in text.splitlines())
    assert f'schedule_slug="x-{token}\\n2026-01-01' in text
    assert f'schedule_slug="esc-{token}\\u001b[2J\\u009b\\u2028\\u202e"' in text
    assert '"' + "9" * 197 + '..."' in text and "9" * 201 not in text
    assert all(line.startswith(f"{PREFIX}{ran['run_id']} failure_id=") for line in expected)


# Invisible, though neither format characters (Cf) nor controls: Hangul fillers, combining
# grapheme joiner, Khmer inherent vowels, variation selectors (Default_Ignorable_Code_Point).
INVISIBLE = [0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, *range(0x180B, 0x1810), 0x3164, *range(0xFE00, 0xFE10)]
INVISIBLE += [0xFFA0, *range(0xE0100, 0xE01F0)]


def test_no_control_format_separator_or_invisible_character_reaches_a_log_line_as_it_is(
    db: psycopg.Connection[Any],
) -> None:
    """Actor: the source tables' owner, whose slugs the lines quote. Every character of the
    classes Cc, Cf, Zl and Zp (the non-BMP format characters too, such as U+1D173) and every
    invisible filler is written as an escape (or U+FFFD outside the BMP), and the text stays one
    JSON string."""
    classes = ("Cc", "Cf", "Zl", "Zp")
    chars = [chr(c) for c in range(1, 0x110000) if unicodedata.category(chr(c)) in classes]
    chars += [chr(c) for c in INVISIBLE]
    rows = db.execute(
        "SELECT ch, pipeline._log_text('a' || ch || 'b', 10) AS v FROM unnest(%s::text[]) AS ch", [chars]
    ).fetchall()
    assert not [f"U+{ord(row['ch']):04X}" for row in rows if row["ch"] in row["v"]]
    assert all(json.loads(row["v"]) in (f"a{row['ch']}b", "a\ufffdb") for row in rows)


def test_a_failed_run_logs_its_run_failure_even_when_pipeline_failures_refuses_it(
    db: psycopg.Connection[Any],
) -> None:
    """A run that breaks (a source table lost a column) logs its 'run' failure; when
    pipeline_failures cannot be written either (a full disk), the server log still gets the line."""
    log = server_log(db)
    one_journey(db)
    db.execute("ALTER TABLE public.schedule RENAME COLUMN slug TO slug_text")
    start = log.stat().st_size
    with pytest.raises(psycopg.errors.ExternalRoutineException):
        db.execute("CALL pipeline.run_patient_journey_pipeline()")
    [failed] = db.execute("SELECT run_id FROM pipeline.pipeline_runs WHERE status = 'failed'").fetchall()
    [line] = expected_lines(db, f"f.run_id = {failed['run_id']}")
    assert "stage=run" in line and "slug" in line
    assert line in logged_lines(log, start)

    db.execute(DISK_FULL)
    db.execute(
        "CREATE TRIGGER pjp_disk_full BEFORE INSERT ON pipeline.pipeline_failures "
        "FOR EACH ROW EXECUTE FUNCTION public.pjp_disk_full()"
    )
    start = log.stat().st_size
    with pytest.raises(psycopg.errors.ExternalRoutineException):
        db.execute("CALL pipeline.run_patient_journey_pipeline()")
    unlogged = [line for line in logged_lines(log, start) if line.startswith(PREFIX)]
    run_id = failed["run_id"] + 1
    assert len(unlogged) == 1 and unlogged[0].startswith(f"{PREFIX}{run_id} failure_id= "), unlogged
    assert "stage=run" in unlogged[0] and "slug" in unlogged[0]


def test_a_runner_that_asks_for_log_messages_gets_no_failure_line_of_the_server_log(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    """Actor: pipeline_runner (must never read the source tables, may not read failures). A
    session of its own may set client_min_messages = debug5: the runs' failure lines, which
    quote slugs, still go to the server log only, the run failure that pipeline_failures
    refused too; the run's own notice still reaches it."""
    log = server_log(db)
    token = uuid.uuid4().hex
    one_journey(db, slug=f"secret-{token}")
    messages: list[str] = []
    with connect(db_url, user="pipeline_runner") as runner:
        runner.add_notice_handler(lambda diag: messages.append(f"{diag.severity}: {diag.message_primary}"))
        runner.execute("SET client_min_messages = debug5")
        start = log.stat().st_size
        runner.execute("CALL pipeline.run_patient_journey_pipeline()")
        db.execute("ALTER TABLE public.schedule RENAME COLUMN slug TO slug_text")
        db.execute(DISK_FULL)
        db.execute(
            "CREATE TRIGGER pjp_disk_full BEFORE INSERT ON pipeline.pipeline_failures "
            "FOR EACH ROW EXECUTE FUNCTION public.pjp_disk_full()"
        )
        with pytest.raises(psycopg.errors.ExternalRoutineException):
            runner.execute("CALL pipeline.run_patient_journey_pipeline()")
    assert any(m.startswith("NOTICE: pipeline run ") for m in messages), messages
    assert not [m for m in messages if PREFIX in m or token in m]
    lines = [line for line in logged_lines(log, start) if line.startswith(PREFIX)]
    assert len(lines) == 2 and token in lines[0] and "stage=run" in lines[1], lines


def test_logging_a_runs_failures_takes_less_time_than_the_run_that_found_them(
    db: psycopg.Connection[Any],
) -> None:
    """Actor: the source tables' owner, who can make thousands of slugs fail. Each run logs
    them all inside its own transaction (and every hourly run again), so a line must cost little
    next to the run's own work for that failure: not a function planned again for each line."""
    one_journey(db)
    plant_bad_slugs(db, [f"bad-{i}" for i in range(4000)], first_id=1000)
    ran = run(db)
    assert ran["failures"] == 4000
    start = time.monotonic()
    db.execute("SELECT pipeline._log_failures(%s)", (ran["run_id"],))
    logging = time.monotonic() - start
    assert logging < (ran["finished_at"] - ran["started_at"]).total_seconds(), logging


@pytest.fixture
def reader_env(db_url: str) -> dict[str, str]:
    """An analyst who is only pipeline_reader."""
    return clean_env(with_params(db_url, user="pipeline_reader"))


def test_failures_log_appends_each_retained_failure_once_as_the_server_log_has_it(
    db: psycopg.Connection[Any], reader_env: dict[str, str], tmp_path: Path
) -> None:
    """Run after every run-now or from cron, `failures --log` rebuilds the original's file:
    the lines of every retained failure, each once; lines that are not its own stay; a line
    cut short by a crash is written again whole, on a line of its own."""
    log = tmp_path / "failures.log"
    log.write_text("kept: a line of someone else\n")
    one_journey(db)
    plant_bad_slugs(db, ["bad-one", "bad-two"])
    first = run(db)

    out = assert_ok(cli("failures", "--log", str(log), env=reader_env, cwd=tmp_path))
    assert f"appended 2 failures of 1 runs to {log}" in out
    assert log.read_text().splitlines() == ["kept: a line of someone else", *expected_lines(db)]
    before = log.read_bytes()
    out = assert_ok(cli("failures", "--log", str(log), env=reader_env, cwd=tmp_path))
    assert "nothing to add (2 retained failures are there already)" in out
    assert log.read_bytes() == before

    plant_bad_slugs(db, ["bad-three"], first_id=300)
    second = run(db)
    assert second["failures"] == 3 and second["run_id"] > first["run_id"]
    whole = expected_lines(db)
    cut = whole[-1][: len(whole[-1]) // 2]
    log.write_text("\n".join(["kept: a line of someone else", *whole[:-1], cut]))  # a crash mid-line
    out = assert_ok(cli("failures", "--log", str(log), env=reader_env, cwd=tmp_path))
    assert "appended 1 failures of 1 runs" in out
    assert log.read_text().splitlines() == ["kept: a line of someone else", *whole[:-1], cut, whole[-1]]
    assert len(whole) == 5 and len(set(whole)) == 5  # the second run's failures are its own rows


def test_failures_log_writes_the_same_lines_where_standard_conforming_strings_is_off(
    db: psycopg.Connection[Any], reader_env: dict[str, str], tmp_path: Path
) -> None:
    """A database of a legacy application sets standard_conforming_strings = off: the lines
    that `failures --log` writes there are still the runs' lines, their escapes intact."""
    log = tmp_path / "failures.log"
    one_journey(db)
    plant_bad_slugs(db, ["esc-\x1b[2J\x9b\u2028\u202e\U000e0041"])
    run(db)
    db.execute(f'ALTER DATABASE "{db.info.dbname}" SET standard_conforming_strings = off')
    assert_ok(cli("failures", "--log", str(log), env=reader_env, cwd=tmp_path))
    assert log.read_text().splitlines() == expected_lines(db)
    assert '\\u001b[2J\\u009b\\u2028\\u202e\\ufffd"' in log.read_text()


def test_a_runner_with_standard_conforming_strings_off_cannot_hide_a_blocked_run(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    """Actor: pipeline_runner (must never hide runs). A blocked run logs its failure with the
    session's own settings: standard_conforming_strings = off, which the runner may set, must
    not turn the logging into an error that takes the record of the blocked run with it."""
    log = server_log(db)
    one_journey(db, slug="7d-post-surgery")
    squatted = int(
        db.execute("SELECT coalesce(max(run_id), 0) + 1 AS n FROM pipeline.pipeline_runs").fetchone()["n"]
    )
    key = db.execute("SELECT run_key1, run_key2 FROM pipeline._run_lock_keys(%s)", (squatted,)).fetchone()
    with connect(db_url) as squatter, connect(db_url, user="pipeline_runner") as runner:
        squatter.execute("SELECT pg_advisory_lock(%s, %s)", (key["run_key1"], key["run_key2"]))
        runner.execute("SET standard_conforming_strings = off")
        start = log.stat().st_size
        with pytest.raises(psycopg.errors.ExternalRoutineException, match="could not start: blocked"):
            runner.execute("CALL pipeline.run_patient_journey_pipeline()")
    [blocked] = db.execute("SELECT * FROM pipeline.pipeline_runs WHERE run_id = %s", (squatted,)).fetchall()
    assert blocked["status"] == "failed" and blocked["error_message"].startswith("blocked: ")
    [line] = expected_lines(db, f"f.run_id = {squatted} AND f.stage = 'run'")
    assert line in logged_lines(log, start)


def test_two_writers_of_one_failures_log_take_turns(
    db: psycopg.Connection[Any], reader_env: dict[str, str], tmp_path: Path
) -> None:
    """Two cron lines writing one file at once: the second waits for the first's lock, then
    finds the lines there, rather than both appending them."""
    log = tmp_path / "failures.log"
    one_journey(db, slug="7d-post-surgery")
    run(db)
    argv = [sys.executable, "-m", "pytools", "failures", "--log", str(log)]
    with log.open("ab") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        waiting = subprocess.Popen(argv, env=reader_env, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
        time.sleep(1.5)
        assert waiting.poll() is None  # still waiting for the lock
        held.write(f"{expected_lines(db)[0]}\n".encode())  # the other writer's line
        held.flush()
        fcntl.flock(held, fcntl.LOCK_UN)
    out, _ = waiting.communicate(timeout=60)
    assert waiting.returncode == 0 and "nothing to add" in out
    assert log.read_text().splitlines() == expected_lines(db)


def test_one_failures_log_kept_for_two_databases_holds_the_failures_of_both(
    db: psycopg.Connection[Any], db_url: str, server: str, template_url: str, tmp_path: Path
) -> None:
    """Two databases (one cron line each) keep one failures.log: their failure ids are the
    same numbers, yet neither's lines keep the other's out, nor does a look-alike line of
    someone else's with a failure id yet to come."""
    log = tmp_path / "failures.log"
    log.write_text(f"{PREFIX}1 failure_id=3 written by someone else\n")
    other_name = f"pjp_other_{os.getpid()}"
    other_url = create_database(server, other_name, template=TEMPLATE)
    try:
        with connect(other_url) as other:
            for conn, slug in ((db, "bad-here"), (other, "bad-there")):
                one_journey(conn)
                plant_bad_slugs(conn, [slug])
                run(conn)
                plant_bad_slugs(conn, [f"{slug}-again"], first_id=300)
                run(conn)
            for url in (other_url, db_url):
                env = clean_env(with_params(url, user="pipeline_reader"))
                assert_ok(cli("failures", "--log", str(log), env=env, cwd=tmp_path))
            both = expected_lines(other) + expected_lines(db)
    finally:
        drop_database(server, other_name)
    assert both[0].startswith(f"{PREFIX}1 failure_id=1 ") and both[len(both) // 2].startswith(
        f"{PREFIX}1 failure_id=1 "
    )
    assert log.read_text().splitlines()[1:] == both


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_failures_log_refuses_a_fifo_or_a_device_in_one_line(
    kind: str, db: psycopg.Connection[Any], reader_env: dict[str, str], tmp_path: Path
) -> None:
    """FILE must be a file: a FIFO or a device (/dev/null here; /dev/full, which reads as
    endless zeros, the same) is one line and exit 2, not a traceback or a read that never ends."""
    one_journey(db, slug="7d-post-surgery")
    run(db)
    path = tmp_path / "fifo"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path = Path("/dev/null")
    result = cli("failures", "--log", str(path), env=reader_env, cwd=tmp_path)
    assert "is not a regular file" in assert_one_error_line(result, USAGE)


def test_a_failures_log_held_locked_by_someone_else_is_an_error_after_a_while_not_a_hang(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Actor: another local OS account that may only read FILE, which is enough to flock it.
    Were the writers to wait for ever, each hourly cron line would pile up beside the last, each
    holding a database connection, until the database refuses connections. They give up."""
    log = tmp_path / "failures.log"
    log.touch()
    one_journey(db, slug="7d-post-surgery")
    run(db)
    monkeypatch.setattr(failure_log, "LOCK_WAIT", 1.0)
    outcome: list[BaseException | failure_log.Appended] = []

    def write() -> None:
        try:
            outcome.append(failure_log.append_failure_log(with_params(db_url, user="pipeline_reader"), log))
        except UserError as exc:
            outcome.append(exc)

    with log.open("rb") as held:  # read only
        fcntl.flock(held, fcntl.LOCK_EX)
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        writer.join(timeout=20)
        done = not writer.is_alive()
    writer.join(timeout=20)
    assert done, "the writer still waits for the lock"
    [error] = outcome
    assert isinstance(error, UserError) and "locked by another process" in str(error)
    assert log.read_bytes() == b""


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--run-id", "1"], "leave out --run-id and --all"),
        (["--all"], "leave out --run-id and --all"),
        ([], "it is a directory"),
    ],
)
def test_failures_log_refuses_what_it_cannot_do_in_one_line(
    args: list[str], said: str, reader_env: dict[str, str], tmp_path: Path
) -> None:
    line = assert_one_error_line(
        cli("failures", "--log", str(tmp_path), *args, env=reader_env, cwd=tmp_path), USAGE
    )
    assert said in line


def test_failures_log_for_a_role_that_may_not_read_failures_names_the_grant(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    one_journey(db, slug="7d-post-surgery")
    run(db)
    env = clean_env(with_params(db_url, user="pipeline_runner"))
    result = cli("failures", "--log", str(tmp_path / "f.log"), env=env, cwd=tmp_path)
    assert "GRANT pipeline_reader TO pipeline_runner" in assert_one_error_line(result, result.returncode)
    assert result.returncode != 0
