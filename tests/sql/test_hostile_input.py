"""Hostile and broken source rows (issue 4): NULL keys, duplicated ids, negative and extreme ids,
dates at the edges of PostgreSQL's range and infinite ones, text full of quotes, backslashes and
SQL. One run holds good rows and every hostile kind: each hostile row either loads correctly or
is a failure row naming it, the good rows load exactly as expected, and the run succeeds. The
same in an incremental run (good rows first, hostile rows after), which a full run then agrees
with row for row, also when hostile values arrive as changes to rows already loaded.

A row with a NULL key forms no pair (README: it is ignored), so it neither loads nor fails; the
test shows it disturbs nothing, even with dates that would fail or a slug that would not parse.

The source tables of sql/sample/source_tables.sql have no primary key and no NOT NULL, like a
real app database may lack them, so NULL keys and duplicated ids go straight in. Expected
windows are written out here from the slug grammar (spec/slug-grammar.md) and date arithmetic,
not read back from the pipeline. Dates are compared as PostgreSQL's text, since the ends of its
range (5874897 AD, 4714 BC) are beyond Python's `date`."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import psycopg
import pytest

from tests.helpers.pipeline import (
    BIGINT_MAX,
    BIGINT_MIN,
    LONG_TEXT,
    MAX_DATE,
    MIN_DATE,
    NASTY,
    NASTY_SLUGS,
    add_look_alike_columns,
    bulk_fallbacks,
    good_rows,
    hostile_rows,
    load,
    run,
)

Conn = psycopg.Connection[dict[str, Any]]

# Offsets of the slugs used here, read off the grammar's Forms table (start, end, milestone).
SLUGS = {
    "4d-2d-pre-op": (-4, -2, "operation"),  # o1-o2-pre-MS
    "reg-d0": (0, 0, "registration"),  # MS-d<N>
    "always": (None, None, None),
    "2w-6w-post-dis": (14, 42, "discharge"),  # o1-o2-post-MS, w = 7 days
    "1d-op": (1, None, "operation"),  # o-MS
    "2d-op": (2, None, "operation"),
    "1w-op": (7, None, "operation"),
    "1d-pre-reg": (-1, 0, "registration"),  # o-pre-MS
    "1d-post-dis": (1, None, "discharge"),  # o-post-MS
    "pre-dis": (None, 0, "discharge"),  # pre-MS
    "0d-1d-post-dis": (0, 1, "discharge"),  # o1-o2-post-MS
    " 4D-2D-PRE-OP\t": (-4, -2, "operation"),  # case and surrounding white space
}

# --- what the run must produce ---------------------------------------------------------------


def shifted(day: str | None, days: int | None) -> str | None:
    if day is None or days is None:
        return None
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def window(
    patient_id: int,
    content: str,
    schedule_id: int | None,
    slug: str | None,
    milestone_date: str | None,
    *,
    start: str | None = "computed",
    end: str | None = "computed",
) -> dict[str, Any]:
    """A window row; its dates from the slug's offsets unless given (for dates Python lacks)."""
    offset_start, offset_end, milestone = SLUGS[slug] if slug is not None else (None, None, None)
    if milestone is None:
        milestone_date = None
    return {
        "patient_id": patient_id,
        "activity_content_slug": content,
        "schedule_id": schedule_id,
        "schedule_slug": slug,
        "schedule_start_offset_days": offset_start,
        "schedule_end_offset_days": offset_end,
        "schedule_milestone_slug": milestone,
        "milestone_date": milestone_date,
        "window_start_date": shifted(milestone_date, offset_start) if start == "computed" else start,
        "window_end_date": shifted(milestone_date, offset_end) if end == "computed" else end,
    }


def journey_1(patient_id: int, registration: str | None, operation: str | None) -> dict[int, dict[str, Any]]:
    """The three windows of a patient journey on journey 1."""
    return {
        10: window(patient_id, "knee-survey", 100, "4d-2d-pre-op", operation),
        20: window(patient_id, "welcome", 200, "reg-d0", registration),
        30: window(patient_id, "diary", 300, "always", None),
    }


def expected_good() -> dict[tuple[int, int], dict[str, Any]]:
    rows = {}
    for pj, patient, registration, operation in (
        (1, 501, "2026-01-05", "2026-03-10"),
        (2, 502, "2026-02-01", "2026-04-01"),
    ):
        rows |= {(pj, a): w for a, w in journey_1(patient, registration, operation).items()}
    return rows


def expected_hostile(
    pj5_operation: str, activity_50: tuple[str, int, str]
) -> tuple[dict[tuple[int, int], dict[str, Any]], set[tuple[Any, ...]]]:
    """The windows the hostile rows add, and the failures (stage, schedule id, schedule slug,
    patient journey, activity, rows held back) that name the rest. Patient journey 5 and
    activity 50 are duplicated with different contents: the caller says which copy was kept."""
    rows: dict[tuple[int, int], dict[str, Any]] = {}
    # NULL patient_journey.journey_id: no prescribed pairs, but its survey result pairs
    rows[(3, 20)] = window(503, "welcome", 200, "reg-d0", "2026-05-05")
    # a survey result's own id (NULL, duplicated) is no key; a duplicated pair is one row
    rows[(2, 40)] = window(502, "survey-only", 100, "4d-2d-pre-op", "2026-04-01")
    # duplicated patient journeys, activities, schedules and journey_activity rows: one row per pair
    for pj, patient, operation in ((4, 504, "2026-06-10"), (5, 505, pj5_operation)):
        rows[(pj, 50)] = window(patient, *activity_50, operation)
        rows[(pj, 51)] = window(patient, "dup-schedule", 600, "1d-op", operation)  # the smallest slug
        rows[(pj, 52)] = window(patient, "dup-broken-schedule", 700, "1w-op", operation)
    # negative and extreme ids load like any other
    rows[(-1, -10)] = window(-5, "negative", -100, "2w-6w-post-dis", "2026-09-01")
    rows[(BIGINT_MIN, -10)] = window(BIGINT_MIN, "negative", -100, "2w-6w-post-dis", "2026-10-01")
    rows |= {(BIGINT_MAX, a): w for a, w in journey_1(BIGINT_MAX, "2026-11-01", "2026-11-02").items()}
    # the ends of the date range: a window inside it loads, even on its last or first day
    rows[(10, 61)] = window(510, "edge-reg", 610, "reg-d0", MIN_DATE, start=MIN_DATE, end=MIN_DATE)
    rows[(10, 64)] = window(510, "edge-until-dis", 640, "pre-dis", MAX_DATE, start=None, end=MAX_DATE)
    rows[(10, 65)] = window(510, "edge-always", 300, "always", None)
    rows[(11, 65)] = window(511, "edge-always", 300, "always", None)
    rows[(12, 10)] = window(
        512, "knee-survey", 100, "4d-2d-pre-op", "294276-12-31", start="294276-12-27", end="294276-12-29"
    )
    for pj in (12, 13, 14):  # their other milestones are NULL or unused
        rows[(pj, 20)] = window(500 + pj, "welcome", 200, "reg-d0", None)
        rows[(pj, 30)] = window(500 + pj, "diary", 300, "always", None)
    # text is data: stored as it is, the valid slug not normalised
    rows[(20, 70)] = window(520, NASTY, 800, " 4D-2D-PRE-OP\t", "2026-12-24")
    rows[(20, 71)] = window(520, LONG_TEXT, 100, "4d-2d-pre-op", "2026-12-24")

    infinite = (
        (61, 610, "reg-d0"),
        (62, 620, "1d-pre-reg"),
        (63, 630, "1d-post-dis"),
        (64, 640, "pre-dis"),
        (66, 650, "0d-1d-post-dis"),
    )
    failures = {
        ("match", None, None, -77, None, 1),  # survey result naming a missing patient journey
        ("match", None, None, None, -999, 2),  # journey -1 prescribes it to -1 and BIGINT_MIN
        # a window leaving the date range, or an infinite date: a failure naming the pair
        ("load", 620, "1d-pre-reg", 10, 62, 1),
        ("load", 630, "1d-post-dis", 10, 63, 1),
        ("load", 650, "0d-1d-post-dis", 10, 66, 1),  # starts on the last day, ends after it
        *{("load", schedule, slug, 11, activity, 1) for activity, schedule, slug in infinite},
        ("load", 100, "4d-2d-pre-op", 13, 10, 1),
        ("load", 100, "4d-2d-pre-op", 14, 10, 1),
        # slugs full of quotes, backslashes and SQL do not parse: a failure per schedule
        *{("parse", schedule, slug, None, None, 1) for schedule, slug in NASTY_SLUGS.items()},
    }
    return rows, failures


# --- reading the outcome ------------------------------------------------------------------------

WINDOW_COLUMNS = (
    "patient_id, activity_content_slug, schedule_id, schedule_slug, schedule_start_offset_days, "
    "schedule_end_offset_days, schedule_milestone_slug, milestone_date::text, window_start_date::text, "
    "window_end_date::text"
)


def windows_as_text(db: Conn) -> dict[tuple[int, int], dict[str, Any]]:
    rows = db.execute(
        f"SELECT patient_journey_id, activity_id, {WINDOW_COLUMNS} "
        "FROM pipeline.patient_journey_schedule_window"
    ).fetchall()
    return {(r.pop("patient_journey_id"), r.pop("activity_id")): r for r in rows}


def failures_now(db: Conn) -> set[tuple[Any, ...]]:
    rows = db.execute(
        "SELECT sqlstate, stage, schedule_id, schedule_slug, patient_journey_id, activity_id, rows_held_back "
        "FROM pipeline.current_failures"
    ).fetchall()
    # a bad slug is 22023, a missing reference 23503 (foreign key), a date out of range 22008
    assert {(r["stage"], r.pop("sqlstate")) for r in rows} <= {
        ("parse", "22023"),
        ("match", "23503"),
        ("load", "22008"),
    }
    found = [tuple(r.values()) for r in rows]
    assert len(found) == len(set(found)), "a failure reported twice"
    return set(found)


def kept_copies(actual: dict[tuple[int, int], dict[str, Any]]) -> tuple[str, tuple[str, int, str]]:
    """Which copy of the duplicated patient journey 5 and activity 50 the run kept: either may
    be, but it must be one of them."""
    pj5_operation = actual[(5, 51)]["milestone_date"]
    assert pj5_operation in ("2026-07-01", "2026-08-01")
    copies = {"dup-a": ("dup-a", 100, "4d-2d-pre-op"), "dup-b": ("dup-b", 200, "reg-d0")}
    return pj5_operation, copies[actual[(4, 50)]["activity_content_slug"]]


def assert_outcome(db: Conn, result: dict[str, Any]) -> None:
    assert result["status"] == "succeeded", result
    actual = windows_as_text(db)
    good = expected_good()
    # the good rows load exactly as they would alone
    assert {k: actual.get(k) for k in good} == good
    hostile, failures = expected_hostile(*kept_copies(actual))
    assert {k: v for k, v in actual.items() if k not in good} == hostile
    assert failures_now(db) == failures
    assert result["rows_held_back"] == sum(f[-1] for f in failures)


# --- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("duplicated", [True, False], ids=["duplicated-journeys", "unique-journeys"])
def test_a_full_run_loads_good_rows_and_loads_or_names_each_hostile_one(db: Conn, duplicated: bool) -> None:
    load(db, good_rows())
    load(db, hostile_rows(duplicated))
    result = run(db)
    assert result["mode"] == "full"  # the first run after installing
    assert_outcome(db, result)
    again = run(db, full=True)  # and a second full run changes nothing
    assert (again["rows_inserted"], again["rows_updated"]) == (0, 0)
    assert_outcome(db, again)


@pytest.mark.parametrize("look_alikes", [False, True], ids=["plain-columns", "look-alike-columns"])
@pytest.mark.parametrize("duplicated", [True, False], ids=["duplicated-journeys", "unique-journeys"])
def test_an_incremental_run_over_hostile_rows_agrees_with_a_full_run(
    db: Conn, duplicated: bool, look_alikes: bool
) -> None:
    """With look_alikes, actor: the source tables' owner, whose tables may have columns of any
    name: every source table gets a column of each word of the pipeline's SQL (pair_activity_id
    made every run fail as an ambiguous reference, tg_argv every application insert and
    delete), and the runs load exactly what they load without them; the application's writes
    go through."""
    if look_alikes:
        assert add_look_alike_columns(db) > 5000
    load(db, good_rows())
    first = run(db)
    assert (first["status"], first["rows_inserted"], first["failures"]) == ("succeeded", 6, 0), first
    load(db, hostile_rows(duplicated))
    result = run(db)
    assert result["mode"] == "incremental"
    assert_outcome(db, result)
    incremental = windows_as_text(db)
    full = run(db, full=True)
    assert (full["mode"], full["rows_inserted"], full["rows_updated"]) == ("full", 0, 0)
    assert_outcome(db, full)
    assert windows_as_text(db) == incremental
    if look_alikes:  # the application's updates and deletes pass the capture triggers as its inserts did
        with db.transaction(force_rollback=True):
            for table in ("patient_journey", "journey_activity", "activity", "schedule", "survey_result"):
                assert db.execute(f"UPDATE public.{table} SET tg_argv = 'x'").rowcount > 0
                assert db.execute(f"DELETE FROM public.{table}").rowcount > 0


@pytest.mark.parametrize(
    "index",
    # the copies of ids 4 and 5 have no registration date: NULLs are distinct in a unique index
    [
        "(id) WHERE id > 5",
        "(id, registration_date)",
        "((CASE WHEN registration_date IS NOT NULL THEN id END))",
    ],
    ids=["partial", "two columns", "expression"],
)
def test_a_unique_index_that_leaves_ids_duplicated_does_not_stop_the_run_looking_for_copies(
    db: Conn, index: str
) -> None:
    """Actor: the source tables' owner. A run skips its look for duplicated patient journey ids
    when a unique index on the id rules them out; one that only seems to must not."""
    load(db, good_rows())
    load(db, hostile_rows(True))
    db.execute(f"CREATE UNIQUE INDEX planted ON public.patient_journey {index}")
    fallbacks = bulk_fallbacks(db)
    assert_outcome(db, run(db))
    assert fallbacks == []


@pytest.mark.parametrize("full", [True, False], ids=["full", "incremental"])
def test_a_primary_key_on_the_patient_journey_id_spares_the_look_for_copies(db: Conn, full: bool) -> None:
    load(db, good_rows())
    if not full:
        run(db)
    load(db, hostile_rows(False))
    db.execute("CREATE UNIQUE INDEX unique_id ON public.patient_journey (id)")
    assert_outcome(db, run(db))


# Hostile values arriving as changes to rows an earlier run loaded, one statement at a time.
HOSTILE_CHANGES = [
    "UPDATE public.patient_journey SET id = NULL WHERE id = 2",
    "UPDATE public.patient_journey SET operation_date = 'infinity' WHERE id = 1",
    "INSERT INTO public.patient_journey (id, patient_id, journey_id, operation_date) "
    "VALUES (1, 501, 1, '2026-03-01')",
    "UPDATE public.schedule SET id = NULL WHERE id = 200",
    "UPDATE public.activity SET id = -id WHERE id = 30",
    "UPDATE public.journey_activity SET activity_id = NULL WHERE activity_id = 10",
    "INSERT INTO public.schedule (id, slug) VALUES (100, '0d-op')",
    "UPDATE public.schedule SET slug = $$1d-op'); DELETE FROM pipeline.milestone; --$$ WHERE id = 600",
    "UPDATE public.patient_journey SET discharge_date = '5874897-12-31' WHERE id = -1",
    "UPDATE public.survey_result SET patient_journey_id = NULL WHERE patient_journey_id = 2",
    "UPDATE public.patient_journey SET id = 2 WHERE id IS NULL",
    "UPDATE public.patient_journey SET registration_date = '-infinity', operation_date = '4714-11-24 BC' "
    "WHERE id = 3",
    "UPDATE public.activity SET id = NULL WHERE id = 40",
    "DELETE FROM public.patient_journey WHERE id = 2 AND patient_id = 900",
]


def test_hostile_changes_one_at_a_time_leave_incremental_and_full_runs_in_agreement(db: Conn) -> None:
    load(db, good_rows())
    load(db, hostile_rows(duplicated_patient_journeys=True))
    assert run(db)["status"] == "succeeded"
    for change in HOSTILE_CHANGES:
        db.execute(change)
        incremental = run(db)
        assert (incremental["status"], incremental["mode"]) == ("succeeded", "incremental"), change
        windows, failures = windows_as_text(db), failures_now(db)
        full = run(db, full=True)
        assert (full["status"], full["rows_inserted"], full["rows_updated"]) == ("succeeded", 0, 0), change
        assert windows_as_text(db) == windows, change
        assert failures_now(db) == failures, change
        assert full["rows_held_back"] == incremental["rows_held_back"], change
