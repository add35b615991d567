"""Small helpers the tests share: load source rows, run the pipeline, read results."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row, tuple_row

from pytools.sql_files import routine_files

# The window columns a run computes (not its timestamps, nor when it retired a pair), and what
# identifies a failure row: what a comparison of two runs' outcomes looks at.
COMPARED = (
    "patient_id, patient_journey_id, activity_id, activity_content_slug, schedule_id, schedule_slug, "
    "schedule_start_offset_days, schedule_end_offset_days, schedule_milestone_slug, milestone_date, "
    "window_start_date, window_end_date, result_count, completed_on, held_back"
)
FAILURE_KEY = (
    "stage, schedule_id, schedule_slug, patient_journey_id, activity_id, error_message, rows_held_back"
)


# A trigger function that fails as a full disk would: put on a pipeline table, it makes that
# table unwritable.
DISK_FULL = """
CREATE FUNCTION public.pjp_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full';
END;
$$;
"""


def quiet(_: str) -> None:
    """A progress callback that prints nothing."""


def insert(
    conn: psycopg.Connection[Any], table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    cols = ", ".join(columns)
    marks = ", ".join(["%s"] * len(columns))
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO public.{table} ({cols}) VALUES ({marks})", list(rows))


def run(conn: psycopg.Connection[Any], trigger: str = "manual", *, full: bool = False) -> dict[str, Any]:
    """CALL the procedure and return this session's run row."""
    conn.execute("CALL pipeline.run_patient_journey_pipeline(%s, %s)", (trigger, full))
    return latest_run(conn)


def run_in_thread(
    url: str, application_name: str, outcome: dict[str, Any], *, full: bool = False
) -> threading.Thread:
    """CALL the procedure (a full run when `full`) from a new session in a thread; `outcome` gets
    status "returned" or "error" (with the error), for tests that hold a run mid-way and act on it."""

    def target() -> None:
        try:
            with psycopg.connect(url, autocommit=True, application_name=application_name) as conn:
                conn.execute("CALL pipeline.run_patient_journey_pipeline(p_full => %s)", (full,))
            outcome["status"] = "returned"
        except psycopg.Error as exc:
            outcome["status"] = "error"
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def slow_run(conn: psycopg.Connection[Any], url: str, seconds: float) -> tuple[dict[str, Any], list[str]]:
    """A real run kept waiting `seconds` by another session's lock on public.schedule; returns
    its run row and the messages (notices, warnings) it raised."""
    messages: list[str] = []
    conn.add_notice_handler(lambda diag: messages.append(f"{diag.severity}: {diag.message_primary}"))
    with psycopg.connect(url) as blocker:
        blocker.execute("LOCK TABLE public.schedule IN ACCESS EXCLUSIVE MODE")
        release = threading.Timer(seconds, blocker.rollback)
        release.start()
        try:
            row = run(conn)
        finally:
            release.join()
    return row, messages


def bulk_fallbacks(conn: psycopg.Connection[Any]) -> list[str]:
    """From now on, the notices of every run on `conn` whose one bulk write of the window table
    failed and fell back to one pair at a time: a list that stays empty while each run writes
    in one statement."""
    fallbacks: list[str] = []

    def note(diag: psycopg.errors.Diagnostic) -> None:
        if "bulk upsert failed" in (diag.message_primary or ""):
            fallbacks.append(diag.message_primary or "")

    conn.add_notice_handler(note)
    return fallbacks


def latest_run(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    row = conn.execute(
        "SELECT * FROM pipeline.pipeline_runs WHERE backend_pid = pg_backend_pid() "
        "ORDER BY run_id DESC LIMIT 1"
    ).fetchone()
    assert row is not None
    return dict(row)


def windows(conn: psycopg.Connection[Any]) -> dict[tuple[int, int], dict[str, Any]]:
    rows = conn.execute("SELECT * FROM pipeline.patient_journey_schedule_window").fetchall()
    return {(r["patient_journey_id"], r["activity_id"]): dict(r) for r in rows}


# The pairs of pipeline._adherence per report key and status rank, counted from the rows, and
# as pipeline._adherence_counts gives them from the counts the triggers keep.
_ADHERENCE_KEY = (
    "activity_id, activity_content_slug, schedule_milestone_slug, schedule_start_offset_days, status_rank"
)
ADHERENCE_COUNTED = (
    f"SELECT {_ADHERENCE_KEY}, count(*) AS pairs FROM pipeline._adherence(%s) "
    f"GROUP BY {_ADHERENCE_KEY} ORDER BY 1, 2, 3, 4, 5"
)
ADHERENCE_KEPT = (
    f"SELECT {_ADHERENCE_KEY}, sum(pairs) AS pairs FROM pipeline._adherence_counts(%s) "
    f"GROUP BY {_ADHERENCE_KEY} ORDER BY 1, 2, 3, 4, 5"
)


def adherence_counts(conn: psycopg.Connection[Any], as_of: str) -> tuple[list[Any], list[Any]]:
    """(the counts the report reads, the same counted from the pairs) as of `as_of`: equal
    while the triggers keep pipeline.adherence_group right."""
    with conn.cursor(row_factory=tuple_row) as cur:
        kept = cur.execute(ADHERENCE_KEPT, (as_of,)).fetchall()
        counted = cur.execute(ADHERENCE_COUNTED, (as_of,)).fetchall()
    assert counted, "no pairs to count"
    return kept, counted


def current_failures(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute("SELECT * FROM pipeline.current_failures ORDER BY failure_id")]


def one_journey(
    conn: psycopg.Connection[Any], slug: str = "4d-2d-pre-op", operation: str | None = "2026-03-10"
) -> None:
    """Patient journey 1 on journey 1, which prescribes activity 10 on schedule 100 (`slug`)."""
    insert(conn, "schedule", ["id", "slug"], [(100, slug)])
    insert(conn, "activity", ["id", "content_slug", "schedule_id"], [(10, "knee-survey", 100)])
    insert(conn, "journey_activity", ["journey_id", "activity_id"], [(1, 10)])
    insert(
        conn,
        "patient_journey",
        ["id", "patient_id", "journey_id", "operation_date"],
        [(1, 501, 1, operation)],
    )


def journeys_of_one_activity(
    conn: psycopg.Connection[Any], count: int, slug: str = "4d-2d-pre-op", *, dated: bool = True
) -> None:
    """Patient journeys 1..count on journey 1, which prescribes activity 1 on schedule 1 (`slug`);
    operated in March 2026 when `dated`, else with no dates. Generated by the server: thousands
    of rows in one statement."""
    insert(conn, "schedule", ["id", "slug"], [(1, slug)])
    insert(conn, "activity", ["id", "content_slug", "schedule_id"], [(1, "prep", 1)])
    insert(conn, "journey_activity", ["journey_id", "activity_id"], [(1, 1)])
    conn.execute(
        "INSERT INTO public.patient_journey (id, patient_id, journey_id, operation_date) "
        "SELECT g, g, 1, CASE WHEN %s THEN date '2026-03-01' + g %% 30 END FROM generate_series(1, %s) AS g",
        (dated, count),
    )


def two_activity_journeys(conn: psycopg.Connection[Any], count: int, operation: str = "2026-05-01") -> None:
    """Patient journeys 1..count on journey 1, which prescribes two activities on two schedules."""
    insert(conn, "schedule", ["id", "slug"], [(1, "4d-2d-pre-op"), (2, "1d-7d-post-op")])
    insert(conn, "activity", ["id", "content_slug", "schedule_id"], [(1, "prep", 1), (2, "recovery", 2)])
    insert(conn, "journey_activity", ["journey_id", "activity_id"], [(1, 1), (1, 2)])
    insert(
        conn,
        "patient_journey",
        ["id", "patient_id", "journey_id", "operation_date"],
        [(i, 1000 + i, 1, operation) for i in range(1, count + 1)],
    )


def wait_until_blocked(admin: psycopg.Connection[Any], application_name: str, timeout: float = 30.0) -> int:
    """The pid of the session named `application_name` once it waits on a lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
            (application_name,),
        ).fetchone()
        if row:
            return int(row["pid"] if isinstance(row, dict) else row[0])
        time.sleep(0.05)
    raise AssertionError(f"{application_name} never blocked")


def refuse_success(conn: psycopg.Connection[Any]) -> None:
    """Make every run fail at its very end, after it has done its work: a trigger refuses to
    record it as succeeded (DROP TRIGGER refuse_success ON pipeline.pipeline_runs undoes it)."""
    conn.execute(
        """
        CREATE OR REPLACE FUNCTION public.refuse_success() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'refused for the test'; END $$;
        CREATE TRIGGER refuse_success BEFORE UPDATE ON pipeline.pipeline_runs
            FOR EACH ROW WHEN (NEW.status = 'succeeded') EXECUTE FUNCTION public.refuse_success();
        """
    )


def advisory_locks_held(conn: psycopg.Connection[Any]) -> int:
    """How many advisory locks this session holds (the pipeline's run lock is one)."""
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    ).fetchone()
    assert row is not None
    return int(row["count"] if isinstance(row, dict) else row[0])


# --- a planter's look-alikes in schema public (threat-model.md: "a planter") ------------------
#
# One place for what a planter shadows. Each look-alike records that it ran (planted_ran(), a
# row in public.planted_log written as whoever ran it), then behaves like the real thing, so a
# routine that falls into one still works and the test sees exactly what was called.

# Every catalog type the SQL names that a domain can shadow (bigint, integer, boolean and
# timestamp are keywords for int8, int4, bool and the timestamp type, but a cast or declaration
# may spell the catalog name; record, trigger and void are pseudo-types: no domain over them).
PLANTED_TYPES = (
    "text", "bool", "int2", "int4", "int8", "numeric", "float8", "date", "timestamp", "timestamptz",
    "interval", "jsonb", "name", "oid", "regclass", "regtype", "regprocedure", "regnamespace",
)  # fmt: skip
# Every operator the SQL uses, planted for each catalog variant whose operands are planted types
# (or polymorphic): an unqualified operator in unpinned code resolves to the planted one.
PLANTED_OPERATORS = ("=", "<>", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "||", "~")
# What cannot be generated from the catalog: the aggregates the SQL calls (count(*), count, sum,
# array_agg, string_agg, bool_and, bool_or, max, min), format(text, VARIADIC "any") and
# pg_typeof("any") (a PL/pgSQL function cannot take "any"; the all-text overload of format wins
# for calls whose arguments are all text, and an anyelement pg_typeof for any one argument).
_PLANTED_BY_HAND = """
CREATE FUNCTION public.pg_event_trigger_ddl_commands(OUT classid oid, OUT objid oid, OUT objsubid integer,
    OUT command_tag text, OUT object_type text, OUT schema_name text, OUT object_identity text,
    OUT in_extension boolean) RETURNS SETOF record LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN PERFORM public.planted_ran('pg_event_trigger_ddl_commands');
RETURN QUERY SELECT c.classid, c.objid, c.objsubid, c.command_tag, c.object_type, c.schema_name,
                    c.object_identity, c.in_extension FROM pg_event_trigger_ddl_commands() AS c; END $$;
CREATE FUNCTION public.format(f text, VARIADIC a text[]) RETURNS text LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN PERFORM public.planted_ran('format'); RETURN format(f, VARIADIC a); END $$;
CREATE FUNCTION public.pg_typeof(v anyelement) RETURNS regtype LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN PERFORM public.planted_ran('pg_typeof'); RETURN pg_typeof(v); END $$;
CREATE FUNCTION public.planted_count_star(s int8) RETURNS int8 LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN PERFORM public.planted_ran('count'); RETURN s + 1; END $$;
CREATE AGGREGATE public.count(*) (SFUNC = public.planted_count_star, STYPE = int8, INITCOND = '0');
CREATE FUNCTION public.planted_count(s int8, v int8) RETURNS int8 LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN PERFORM public.planted_ran('count'); RETURN s + (v IS NOT NULL)::int4; END $$;
CREATE AGGREGATE public.count(int8) (SFUNC = public.planted_count, STYPE = int8, INITCOND = '0');
CREATE FUNCTION public.planted_sum(s numeric, v int8) RETURNS numeric LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN PERFORM public.planted_ran('sum'); RETURN coalesce(s, 0) + v; END $$;
CREATE AGGREGATE public.sum(int8) (SFUNC = public.planted_sum, STYPE = numeric);
CREATE FUNCTION public.planted_array_agg(s anycompatiblearray, v anycompatible)
RETURNS anycompatiblearray LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN PERFORM public.planted_ran('array_agg'); RETURN array_append(s, v); END $$;
CREATE AGGREGATE public.array_agg(anycompatible)
    (SFUNC = public.planted_array_agg, STYPE = anycompatiblearray);
CREATE FUNCTION public.planted_string_agg(s text, v text, d text) RETURNS text LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN PERFORM public.planted_ran('string_agg'); RETURN coalesce(s || d || v, v); END $$;
CREATE AGGREGATE public.string_agg(text, text) (SFUNC = public.planted_string_agg, STYPE = text);
CREATE FUNCTION public.planted_bool_and(s bool, v bool) RETURNS bool LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN PERFORM public.planted_ran('bool_and'); RETURN coalesce(s AND v, v, s); END $$;
CREATE AGGREGATE public.bool_and(bool) (SFUNC = public.planted_bool_and, STYPE = bool);
CREATE FUNCTION public.planted_bool_or(s bool, v bool) RETURNS bool LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN PERFORM public.planted_ran('bool_or'); RETURN coalesce(s OR v, v, s); END $$;
CREATE AGGREGATE public.bool_or(bool) (SFUNC = public.planted_bool_or, STYPE = bool);
CREATE FUNCTION public.planted_max(s timestamptz, v timestamptz) RETURNS timestamptz LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN PERFORM public.planted_ran('max'); RETURN greatest(s, v); END $$;
CREATE AGGREGATE public.max(timestamptz) (SFUNC = public.planted_max, STYPE = timestamptz);
CREATE FUNCTION public.planted_min(s timestamptz, v timestamptz) RETURNS timestamptz LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN PERFORM public.planted_ran('min'); RETURN least(s, v); END $$;
CREATE AGGREGATE public.min(timestamptz) (SFUNC = public.planted_min, STYPE = timestamptz);
"""
# Names the regular expression below takes for calls but that are syntax (or not the
# catalog's): nothing to plant, and a planter cannot shadow them either.
_NOT_CATALOG_CALLS = frozenset(
    ("and", "any", "as", "coalesce", "conflict", "exists", "filter", "from", "greatest", "in", "into",
     "join", "key", "lateral", "least", "nullif", "on", "operator", "or", "returning", "table", "values",
     "when", "where")
)  # fmt: skip
# A call: a name, unqualified or in pg_catalog (the pipeline's routines are pipeline.*), then "(".
_CALL = re.compile(r"(?<![.\w])(?:pg_catalog\s*\.\s*)?([a-z_][a-z0-9_]*)\s*\(", re.IGNORECASE)
# The schema of the SQL's own routines and tables, which calls name qualified.
_OWN_NAME = re.compile(r"^(?:_|run_|pipeline)")

# Arguments and results a planted look-alike cannot take (pseudo-types other than polymorphic).
_UNPLANTABLE_TYPES = "'any', 'internal', 'cstring', 'record', 'trigger', 'event_trigger', 'language_handler'"
_FUNCTIONS_TO_PLANT = f"""
SELECT p.proname, pg_catalog.pg_get_function_arguments(p.oid) AS arguments,
       pg_catalog.pg_get_function_result(p.oid) AS result, p.pronargs, p.provariadic <> 0 AS variadic,
       p.proretset
FROM pg_catalog.pg_proc AS p
WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind = 'f' AND p.proname = ANY (%s)
  AND NOT EXISTS (SELECT FROM unnest(p.proargtypes::oid[] || p.prorettype) AS t (oid)
                  WHERE t.oid::regtype::text IN ({_UNPLANTABLE_TYPES}))
  AND (p.proallargtypes IS NULL OR p.proretset)
ORDER BY p.oid
"""
_OPERATORS_TO_PLANT = """
SELECT o.oid, o.oprname, o.oprleft::regtype::text AS l, o.oprright::regtype::text AS r,
       o.oprresult::regtype::text AS result
FROM pg_catalog.pg_operator AS o
WHERE o.oprnamespace = 'pg_catalog'::regnamespace AND o.oprname = ANY (%(names)s)
  AND o.oprkind = 'b' AND o.oprresult <> 'internal'::regtype
  AND (SELECT bool_and(t.typname = ANY (%(types)s) OR t.typelem <> 0 AND t.typname LIKE '\\_%%'
                       AND substr(t.typname, 2) = ANY (%(types)s) OR t.typname LIKE 'any%%')
       FROM pg_catalog.pg_type AS t WHERE t.oid IN (o.oprleft, o.oprright))
ORDER BY o.oid
"""


def catalog_calls_in_sql() -> list[str]:
    """Every name the package's routines call as a function, other than their own routines and
    SQL syntax: the functions (and aggregates) a planter would shadow."""
    names: set[str] = set()
    for path in routine_files():
        code = re.sub(r"--[^\n]*", "", path.read_text(encoding="utf-8"))
        for match in _CALL.finditer(code):
            name = match.group(1).lower()
            if name not in _NOT_CATALOG_CALLS and not _OWN_NAME.match(name):
                names.add(name)
    return sorted(names)


def column_names_in_sql() -> list[str]:
    """Every word of the package's routines (their column names, aliases, variables such as
    tg_argv and v_keys, and keywords): a source table's extra column of one of these names
    could be taken for the pipeline's own."""
    names: set[str] = set()
    for path in routine_files():
        code = re.sub(r"--[^\n]*", "", path.read_text(encoding="utf-8"))
        names |= {m.lower() for m in re.findall(r"\b[A-Za-z_][A-Za-z0-9_]*\b", code)}
    return sorted(names)


def add_look_alike_columns(conn: psycopg.Connection[Any]) -> int:
    """Give each source table a text column of every name in column_names_in_sql() it lacks;
    returns how many columns it added."""
    added = 0
    names = column_names_in_sql()
    for table in ("patient_journey", "journey_activity", "activity", "schedule", "survey_result"):
        have = {
            r[0] if isinstance(r, tuple) else r["attname"]
            for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass",  # system columns too
                (f"public.{table}",),
            )
        }
        missing = [n for n in names if n not in have]
        clauses = sql.SQL(", ").join(sql.SQL("ADD COLUMN {} text").format(sql.Identifier(n)) for n in missing)
        conn.execute(sql.SQL("ALTER TABLE {} ").format(sql.Identifier("public", table)) + clauses)
        added += len(missing)
    return added


def _look_alike(row: dict[str, Any]) -> str:
    """A function with the catalog one's exact signature that records the call, then makes it."""
    args = [f"${i}" for i in range(1, row["pronargs"] + 1)]
    if row["variadic"]:
        args[-1] = "VARIADIC " + args[-1]
    call = f"pg_catalog.{row['proname']}({', '.join(args)})"
    if row["proretset"]:
        body = f"RETURN QUERY SELECT * FROM {call}"
    elif row["result"] == "void":  # a function returning void returns nothing
        body = f"PERFORM {call}; RETURN"
    else:
        body = f"RETURN {call}"
    return (
        f"CREATE FUNCTION public.{row['proname']}({row['arguments']}) RETURNS {row['result']} "
        f"LANGUAGE plpgsql SET search_path = pg_catalog "
        f"AS $$ BEGIN PERFORM public.planted_ran('{row['proname']}'); {body}; END $$"
    )


def plant_look_alikes(conn: psycopg.Connection[Any]) -> list[str]:
    """As the planter (CREATE on public): a look-alike in public of every catalog function the
    SQL calls, of its aggregates and operators, and a domain over each of PLANTED_TYPES whose
    CHECK records that it ran. Returns the names planted, functions and operators once each."""
    conn.execute("SET search_path = pg_catalog")  # the planter's own code means the real thing
    conn.execute(
        "CREATE TABLE public.planted_log (who name NOT NULL DEFAULT current_user, what text NOT NULL);"
        "GRANT INSERT ON public.planted_log TO PUBLIC;"
        "CREATE FUNCTION public.planted_ran(p_what text) RETURNS boolean LANGUAGE plpgsql "
        "SET search_path = pg_catalog AS $$ BEGIN "
        "INSERT INTO public.planted_log (what) VALUES (p_what); RETURN true; END $$;"
    )
    planted: set[str] = set()
    with conn.cursor(row_factory=dict_row) as cur:
        for row in cur.execute(_FUNCTIONS_TO_PLANT, (catalog_calls_in_sql(),)).fetchall():
            try:
                with conn.transaction():
                    conn.execute(_look_alike(row).encode())
                planted.add(row["proname"])
            except psycopg.errors.DatabaseError:
                pass  # e.g. a polymorphic result PL/pgSQL cannot return: others of the name stay
        conn.execute(_PLANTED_BY_HAND.encode())
        planted |= {
            "pg_event_trigger_ddl_commands",  # without its last column, of a type PL/pgSQL cannot return
            "format",
            "pg_typeof",
            "count",
            "sum",
            "array_agg",
            "string_agg",
            "bool_and",
            "bool_or",
            "max",
            "min",
        }
        operators = cur.execute(
            _OPERATORS_TO_PLANT, {"names": list(PLANTED_OPERATORS), "types": list(PLANTED_TYPES)}
        ).fetchall()
        for op in operators:
            function = f"public.planted_operator_{op['oid']}"
            conn.execute(
                f"CREATE FUNCTION {function}(l {op['l']}, r {op['r']}) RETURNS {op['result']} "
                f"LANGUAGE plpgsql SET search_path = pg_catalog AS $$ BEGIN "
                f"PERFORM public.planted_ran('operator {op['oprname']}'); "
                f"RETURN l OPERATOR(pg_catalog.{op['oprname']}) r; END $$;"
                f"CREATE OPERATOR public.{op['oprname']} "
                f"(LEFTARG = {op['l']}, RIGHTARG = {op['r']}, FUNCTION = {function})".encode()
            )
            planted.add(f"operator {op['oprname']}")
    for name in PLANTED_TYPES:  # last: the look-alikes above take the catalog's types
        conn.execute(
            f"CREATE DOMAIN public.{name} AS pg_catalog.{name} CHECK (public.planted_ran('type {name}'))"
        )
        planted.add(f"type {name}")
    conn.execute("RESET search_path")
    return sorted(planted)


def planted_runs(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """(role, what) for each planted object that ran, once each."""
    rows = conn.execute("SELECT DISTINCT who::text, what FROM public.planted_log ORDER BY 2, 1").fetchall()
    return [(r["who"], r["what"]) if isinstance(r, dict) else (r[0], r[1]) for r in rows]


# --- hostile and broken source rows (tests/sql/test_hostile_input.py says what each must give) ---

Rows = dict[str, tuple[Sequence[str], list[tuple[Any, ...]]]]

MIN_DATE, MAX_DATE = "4714-11-24 BC", "5874897-12-31"  # PostgreSQL's date range
MIN_TIMESTAMP, MAX_TIMESTAMP = "4714-11-24 00:00:00 BC", "294276-12-31 23:59:59"
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1

# Text a careless pipeline would mangle or execute.
NASTY = "O'Brien's \"knee\" \\ back\\slash \\x41 $$; DROP TABLE pipeline.milestone; -- %s %I %L {0} ?"
NASTY_SLUGS: dict[int, str | None] = {
    810: "4d-2d-pre-op'; DROP TABLE pipeline.patient_journey_schedule_window; --",
    820: "op\\d14",
    830: "E'\\x34d-pre-op'",
    840: "%s-%I-%L",
    850: "x" * 100_000,
    860: "1d-op\\",
    870: '"4d-2d-pre-op"',
    880: None,
    890: "",
    895: "99999999999d-1d-pre-op",  # beyond int4
}
LONG_TEXT = "\U0001f9b5 \u00e9\u00e8 \u202e right-to-left " + "long " * 20_000

PATIENT_JOURNEY = ("id", "patient_id", "journey_id", "registration_date", "operation_date", "discharge_date")


def good_rows() -> Rows:
    """Ordinary rows: journey 1 prescribes activities 10, 20, 30 to patient journeys 1 and 2."""
    return {
        "schedule": (("id", "slug"), [(100, "4d-2d-pre-op"), (200, "reg-d0"), (300, "always")]),
        "activity": (
            ("id", "content_slug", "schedule_id"),
            [(10, "knee-survey", 100), (20, "welcome", 200), (30, "diary", 300)],
        ),
        "journey_activity": (("journey_id", "activity_id"), [(1, 10), (1, 20), (1, 30)]),
        "patient_journey": (
            PATIENT_JOURNEY,
            [(1, 501, 1, "2026-01-05", "2026-03-10", None), (2, 502, 1, "2026-02-01", "2026-04-01", None)],
        ),
    }


def hostile_rows(duplicated_patient_journeys: bool) -> Rows:
    """Every hostile kind; `duplicated_patient_journeys` adds the second copies of patient
    journeys 4 and 5 (the pipeline takes another path when patient journey ids repeat)."""
    schedules = [
        # duplicated ids: the row with the smallest slug is used (README), whichever parses
        (600, "2d-op"),
        (600, "1d-op"),
        (700, "3q-op"),
        (700, "1w-op"),
        # negative ids
        (-100, "2w-6w-post-dis"),
        # dates at the edges
        (610, "reg-d0"),
        (620, "1d-pre-reg"),
        (630, "1d-post-dis"),
        (640, "pre-dis"),
        (650, "0d-1d-post-dis"),
        # text
        (800, " 4D-2D-PRE-OP\t"),
        *NASTY_SLUGS.items(),
        # NULL key: no activity can name it, so it is neither parsed nor reported
        (None, "not a slug at all"),
    ]
    activities = [
        (None, "null-id", 100),  # NULL key
        (40, "survey-only", 100),
        (50, "dup-a", 100),  # duplicated id, different schedules
        (50, "dup-b", 200),
        (51, "dup-schedule", 600),
        (52, "dup-broken-schedule", 700),
        (-10, "negative", -100),
        (61, "edge-reg", 610),
        (62, "edge-before-reg", 620),
        (63, "edge-after-dis", 630),
        (64, "edge-until-dis", 640),
        (66, "edge-ends-after-dis", 650),
        (65, "edge-always", 300),
        (70, NASTY, 800),
        (71, LONG_TEXT, 100),
        *[(id_, f"nasty-{id_}", id_) for id_ in NASTY_SLUGS],
    ]
    journey_activity = [
        (None, 10),  # NULL keys
        (1, None),
        (2, 50),  # duplicated rows
        (2, 50),
        (2, 51),
        (2, 52),
        (-1, -10),
        (-1, -999),  # a missing activity, negative id
        (3, 61),
        (3, 62),
        (3, 63),
        (3, 64),
        (3, 66),
        (3, 65),
        (4, 70),
        (4, 71),
        *[(4, id_) for id_ in NASTY_SLUGS],
    ]
    patient_journeys = [
        (None, 900, 1, "infinity", "-infinity", None),  # NULL key, dates that would fail
        (3, 503, None, "2026-05-05", None, None),  # NULL journey: its survey results still pair
        (4, 504, 2, None, "2026-06-10", None),
        (5, 505, 2, None, "2026-07-01", None),
        (-1, -5, -1, None, None, "2026-09-01"),  # negative ids
        (BIGINT_MIN, BIGINT_MIN, -1, None, None, "2026-10-01"),
        (BIGINT_MAX, BIGINT_MAX, 1, "2026-11-01", "2026-11-02", None),
        (10, 510, 3, MIN_DATE, None, MAX_DATE),  # the ends of the date range
        (11, 511, 3, "infinity", None, "-infinity"),
        (12, 512, 1, None, MAX_TIMESTAMP, None),  # the ends of the timestamp range
        (13, 513, 1, None, MIN_TIMESTAMP, None),
        (14, 514, 1, None, "-infinity", None),
        (20, 520, 4, None, "2026-12-24", None),  # text
    ]
    if duplicated_patient_journeys:
        patient_journeys += [
            (4, 504, 2, None, "2026-06-10", None),  # identical
            (5, 505, 2, None, "2026-08-01", None),  # different
        ]
    survey_results = [
        (1, None, 10),  # NULL keys
        (2, 1, None),
        (None, 3, 20),  # NULL survey_result id: not a key the pipeline uses
        (4, 2, 40),
        (5, 2, 40),  # duplicated pair
        (4, 1, 10),  # duplicated id, pair already prescribed
        (6, -77, 10),  # missing patient journey, negative id
    ]
    return {
        "schedule": (("id", "slug"), schedules),
        "activity": (("id", "content_slug", "schedule_id"), activities),
        "journey_activity": (("journey_id", "activity_id"), journey_activity),
        "patient_journey": (PATIENT_JOURNEY, patient_journeys),
        "survey_result": (("id", "patient_journey_id", "activity_id"), survey_results),
    }


def load(db: psycopg.Connection[Any], rows: Rows) -> None:
    for table, (columns, values) in rows.items():
        insert(db, table, columns, values)
