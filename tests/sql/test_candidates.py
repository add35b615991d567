"""A run's candidates are named relations (pipeline._prepare_candidates): a DBA can prepare them
with pipeline.preview_run() and read what a run would write, and the window row they declare
has the window table's shape."""

from __future__ import annotations

import re
from typing import Any

import psycopg

from tests.helpers.pipeline import COMPARED, hostile_rows, load, run

Conn = psycopg.Connection[dict[str, Any]]


def previewed(db: Conn, query: str) -> list[dict[str, Any]]:
    """Rows of `query` over the relations preview_run() prepares, in one transaction that ends
    with nothing written."""
    with db.transaction(force_rollback=True):
        db.execute("SELECT pipeline.preview_run()")
        return db.execute(query).fetchall()


def test_a_preview_shows_the_rows_a_full_run_writes_and_why_each_other_pair_is_held_back(db: Conn) -> None:
    load(db, hostile_rows(duplicated_patient_journeys=True))
    queued = db.execute("SELECT count(*) AS n FROM pipeline.change_queue").fetchone()
    # as text: the hostile dates include some Python's date cannot hold
    by_row = f"SELECT ROW({COMPARED})::text AS w FROM %s ORDER BY patient_journey_id, activity_id"
    preview = previewed(db, by_row % "pg_temp.run_window")
    held_back = previewed(
        db,
        "SELECT patient_journey_id, activity_id, held_back::text FROM pg_temp.run_candidate "
        "WHERE held_back IS NOT NULL ORDER BY 1, 2",
    )
    # it wrote nothing: no run, no window, the queue as it was
    assert db.execute("SELECT count(*) AS n FROM pipeline.pipeline_runs").fetchone() == {"n": 0}
    windows_now = db.execute("SELECT count(*) AS n FROM pipeline.patient_journey_schedule_window").fetchone()
    assert windows_now == {"n": 0}
    assert db.execute("SELECT count(*) AS n FROM pipeline.change_queue").fetchone() == queued

    assert run(db, full=True)["status"] == "succeeded"
    written = db.execute(by_row % "pipeline.patient_journey_schedule_window").fetchall()
    assert preview == written and len(written) > 0
    recorded = db.execute(
        "SELECT patient_journey_id, activity_id, held_back::text FROM pipeline.held_back_pair ORDER BY 1, 2"
    ).fetchall()
    assert held_back == recorded and len(recorded) > 0


def test_the_candidates_go_with_their_transaction(db: Conn) -> None:
    db.execute("BEGIN")
    db.execute("SELECT pipeline.preview_run()")
    db.execute("COMMIT")
    left = db.execute(
        "SELECT c.relname FROM pg_class AS c "
        "WHERE c.relnamespace = pg_my_temp_schema() AND c.relname LIKE 'run%'"
    ).fetchall()
    assert left == []
    # and a run in the same session starts, as it would not with any run_* object left
    assert run(db)["status"] == "succeeded"


def test_the_window_row_has_the_columns_of_the_window_table_a_run_writes_in_its_order(db: Conn) -> None:
    """And the held-back row those of held_back_pair, which a run inserts it into by position."""
    shape = """
        SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type
        FROM pg_attribute AS a
        WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
    """
    with db.transaction(force_rollback=True):
        db.execute("SELECT pipeline.preview_run()")
        window_row = db.execute(shape, ("pg_temp.run_window",)).fetchall()
        held_back_row = db.execute(shape, ("pg_temp.run_held_back_row",)).fetchall()
    assert held_back_row == db.execute(shape, ("pipeline.held_back_pair",)).fetchall()
    table = db.execute(shape, ("pipeline.patient_journey_schedule_window",)).fetchall()
    assert window_row == [c for c in table if c["name"] not in ("inserted_at", "updated_at")]
    names = [c["name"] for c in window_row]
    assert [n for n in names if n != "retired_at"] == COMPARED.split(", ")


def test_no_level_of_a_full_runs_candidate_query_keeps_the_levels_above_it_out_of_parallel_workers(
    db: Conn,
) -> None:
    """A full run prepares its candidates in unlogged tables that parallel workers can read, so
    that the candidate query and its comparison with the stored rows run in them. A subquery
    with OFFSET or LIMIT (OFFSET 0 is the usual way to keep a level from being pulled up) gives
    the query around it no partial plan: every level above ran in the leader (at 100,000
    journeys, 3.9 million candidates compared with the stored rows by one process). The levels
    are kept apart by pipeline._computed_once instead. Read from the view's definition, as the
    planner's choice between equal plans of a few rows cannot show it."""
    load(db, hostile_rows(duplicated_patient_journeys=True))
    with db.transaction(force_rollback=True):
        db.execute("SELECT pipeline._parse_schedules()")
        db.execute("SELECT pipeline._prepare_candidates(false, p_parallel => true)")
        view = db.execute("SELECT pg_get_viewdef('pg_temp.run_candidate'::regclass) AS sql").fetchone()
    assert view is not None and "_computed_once(" in view["sql"]  # schema named unless on search_path
    assert re.findall(r"\b(?:OFFSET|LIMIT)\s+\S+", view["sql"], re.IGNORECASE) == []
