"""Small helpers the tests share: load source rows, run the pipeline, read results."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

# The window columns a run computes (not its timestamps), and what identifies a failure row:
# what a comparison of two runs' outcomes looks at.
COMPARED = (
    "patient_id, patient_journey_id, activity_id, activity_content_slug, schedule_id, schedule_slug, "
    "schedule_start_offset_days, schedule_end_offset_days, schedule_milestone_slug, milestone_date, "
    "window_start_date, window_end_date"
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


def advisory_locks_held(conn: psycopg.Connection[Any]) -> int:
    """How many advisory locks this session holds (the pipeline's run lock is one)."""
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    ).fetchone()
    assert row is not None
    return int(row["count"] if isinstance(row, dict) else row[0])


# --- hostile and broken source rows (tests/test_hostile_input.py says what each must give) ---

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
