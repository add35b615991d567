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
