"""The adherence report (pytools.adherence) counts what pipeline.adherence says, for every
status and every grouping, and reads each of the pipeline's tables once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import psycopg
import pytest

from pytools.adherence import BY, STATUSES, WEEKS_QUERY, adherence_report, report_query
from tests.helpers.databases import connect
from tests.helpers.pipeline import insert, run

Conn = psycopg.Connection[dict[str, Any]]

# Operation on 2026-03-10 (journeys 1..6 on journey 1); discharge never recorded.
SCHEDULES = [
    (100, "1d-7d-post-op"),  # 2026-03-11 .. 2026-03-17, weeks 0
    (101, "pre-op"),  # open start .. 2026-03-10, no offset: week NULL
    (102, "3m-post-op"),  # 2026-06-08 .. open end
    (103, "always"),  # open on both sides, no milestone
    (104, "2w-6w-post-dis"),  # discharge date NULL: no window
    (105, "every other tuesday"),  # does not parse: held back
    (106, "10d-8d-pre-op"),  # 2026-02-28 .. 2026-03-02: offset -10, week -2
    (107, "2w-3w-post-op"),  # offset 14, week 2
]
ACTIVITIES = [(10, "knee", 100), (11, "prep", 101), (12, "late", 102), (13, "diary", 103), (14, "rehab", 104),
              (15, "broken", 105), (16, "unscheduled", None), (17, "consent", 106), (18, "walk", 107),
              (19, "gone", 100)]  # fmt: skip
# Results of activity 10 (window 2026-03-11 .. 2026-03-17) per journey: in, late, early,
# undated, none (overdue after the window), and of other activities.
RESULTS = [
    (1, 10, "2026-03-12 09:00+00", None), (2, 10, "2026-03-20 09:00+00", None),
    (3, 10, "2026-03-05 09:00+00", None), (4, 10, None, None), (5, 12, "2026-06-09 09:00+00", None),
    (1, 14, "2026-03-30 09:00+00", None), (2, 15, "2026-03-12 09:00+00", None),
    (3, 17, "2026-03-01 09:00+00", None), (6, 18, None, "2026-03-25 09:00+00"),
]  # fmt: skip
AS_OF = [date(2026, 2, 1), date(2026, 3, 1), date(2026, 3, 12), date(2026, 4, 1), date(2026, 7, 1)]


@pytest.fixture
def reader(db: Conn, db_url: str) -> Iterator[Conn]:
    """Every status in six journeys, with a retired pair (activity 19 left the journey after a
    run) and a held-back one; run; a session as pipeline_reader."""
    insert(db, "schedule", ["id", "slug"], SCHEDULES)
    insert(db, "activity", ["id", "content_slug", "schedule_id"], ACTIVITIES)
    insert(db, "journey_activity", ["journey_id", "activity_id"], [(1, a[0]) for a in ACTIVITIES])
    insert(
        db,
        "patient_journey",
        ["id", "patient_id", "journey_id", "operation_date"],
        [(j, 500 + j, 1, "2026-03-10") for j in range(1, 7)],
    )
    insert(db, "survey_result", ["patient_journey_id", "activity_id", "end_time", "start_time"], RESULTS)
    run(db)
    db.execute("DELETE FROM public.journey_activity WHERE activity_id = 19")
    run(db)
    assert db.execute(
        "SELECT count(*) AS n FROM pipeline.patient_journey_schedule_window WHERE retired_at IS NOT NULL"
    ).fetchone() == {"n": 6}
    with connect(db_url, "pipeline_reader") as conn:
        yield conn


# The report as a straightforward query over pipeline.adherence counts it: (the group's
# columns, its expressions, a join); the week's offset from the pair's window row.
WEEK_OF_PAIR = (
    "CASE WHEN a.status <> 'held_back' THEN floor(w.schedule_start_offset_days::numeric / 7)::integer END"
)
WINDOW_OF_PAIR = (
    "LEFT JOIN pipeline.patient_journey_schedule_window AS w "
    "ON w.patient_journey_id = a.patient_journey_id AND w.activity_id = a.activity_id"
)
STRAIGHT = {
    "milestone": ("a.schedule_milestone_slug AS milestone", "a.schedule_milestone_slug", ""),
    "activity": ("a.activity_id, a.activity_content_slug", "a.activity_id, a.activity_content_slug", ""),
    "week": (f"{WEEK_OF_PAIR} AS week", WEEK_OF_PAIR, WINDOW_OF_PAIR),
}


def straight(conn: Conn, by: str, as_of: date) -> list[dict[str, Any]]:
    columns, keys, join = STRAIGHT[by]
    return conn.execute(
        f"SELECT {columns}, a.status, count(*) AS pairs, "
        f"round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY {keys}), 1) AS share_pct "
        f"FROM pipeline.adherence(%s) AS a {join} "
        f"GROUP BY {keys}, a.status ORDER BY {keys}, array_position(%s::text[], a.status)",
        (as_of, list(STATUSES)),
    ).fetchall()


def test_the_report_counts_what_adherence_says_for_every_status_by_milestone_activity_and_week(
    reader: Conn,
) -> None:
    """Actor: the analyst, pipeline_reader, who checks the report against pipeline.adherence."""
    seen = set()
    for as_of in AS_OF:
        for by in BY:
            got = adherence_report(reader, as_of, by)
            assert got == straight(reader, by, as_of), (as_of, by)
            seen |= {row["status"] for row in got}
    assert seen == set(STATUSES)  # every status is counted on one of the dates
    weeks = {row["week"] for row in adherence_report(reader, date(2026, 4, 1), "week")}
    assert weeks == {None, -2, 0, 2, 12}


def test_the_charts_count_what_adherence_says_per_milestone_week_and_status(reader: Conn) -> None:
    for as_of in AS_OF:
        got = reader.execute(WEEKS_QUERY, {"as_of": as_of, "statuses": list(STATUSES)}).fetchall()
        want = reader.execute(
            f"SELECT a.schedule_milestone_slug AS milestone, {WEEK_OF_PAIR} AS week, a.status, "
            f"count(*) AS pairs FROM pipeline.adherence(%s) AS a {WINDOW_OF_PAIR} "
            "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            (as_of,),
        ).fetchall()
        assert got == want, as_of


def test_the_report_and_its_charts_read_each_table_of_the_pipeline_once(reader: Conn) -> None:
    """The week used to join the window table again for each pair's offset: two scans of
    millions of rows (issue 10). Each grouping, and the charts, scan it and held_back_pair once,
    and each scan feeds the union itself, with no subquery step per row between them."""
    params = {"as_of": date(2026, 4, 1), "statuses": list(STATUSES)}
    for query in [*(report_query(by) for by in BY), WEEKS_QUERY]:
        plan = reader.execute(f"EXPLAIN (FORMAT JSON) {query}", params).fetchone()["QUERY PLAN"]  # type: ignore[index]
        scanned: list[tuple[str, str]] = []

        def walk(node: dict[str, Any], parent: str) -> None:
            if "Relation Name" in node:
                scanned.append((node["Relation Name"], parent))  # noqa: B023
            for child in node.get("Plans", []):
                walk(child, node["Node Type"])

        walk(plan[0]["Plan"], "")
        assert sorted(scanned) == [
            ("held_back_pair", "Append"),
            ("patient_journey_schedule_window", "Append"),
        ], query
