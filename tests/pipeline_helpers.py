"""Small helpers the tests share: load source rows, run the pipeline, read results."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg


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
