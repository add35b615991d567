"""Static checks of the package's PL/pgSQL with plpgsql_check (Debian: postgresql-15-plpgsql-check),
in a migrated database: every routine in schema pipeline, trigger functions against each table
their triggers are on, with its security (SQL injection) warnings on. plpgsql_check reads the
code the way PL/pgSQL will run it, so it finds the errors a run would only hit on some path
(a misspelt column, a wrong type, a record read before it is assigned)."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest

from pytools.sql_files import routine_files

APT_PACKAGE = "postgresql-15-plpgsql-check"

# One row per check: a routine, or a trigger function with one of its triggers' tables.
ROUTINES_TO_CHECK = """
SELECT p.oid::regprocedure::text AS routine, coalesce(t.tgrelid, 0)::regclass::text AS relation,
       t.tgoldtable AS old_table, t.tgnewtable AS new_table,
       p.prorettype = 'trigger'::regtype AS is_trigger
FROM pg_proc AS p
JOIN pg_language AS l ON l.oid = p.prolang AND l.lanname = 'plpgsql'
LEFT JOIN pg_trigger AS t ON t.tgfoid = p.oid
WHERE p.pronamespace = 'pipeline'::regnamespace
ORDER BY 1, 2, 3, 4
"""
CHECK = """
SELECT c.level, c.lineno, c.statement, c.sqlstate, c.message, c.detail, c.query
FROM plpgsql_check_function_tb(%(routine)s::regprocedure, %(relation)s::regclass,
                               fatal_errors => false, other_warnings => true, extra_warnings => true,
                               security_warnings => true, compatibility_warnings => true,
                               performance_warnings => false,
                               oldtable => %(old_table)s, newtable => %(new_table)s) AS c
"""
# pipeline._capture_changes runs static SQL (issue 12: an EXECUTE per application statement cost
# more than the rest of the capture), one statement per event and key column, of which a
# table's triggers take only those of their events and its key column. It is checked on each
# table it is a trigger of, with both transition tables, and the only errors allowed there name
# a key column of another watched table that this table lacks (a branch never taken on it):
# every statement is checked against every table, each one error-free where it runs.
BRANCHING_TRIGGER = "pipeline._capture_changes()"
# Trigger functions that take a branch per event, each reading the transition tables of its
# event (PostgreSQL gives an INSERT trigger no old table, a DELETE trigger no new one): checked
# once per table, with both.
PER_EVENT_TRIGGERS = (BRANCHING_TRIGGER, "pipeline._count_adherence_groups()")
MISSING_KEY_COLUMN = re.compile(r"column [a-z]\.(\w+) does not exist")
KEY_COLUMNS_MISSING = """
SELECT coalesce(array_agg(DISTINCT w.key_column), '{}') AS columns
FROM pipeline._change_capture_tables() AS w
WHERE w.key_column IS NOT NULL
  AND NOT EXISTS (SELECT FROM pg_attribute AS a
                  WHERE a.attrelid = %(relation)s::regclass AND a.attname = w.key_column
                    AND NOT a.attisdropped)
"""
# What a routine writes to silence plpgsql_check's injection check (see test below), in any
# case and either form: the PERFORM 'PRAGMA:...' comment or plpgsql_check_pragma('disable:...').
SECURITY_OFF = re.compile(r"disable\s*:\s*security_warnings", re.IGNORECASE)


@pytest.fixture
def checked(db: psycopg.Connection[dict[str, Any]]) -> psycopg.Connection[dict[str, Any]]:
    """The test's migrated database with plpgsql_check (created as the superuser)."""
    available = db.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'plpgsql_check'").fetchone()
    if available is None:
        pytest.fail(
            "plpgsql_check is not installed on the test server: install the Debian package "
            f"{APT_PACKAGE} (`make system` does: scripts/install-system.sh), or add it to the server "
            "that TEST_DATABASE_URL names",
            pytrace=False,
        )
    db.execute("CREATE EXTENSION plpgsql_check")
    return db


def describe(check: dict[str, Any], problem: dict[str, Any]) -> str:
    on = f" on {check['relation']}" if check["is_trigger"] else ""
    where = f"body line {problem['lineno']} ({problem['statement']})" if problem["lineno"] else "routine"
    detail = f": {problem['detail']}" if problem["detail"] else ""
    found = f"{problem['level']} {problem['sqlstate']} {problem['message']}{detail}"
    return f"{check['routine']}{on}, {where}: {found}"


def test_plpgsql_check_reports_no_error_and_no_warning_in_any_routine(
    checked: psycopg.Connection[dict[str, Any]],
) -> None:
    checks = checked.execute(ROUTINES_TO_CHECK).fetchall()
    assert len({c["routine"] for c in checks}) > 20
    unattached = [c["routine"] for c in checks if c["is_trigger"] and c["relation"] == "-"]
    assert unattached == [], "a trigger function can only be checked against a table it is on"
    branching = [c for c in checks if c["routine"] == BRANCHING_TRIGGER]
    assert {c["relation"] for c in branching} >= {"patient_journey", "survey_result", "journey_activity"}
    per_event = [c for c in checks if c["routine"] in PER_EVENT_TRIGGERS]
    assert {c["routine"] for c in per_event} == set(PER_EVENT_TRIGGERS)
    checks = [c for c in checks if c["routine"] not in PER_EVENT_TRIGGERS]
    per_table = {(c["routine"], c["relation"]): c for c in per_event}.values()
    # each table once, with both transition tables
    checks += [{**c, "old_table": "old_rows", "new_table": "new_rows"} for c in per_table]
    problems: list[str] = []
    for check in checks:
        allowed: set[str] = set()
        if check["routine"] == BRANCHING_TRIGGER:
            missing = checked.execute(KEY_COLUMNS_MISSING, check).fetchone()
            allowed = set(missing["columns"]) if missing else set()
        # each check alone: the temp tables a routine's pragmas create die with its transaction,
        # so no routine passes thanks to another's pragma
        with checked.transaction(force_rollback=True):
            found = checked.execute(CHECK, check).fetchall()
        problems += [describe(check, p) for p in found if not never_taken_there(p, allowed)]
    assert problems == [], "plpgsql_check reports:\n" + "\n".join(problems)


def never_taken_there(problem: dict[str, Any], missing_key_columns: set[str]) -> bool:
    """An error of pipeline._capture_changes in the branch of a key column the table lacks."""
    named = MISSING_KEY_COLUMN.fullmatch(problem["message"]) if problem["sqlstate"] == "42703" else None
    return named is not None and named.group(1) in missing_key_columns


def test_no_routine_receives_sql_text_or_silences_the_injection_check(
    checked: psycopg.Connection[dict[str, Any]],
) -> None:
    """The steps of a run read named relations (pipeline._prepare_candidates makes them), so no
    routine EXECUTEs SQL it was handed: none may turn off plpgsql_check's security warnings,
    which the check above keeps on, and they do flag a routine that runs a text parameter."""
    silencing = [path.name for path in routine_files() if SECURITY_OFF.search(path.read_text())]
    assert silencing == []
    with checked.transaction(force_rollback=True):
        checked.execute(
            "CREATE FUNCTION pipeline.runs_what_it_is_given(p_sql text) RETURNS void LANGUAGE plpgsql "
            "AS $$ BEGIN EXECUTE p_sql; END; $$"
        )
        check = {
            "routine": "pipeline.runs_what_it_is_given(text)",
            "relation": "-",
            "old_table": None,
            "new_table": None,
        }
        found = checked.execute(CHECK, check).fetchall()
    assert [(f["level"], f["sqlstate"]) for f in found] == [("security", "00000")], found
