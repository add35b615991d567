"""What a run computes does not depend on the session that calls it (issue 8, "Results that
depend on the session"): not on settings the caller SETs, nor on defaults pipeline_runner gives
its own role (`ALTER ROLE pipeline_runner SET ...`, which every pg_cron run then inherits).
The run pins what its meaning depends on (pipeline._execute_run's SET clauses), is written so
that no setting rereads its literals (no backslash outside an E'' string: a lint over every SQL
file), keeps duplicated rows by value rather than by their text, and refuses, naming the
setting and its fix, what would keep it from working at all (pipeline._check_run_session)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from pytools.sql_files import sql_root
from tests.helpers.databases import with_params
from tests.helpers.pipeline import (
    COMPARED,
    FAILURE_KEY,
    advisory_locks_held,
    good_rows,
    hostile_rows,
    insert,
    load,
)
from tests.helpers.sql_lexer import backslashes_outside_e_strings

Conn = psycopg.Connection[dict[str, Any]]
State = tuple[dict[tuple[int, int], tuple[Any, ...]], list[tuple[Any, ...]]]

# --- the lint ---------------------------------------------------------------------------------


def package_sql_files() -> list[Path]:
    return sorted((sql_root() / "procedures").glob("*.sql")) + sorted(
        (sql_root() / "migrations").glob("*.sql")
    )


def test_no_sql_file_holds_a_backslash_that_standard_conforming_strings_would_reread() -> None:
    """Every routine and migration reads the same under standard_conforming_strings = off:
    a backslash appears only in E'' strings, whose meaning no setting changes."""
    files = package_sql_files()
    assert len(files) > 25
    found = [
        f"{p.name}:{f.line}: {f.what}: {f.text}"
        for p in files
        for f in backslashes_outside_e_strings(p.read_text())
    ]
    assert found == []


LINT_CASES = [
    ("SELECT 'a\\b'", 1),
    ("SELECT E'a\\b', e'\\t'", 0),
    ("SELECT N'a\\b'", 1),
    ("SELECT U&'\\0041'", 1),
    ("SELECT 'it''s \\ here'", 1),
    ("SELECT E'it\\'s', 'fine'", 0),
    ("-- a comment '\\'\nSELECT 1 /* '\\' /* nested */ */", 0),
    ('SELECT 1 AS "a\\b"', 0),
    ("CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT 'x\\y' $$", 1),
    ("DO $outer$ BEGIN EXECUTE $sql$ SELECT 'x\\y' $sql$; END $outer$", 1),
    ("DO $outer$ BEGIN EXECUTE format('%1$s', $q$ E'\\n' $q$); END $outer$", 0),
    ("SELECT $1, x$y FROM t WHERE a ~ E'\\\\d'", 0),
    ("SELECT 1 \\gset", 1),
    ("SELECTE'a\\b'", 1),
]


@pytest.mark.parametrize(("sql", "findings"), LINT_CASES)
def test_the_lint_finds_a_backslash_wherever_a_setting_would_reread_it(sql: str, findings: int) -> None:
    assert len(backslashes_outside_e_strings(sql)) == findings


# --- data whose outcome a session could change -------------------------------------------------


def session_sensitive_rows(db: Conn) -> None:
    """Rows the unpinned run read differently under some setting, on top of the hostile rows:
    a slug ending in v (standard_conforming_strings = off read '\\v' in the white-space class
    as the letter v, so "inv" became "in"), and duplicated ids whose copies' text sorts one way
    under DateStyle ISO and the other under German, SQL or Postgres (07-02 < 08-01, but
    02.07 > 01.08, and Thu > Sat)."""
    insert(db, "schedule", ["id", "slug"], [(990, "3d-inv"), (991, "1d-post-inv")])
    insert(
        db,
        "activity",
        ["id", "content_slug", "schedule_id", "created_at"],
        [
            (990, "invite", 990, None),
            (991, "copy-a", 991, "2026-07-02"),
            (991, "copy-b", 990, "2026-08-01"),
        ],
    )
    insert(db, "journey_activity", ["journey_id", "activity_id"], [(7, 990), (7, 991)])
    insert(
        db,
        "patient_journey",
        ["id", "patient_id", "journey_id", "invitation_date", "operation_date"],
        [
            (70, 570, 7, "2026-07-02", None),
            (70, 570, 7, "2026-08-01", None),
            (71, 571, 7, "2026-05-05", None),
        ],
    )


def load_everything(db: Conn) -> None:
    # an app's activity table may hold a date before the columns a run reads: then the text of
    # a duplicated activity's copies sorts by that date first
    db.execute(
        "ALTER TABLE public.activity DROP COLUMN content_slug, DROP COLUMN schedule_id, "
        "ADD COLUMN created_at timestamp, ADD COLUMN content_slug text, ADD COLUMN schedule_id bigint"
    )
    load(db, good_rows())
    load(db, hostile_rows(duplicated_patient_journeys=True))
    session_sensitive_rows(db)


# Changes an incremental run then recomputes, hostile values among them.
CHANGES = [
    "UPDATE public.patient_journey SET invitation_date = invitation_date WHERE id = 70",
    "UPDATE public.activity SET created_at = created_at WHERE id = 991",
    "UPDATE public.patient_journey SET operation_date = 'infinity' WHERE id = 1",
    "INSERT INTO public.schedule (id, slug) VALUES (992, 'pre-inv')",
    "UPDATE public.activity SET schedule_id = 992 WHERE id = 990",
    "INSERT INTO public.patient_journey (id, patient_id, journey_id, operation_date) "
    "VALUES (5, 505, 2, '2026-06-30')",
]


# dates as PostgreSQL's text (the ends of its range are beyond Python's date), in ISO
AS_TEXT = ", ".join(f"{c}::text" if c.endswith(("_date", "_on")) else c for c in COMPARED.split(", "))


def state(url: str) -> State:
    """The window table and the current failures, read by a session with default settings."""
    with psycopg.connect(url, autocommit=True) as clean:
        windows = {
            (r[1], r[2]): r
            for r in clean.execute(f"SELECT {AS_TEXT} FROM pipeline.patient_journey_schedule_window")
        }
        failures = clean.execute(
            f"SELECT {FAILURE_KEY} FROM pipeline.current_failures ORDER BY 1, 2, 3, 4, 5, 6"
        ).fetchall()
    return windows, failures


def last_run(url: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as clean:
        row = clean.execute(
            "SELECT status, mode, rows_inserted, rows_updated, rows_held_back, error_message "
            "FROM pipeline.pipeline_runs ORDER BY run_id DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    return row


def call_run(conn: psycopg.Connection[Any], url: str, *, full: bool) -> dict[str, Any]:
    """CALL the procedure in `conn`; the outcome as a session with default settings reads it."""
    conn.execute("CALL pipeline.run_patient_journey_pipeline('manual', %s)", (full,))
    return last_run(url)


# --- hostile settings -----------------------------------------------------------------------

# Settings any role may set for itself (so pipeline_runner may, as its role's defaults),
# each one that changed or could change how the run reads, compares or writes something.
HOSTILE_PROFILES = {
    "german": {
        "standard_conforming_strings": "off",
        "backslash_quote": "on",
        "DateStyle": "German",
        "IntervalStyle": "sql_standard",
        "TimeZone": "Pacific/Kiritimati",
        "extra_float_digits": "-15",
        "bytea_output": "escape",
        "quote_all_identifiers": "on",
        "array_nulls": "off",
        "transform_null_equals": "on",
        "plpgsql.extra_errors": "all",
        "exit_on_error": "on",
        "default_transaction_isolation": "serializable",
        "default_transaction_deferrable": "on",
        "default_tablespace": "pg_global",
        "idle_in_transaction_session_timeout": "1ms",
        "plan_cache_mode": "force_generic_plan",
        "lc_monetary": "C",
    },
    "sql-dmy": {
        "standard_conforming_strings": "off",
        "DateStyle": "SQL, DMY",
        "IntervalStyle": "iso_8601",
        "TimeZone": "America/Adak",
        "default_transaction_isolation": "repeatable read",
        "row_security": "off",
        "exit_on_error": "on",
    },
    "postgres-style": {
        "DateStyle": "Postgres, DMY",
        "IntervalStyle": "postgres_verbose",
        "TimeZone": "Asia/Kathmandu",
    },
}


@pytest.fixture
def runner_defaults_reset(server: str) -> Iterator[None]:
    """Role defaults are cluster-wide: whatever a test gives pipeline_runner is taken back."""
    yield
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute("ALTER ROLE pipeline_runner RESET ALL")


def hostile_session(url: str, settings: dict[str, str], how: str) -> psycopg.Connection[Any]:
    """A connection as pipeline_runner with `settings`, given as its role's defaults (which it
    may set itself) or SET in the session; or a superuser's session, for settings only a
    superuser may change."""
    runner_url = url if how == "superuser session" else with_params(url, user="pipeline_runner")
    if how == "role defaults":
        with psycopg.connect(runner_url, autocommit=True) as runner:
            runner.execute("DO $$ BEGIN END $$")  # loads PL/pgSQL, whose settings are among them
            for name, value in settings.items():
                runner.execute(f"ALTER ROLE pipeline_runner SET {name} = '{value}'")
    conn = psycopg.connect(runner_url, autocommit=True)
    if how in ("session", "superuser session"):
        for name, value in settings.items():
            conn.execute(f"SET {name} = '{value}'")
    # PL/pgSQL compiles a function once per session: compiled here, under these settings, it is
    # the one the runs below use, whatever the run pins
    # (the runner may not read what _change_capture_ready reads, so it cannot compile that one)
    conn.execute("SELECT * FROM pipeline.parse_schedule_slug('always')")
    for name, value in settings.items():  # the settings hold in this session
        shown = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
        assert shown is not None and str(shown[0]).lower().replace(" ", "").startswith(
            value.lower().replace(" ", "")
        ), name
    return conn


# Only a superuser (trusted) may change these; the run does not depend on them either.
SUPERUSER_PROFILES = {
    "use-column": {"plpgsql.variable_conflict": "use_column", "standard_conforming_strings": "off"},
    "use-variable": {"plpgsql.variable_conflict": "use_variable", "DateStyle": "German"},
}
CASES = [(p, how) for p in HOSTILE_PROFILES for how in ("role defaults", "session")]
CASES += [(p, "superuser session") for p in SUPERUSER_PROFILES]


@pytest.mark.parametrize(("profile", "how"), CASES)
def test_hostile_settings_change_nothing_a_full_or_incremental_run_computes(
    db: Conn, db_url: str, profile: str, how: str, runner_defaults_reset: None
) -> None:
    """pipeline_runner (threat-model.md: must never choose what a run computes) gives its role,
    or its session, settings that reread literals, reformat dates, compare NULLs, end the
    session on a caught error or move temp tables: full and incremental runs compute exactly
    what runs under default settings compute."""
    load_everything(db)
    assert call_run(db, db_url, full=True)["status"] == "succeeded"
    expected = state(db_url)
    assert len(expected[0]) > 30 and len(expected[1]) > 20

    settings = HOSTILE_PROFILES.get(profile) or SUPERUSER_PROFILES[profile]
    with hostile_session(db_url, settings, how) as runner:
        full = call_run(runner, db_url, full=True)
        assert (full["status"], full["rows_inserted"], full["rows_updated"]) == ("succeeded", 0, 0), full
        assert state(db_url) == expected
        for change in CHANGES:
            db.execute(change)
            incremental = call_run(runner, db_url, full=False)
            assert (incremental["status"], incremental["mode"]) == ("succeeded", "incremental"), (
                change,
                incremental,
            )
            hostile = state(db_url)
            # the same data under default settings: a full run finds nothing to change
            default_full = call_run(db, db_url, full=True)
            assert (default_full["rows_inserted"], default_full["rows_updated"]) == (0, 0), change
            assert state(db_url) == hostile, change
            assert default_full["rows_held_back"] == incremental["rows_held_back"], change


def test_a_slug_parses_the_same_under_standard_conforming_strings_off(db: Conn) -> None:
    """Called directly (it is public), parse_schedule_slug reads its white-space class the same
    in a session with standard_conforming_strings = off: "inv" stays "inv"."""
    db.execute("SET standard_conforming_strings = off")
    assert db.execute("SELECT * FROM pipeline.parse_schedule_slug(' 3d-inv\t')").fetchall() == [
        {"start_offset_days": 3, "end_offset_days": None, "milestone_slug": "invitation"}
    ]


def test_alternating_datestyle_between_runs_changes_no_window(db: Conn, db_url: str) -> None:
    """pipeline_runner's PGDATESTYLE (threat-model.md: must never choose what a run computes):
    which copy of a duplicated patient journey or activity a run keeps does not follow
    DateStyle, so alternating it between runs rewrites nothing."""
    load_everything(db)
    assert call_run(db, db_url, full=True)["status"] == "succeeded"
    expected = state(db_url)
    for datestyle in ("German", "ISO", "SQL, DMY", "ISO", "Postgres, MDY", "ISO"):
        with psycopg.connect(
            with_params(db_url, user="pipeline_runner"),
            options=f"-c DateStyle={datestyle.replace(' ', '')}",  # as PGDATESTYLE would
            autocommit=True,
        ) as runner:
            for full in (True, False):
                db.execute("UPDATE public.patient_journey SET id = id WHERE id = 70")
                db.execute("UPDATE public.activity SET id = id WHERE id IN (50, 991)")
                result = call_run(runner, db_url, full=full)
                assert (result["status"], result["rows_inserted"], result["rows_updated"]) == (
                    "succeeded",
                    0,
                    0,
                ), (
                    datestyle,
                    full,
                )
                assert state(db_url) == expected, datestyle


# --- settings a run refuses -------------------------------------------------------------------

REFUSED = [
    ("default_transaction_read_only", "on", "a run writes its results"),
    ("statement_timeout", "200ms", "a run needs longer than that"),
    ("lock_timeout", "10ms", "a run must be able to wait that long for a lock"),
]


@pytest.mark.parametrize(("name", "value", "reason"), REFUSED)
def test_a_run_refuses_a_setting_that_would_break_it_naming_it_and_its_fix(
    db: Conn, db_url: str, name: str, value: str, reason: str, runner_defaults_reset: None
) -> None:
    """pipeline_runner makes a setting that breaks every run its role's default: the run does
    not start, and its error names the setting, where it was set and the command that undoes it.
    Set in the session instead, the fix is a RESET there."""
    load(db, good_rows())
    runner_url = with_params(db_url, user="pipeline_runner")
    with psycopg.connect(runner_url, autocommit=True) as runner:
        runner.execute(f"ALTER ROLE pipeline_runner SET {name} = '{value}'")
    with psycopg.connect(runner_url, autocommit=True) as runner:
        with pytest.raises(psycopg.errors.InvalidParameterValue) as refused:
            runner.execute("CALL pipeline.run_patient_journey_pipeline()")
        assert advisory_locks_held(runner) == 0
    message = refused.value.diag.message_primary or ""
    assert f"refuses to run with {name} = {value}" in message
    assert "a default of role pipeline_runner" in message and reason in message
    assert f"ALTER ROLE pipeline_runner RESET {name};" in message
    assert refused.value.diag.message_hint and f"RESET {name}" in refused.value.diag.message_hint
    assert db.execute("SELECT count(*) AS n FROM pipeline.pipeline_runs").fetchone() == {"n": 0}

    db.execute("ALTER ROLE pipeline_runner RESET ALL")
    with psycopg.connect(runner_url, autocommit=True) as runner:
        runner.execute(f"SET {name} = '{value}'")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=f"RESET {name}; in the session"):
            runner.execute("CALL pipeline.run_patient_journey_pipeline()")
        runner.execute(f"RESET {name}")
        runner.execute("CALL pipeline.run_patient_journey_pipeline()")  # and without it, the run runs
    assert db.execute("SELECT status FROM pipeline.pipeline_runs").fetchall() == [{"status": "succeeded"}]


def test_timeouts_of_a_second_or_more_are_honoured_and_idle_timeouts_never_touch_a_run(
    db: Conn, db_url: str, runner_defaults_reset: None
) -> None:
    """A DBA may bound a run's time: a timeout of 1 s or more is not refused, and the idle
    timeouts cannot fire during a run (its session is never idle inside the CALL)."""
    load(db, good_rows())
    runner_url = with_params(db_url, user="pipeline_runner")
    with psycopg.connect(runner_url, autocommit=True) as runner:
        for name, value in (
            ("statement_timeout", "1s"),
            ("lock_timeout", "1s"),
            ("idle_in_transaction_session_timeout", "1ms"),
        ):
            runner.execute(f"ALTER ROLE pipeline_runner SET {name} = '{value}'")
    with psycopg.connect(runner_url, autocommit=True) as runner:
        runner.execute("CALL pipeline.run_patient_journey_pipeline()")
    assert db.execute("SELECT status FROM pipeline.pipeline_runs").fetchall() == [{"status": "succeeded"}]


@pytest.mark.parametrize("name", ["statement_timeout", "lock_timeout"])
def test_the_timeout_boundary_is_one_second_however_the_value_is_written(
    db: Conn, db_url: str, name: str
) -> None:
    """A run reads the timeouts as the server shows them (in the largest unit that divides
    them) before it looks in pg_settings: every spelling of 1 to 999 ms is refused, and 0 and
    1 s or more, however written, are not (below 100 ms the timeout may cancel the CALL first)."""
    load(db, good_rows())
    with psycopg.connect(with_params(db_url, user="pipeline_runner"), autocommit=True) as runner:
        for value in ("100ms", "999ms", "0.5s", "999"):
            runner.execute(f"SET {name} = '{value}'")
            with pytest.raises(psycopg.errors.InvalidParameterValue, match=f"refuses to run with {name} = "):
                runner.execute("CALL pipeline.run_patient_journey_pipeline()")
        for value in ("0", "1000ms", "1001", "1.5s", "1min"):
            runner.execute(f"SET {name} = '{value}'")
            runner.execute("CALL pipeline.run_patient_journey_pipeline()")
    runs = db.execute(
        "SELECT count(*) AS n FROM pipeline.pipeline_runs WHERE status = 'succeeded'"
    ).fetchone()
    assert runs == {"n": 5}
