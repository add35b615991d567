"""The adherence report (pytools.adherence) counts what pipeline.adherence says, for every
status and every grouping, and reads each of the pipeline's tables once."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date
from typing import Any

import psycopg
import pytest

from pytools.adherence import BY, STATUSES, WEEKS_QUERY, adherence_report, report_query
from pytools.migrations import migrate
from tests.helpers.databases import connect
from tests.helpers.pipeline import adherence_counts, bulk_fallbacks, insert, run

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


def test_the_report_and_its_charts_read_the_kept_counts_and_the_held_back_pairs_once(reader: Conn) -> None:
    """Counting the statuses of millions of window rows per report cost it more than three
    scans of the table (issue 10): each grouping, and the charts, read the counts the window
    table's triggers keep (adherence_group) and held_back_pair, once each, and never the window
    table."""
    params = {"as_of": date(2026, 4, 1), "statuses": list(STATUSES)}
    for query in [*(report_query(by) for by in BY), WEEKS_QUERY]:
        plan = reader.execute(f"EXPLAIN (FORMAT JSON) {query}", params).fetchone()["QUERY PLAN"]  # type: ignore[index]
        scanned: list[str] = []

        def walk(node: dict[str, Any]) -> None:
            if "Relation Name" in node:
                scanned.append(node["Relation Name"])  # noqa: B023
            for child in node.get("Plans", []):
                walk(child)

        walk(plan[0]["Plan"])
        assert sorted(scanned) == ["adherence_group", "held_back_pair"], query


# Every way a window row's counted group changes, each followed by a check that the kept counts
# equal the pairs counted afresh: by runs (a pair held back and loaded again, retired and
# prescribed again, its result dated, its journey rescheduled) and by the owner's own writes.
WINDOW = "pipeline.patient_journey_schedule_window"
# (what happens, the statement, whether a run follows)
CHANGES = [
    ("a slug breaks: its pairs are held back",
     "UPDATE public.schedule SET slug = 'soon' WHERE id = 100", True),
    ("the slug is fixed: loaded again",
     "UPDATE public.schedule SET slug = '1d-7d-post-op' WHERE id = 100", True),
    ("an activity leaves the journey: retired",
     "DELETE FROM public.journey_activity WHERE activity_id = 18", True),
    ("it comes back",
     "INSERT INTO public.journey_activity (journey_id, activity_id) VALUES (1, 18)", True),
    ("a result is dated",
     "UPDATE public.survey_result SET end_time = '2026-03-13 10:00+00' "
     "WHERE coalesce(end_time, start_time) IS NULL", True),
    ("a journey is rescheduled",
     "UPDATE public.patient_journey SET operation_date = '2026-03-20' WHERE id = 2", True),
    ("the owner edits rows", f"UPDATE {WINDOW} SET completed_on = NULL WHERE patient_journey_id = 1", False),
    ("the owner deletes rows", f"DELETE FROM {WINDOW} WHERE patient_journey_id = 3", False),
    ("the owner empties the table", f"TRUNCATE {WINDOW}", False),
    ("a full run loads it again", None, True),
    # the load into the empty table counted its rows afterwards, its INSERT trigger dropped and
    # put back: the writes after it are counted again
    ("a journey is added after that load",
     "INSERT INTO public.patient_journey (id, patient_id, journey_id, operation_date) "
     "VALUES (7, 507, 1, '2026-03-10')", True),
    ("the owner inserts a row", f"INSERT INTO {WINDOW} (patient_id, patient_journey_id, activity_id, "
     "activity_content_slug, schedule_id, schedule_slug, schedule_start_offset_days, "
     "schedule_end_offset_days, schedule_milestone_slug, milestone_date, window_start_date, "
     "window_end_date, result_count, held_back) VALUES (508, 8, 10, 'knee', 100, '1d-7d-post-op', 1, 7, "
     "'op', '2026-03-10', '2026-03-11', '2026-03-17', 0, false)", False),
]  # fmt: skip


def test_the_kept_counts_follow_every_change_to_the_window_rows(reader: Conn, db: Conn) -> None:
    fallbacks = bulk_fallbacks(db)
    for name, change, then_run in CHANGES:
        if change:
            db.execute(change)
        if then_run:
            assert run(db, full=change is None)["status"] == "succeeded", name
            # each run wrote in one statement (the load into the empty table too), not pair by pair
            assert fallbacks == [], name
        for as_of in ("2026-03-01", "2026-03-12", "2026-07-01"):
            kept, counted = adherence_counts(reader, as_of)
            assert kept == counted, (name, as_of)
        # a group a statement emptied is dropped, not kept at nought
        emptied = db.execute("SELECT count(*) AS n FROM pipeline.adherence_group WHERE pairs <= 0").fetchone()
        assert emptied == {"n": 0}, name


def test_a_count_changes_in_place(reader: Conn, db: Conn) -> None:
    """A count is updated on its page (a heap-only update, no new index entry): an index that
    names the column every count changes (pairs) would make each update of a group write new
    entries in every index of the table, and bloat them run after run."""
    assert run(db)["status"] == "succeeded"
    with db.transaction():
        db.execute(f"UPDATE {WINDOW} SET completed_on = NULL, result_count = 0")
        counts = db.execute(
            "SELECT pg_stat_get_xact_tuples_updated(c.oid) AS updated, "
            "       pg_stat_get_xact_tuples_hot_updated(c.oid) AS hot "
            "FROM pg_class AS c WHERE c.oid = 'pipeline.adherence_group'::regclass"
        ).fetchone()
        assert counts["updated"] > 0
        assert counts["hot"] == counts["updated"]


def test_migrate_counts_the_groups_again_from_the_window_rows(reader: Conn, db: Conn, db_url: str) -> None:
    """Rows written while the triggers were disabled (by the owner) are counted right again by
    the next migrate, which rebuilds adherence_group from the window table."""
    db.execute(f"ALTER TABLE {WINDOW} DISABLE TRIGGER count_adherence_updated")
    db.execute(f"UPDATE {WINDOW} SET result_count = 0, completed_on = NULL")
    kept, counted = adherence_counts(reader, "2026-04-01")
    assert kept != counted
    db.execute(f"ALTER TABLE {WINDOW} ENABLE TRIGGER count_adherence_updated")
    migrate(db_url)
    kept, counted = adherence_counts(reader, "2026-04-01")
    assert kept == counted


def test_a_content_slug_of_any_length_is_counted_and_loads_in_one_statement(
    reader: Conn, db: Conn, db_url: str
) -> None:
    """Actor: the source tables' owner, who writes a content slug longer than a btree entry
    holds (2,704 bytes; an incompressible one): the window table has no index on it, and the
    counts' key holds its md5, so no write of its pairs fails (every run would otherwise fall
    back to one pair at a time and fail each; found by a hostile review), and migrate counts it
    too."""
    long_slug = "".join(hashlib.sha256(bytes([i])).hexdigest() for i in range(50))  # 3,200 bytes
    db.execute("UPDATE public.activity SET content_slug = %s WHERE id = 10", (long_slug,))
    fallbacks = bulk_fallbacks(db)
    outcome = run(db)
    assert outcome["status"] == "succeeded"
    assert fallbacks == []
    loads = db.execute(
        "SELECT count(*) AS n FROM pipeline.pipeline_failures WHERE run_id = %s AND stage = 'load'",
        (outcome["run_id"],),
    ).fetchone()
    assert loads == {"n": 0}
    migrate(db_url)
    kept, counted = adherence_counts(reader, "2026-04-01")
    assert kept == counted
    assert long_slug in {row[1] for row in kept}
