"""pipeline.adherence(date) and pipeline.activity_adherence: every status of README "Adherence"
in its order, each boundary, the report time zone, held-back pairs, the reader's rights, and a
filter on one patient journey reaching an index."""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
import pytest

from pytools.migrations import migrate
from tests.helpers.databases import connect
from tests.helpers.pipeline import insert, run, run_in_thread, wait_until_blocked

Conn = psycopg.Connection[dict[str, Any]]

# Operation on 2026-03-10 (journeys 1..n on journey 1); discharge never recorded.
SCHEDULES = [
    (100, "1d-7d-post-op"),  # window 2026-03-11 .. 2026-03-17
    (101, "pre-op"),  # open start .. 2026-03-10
    (102, "3m-post-op"),  # 2026-06-08 .. open end
    (103, "always"),  # open on both sides, no milestone
    (104, "2w-6w-post-dis"),  # discharge date NULL: no window
    (105, "every other tuesday"),  # does not parse: held back
    (106, "4d-2d-pre-op"),  # 2026-03-06 .. 2026-03-08
]
ACTIVITIES = [(10, "knee", 100), (11, "prep", 101), (12, "late", 102), (13, "diary", 103), (14, "rehab", 104),
              (15, "broken", 105), (16, "unscheduled", None), (17, "consent", 106)]  # fmt: skip
TODAY_IN_NEW_YORK = "(now() AT TIME ZONE 'America/New_York')::date"
ADHERENCE = "SELECT * FROM pipeline.adherence(%s) ORDER BY patient_journey_id, activity_id"


def source(conn: Conn, journeys: int = 1, operation: str = "2026-03-10") -> None:
    insert(conn, "schedule", ["id", "slug"], SCHEDULES)
    insert(conn, "activity", ["id", "content_slug", "schedule_id"], ACTIVITIES)
    insert(conn, "journey_activity", ["journey_id", "activity_id"], [(1, a[0]) for a in ACTIVITIES])
    insert(
        conn,
        "patient_journey",
        ["id", "patient_id", "journey_id", "operation_date"],
        [(i, 500 + i, 1, operation) for i in range(1, journeys + 1)],
    )


def result(conn: Conn, journey: int, activity: int, end: str | None, start: str | None = None) -> None:
    insert(
        conn,
        "survey_result",
        ["id", "patient_journey_id", "activity_id", "start_time", "end_time"],
        [(None, journey, activity, start, end)],
    )


def statuses(conn: Conn, as_of: str | None) -> dict[tuple[int, int], dict[str, Any]]:
    rows = conn.execute(ADHERENCE, (as_of,)).fetchall()
    return {(r["patient_journey_id"], r["activity_id"]): dict(r) for r in rows}


def status_of(conn: Conn, as_of: str, journey: int = 1, activity: int = 10) -> tuple[str, Any]:
    row = statuses(conn, as_of)[(journey, activity)]
    return row["status"], row["completed_on"]


def run_held_at_the_window_table(db: Conn, db_url: str, change: str, *, full: bool) -> dict[str, Any]:
    """A run held at its first look at the window table, which comes after it has read the
    source and recorded the pairs held back, while the application commits `change`; returns
    how the run ended (run_in_thread's outcome)."""
    with psycopg.connect(db_url) as blocker:
        blocker.execute("LOCK TABLE pipeline.patient_journey_schedule_window IN ACCESS EXCLUSIVE MODE")
        outcome: dict[str, Any] = {}
        thread = run_in_thread(db_url, "held_at_the_window_table", outcome, full=full)
        wait_until_blocked(db, "held_at_the_window_table")
        db.execute(change)
        blocker.rollback()
        thread.join(60)
    return outcome


def test_a_pair_without_results_is_not_yet_open_open_on_its_first_and_last_day_then_overdue(db: Conn) -> None:
    source(db)
    run(db)
    assert status_of(db, "2026-03-10") == ("not_yet_open", None)
    assert status_of(db, "2026-03-11") == ("open", None)
    assert status_of(db, "2026-03-17") == ("open", None)
    assert status_of(db, "2026-03-18") == ("overdue", None)


def test_results_on_the_first_and_the_last_day_of_the_window_are_in_it(db: Conn) -> None:
    source(db, journeys=4)
    result(db, 1, 10, "2026-03-11 00:00:00+00")
    result(db, 2, 10, "2026-03-17 23:59:59+00")
    result(db, 3, 10, "2026-03-10 23:59:59+00")
    result(db, 4, 10, "2026-03-18 00:00:00+00")
    run(db)
    got = statuses(db, "2026-04-01")
    assert [(got[(j, 10)]["status"], str(got[(j, 10)]["completed_on"])) for j in (1, 2, 3, 4)] == [
        ("done_in_window", "2026-03-11"),
        ("done_in_window", "2026-03-17"),
        ("done_early", "2026-03-10"),
        ("done_late", "2026-03-18"),
    ]


def test_of_several_results_one_in_the_window_decides_then_the_earliest_late_then_the_latest_early(
    db: Conn,
) -> None:
    source(db, journeys=3)
    for day in ("2026-03-01", "2026-03-20", "2026-03-14", "2026-03-12", "2026-03-25"):
        result(db, 1, 10, f"{day} 12:00:00+00")
    for day in ("2026-03-01", "2026-03-25", "2026-03-20", "2026-03-05"):
        result(db, 2, 10, f"{day} 12:00:00+00")
    for day in ("2026-03-01", "2026-03-05", "2026-03-02"):
        result(db, 3, 10, f"{day} 12:00:00+00")
    run(db)
    got = statuses(db, "2026-04-01")
    assert [
        (got[(j, 10)]["status"], str(got[(j, 10)]["completed_on"]), got[(j, 10)]["result_count"])
        for j in (1, 2, 3)
    ] == [
        ("done_in_window", "2026-03-12", 5),
        ("done_late", "2026-03-20", 4),
        ("done_early", "2026-03-05", 3),
    ]


def test_an_undated_result_is_done_undated_counted_and_loses_to_any_dated_one(db: Conn) -> None:
    source(db, journeys=3)
    result(db, 1, 10, None)
    result(db, 1, 10, None)
    result(db, 2, 10, None)
    result(db, 2, 10, "2026-03-30 08:00:00+00")
    result(db, 3, 10, None, start="2026-03-12 08:00:00+00")  # no end: its start dates it
    run(db)
    got = statuses(db, "2026-04-01")
    assert (got[(1, 10)]["status"], got[(1, 10)]["completed_on"], got[(1, 10)]["result_count"]) == (
        "done_undated", None, 2,
    )  # fmt: skip
    assert (got[(2, 10)]["status"], str(got[(2, 10)]["completed_on"]), got[(2, 10)]["result_count"]) == (
        "done_late", "2026-03-30", 2,
    )  # fmt: skip
    assert (got[(3, 10)]["status"], str(got[(3, 10)]["completed_on"])) == ("done_in_window", "2026-03-12")


def test_a_window_open_at_its_start_is_never_not_yet_open_and_nothing_is_early_for_it(db: Conn) -> None:
    source(db, journeys=2)
    result(db, 2, 11, "2000-01-01 12:00:00+00")
    run(db)
    assert status_of(db, "1990-01-01", activity=11) == ("open", None)
    assert status_of(db, "2026-03-10", activity=11) == ("open", None)
    assert status_of(db, "2026-03-11", activity=11) == ("overdue", None)
    assert status_of(db, "2026-03-11", journey=2, activity=11)[0] == "done_in_window"


def test_an_open_ended_window_is_not_yet_open_then_open_for_ever_and_nothing_is_late_for_it(db: Conn) -> None:
    source(db, journeys=3)
    result(db, 2, 12, "2099-01-01 12:00:00+00")
    result(db, 3, 12, "2026-06-07 12:00:00+00")
    run(db)
    assert status_of(db, "2026-06-07", activity=12) == ("not_yet_open", None)
    assert status_of(db, "2026-06-08", activity=12) == ("open", None)
    assert status_of(db, "9999-12-31", activity=12) == ("open", None)
    assert status_of(db, "2026-06-08", journey=2, activity=12)[0] == "done_in_window"
    assert status_of(db, "2026-06-08", journey=3, activity=12)[0] == "done_early"


def test_an_always_schedule_is_open_on_both_sides_not_no_window(db: Conn) -> None:
    source(db, journeys=2, operation=None)  # type: ignore[arg-type]
    result(db, 2, 13, "1999-01-01 12:00:00+00")
    run(db)
    assert status_of(db, "1900-01-01", activity=13) == ("open", None)
    assert status_of(db, "9999-12-31", activity=13) == ("open", None)
    assert status_of(db, "9999-12-31", journey=2, activity=13) == ("done_in_window", date(1999, 1, 1))


def test_no_schedule_or_a_milestone_without_a_date_is_no_window_even_with_results(db: Conn) -> None:
    source(db, journeys=2)
    db.execute("UPDATE public.patient_journey SET operation_date = NULL WHERE id = 2")
    result(db, 1, 14, "2026-03-12 12:00:00+00")
    result(db, 1, 16, "2026-03-12 12:00:00+00")
    result(db, 2, 10, "2026-03-12 12:00:00+00")
    run(db)
    got = statuses(db, "2026-04-01")
    for pair in ((1, 14), (1, 16), (2, 10)):  # no discharge date, no schedule, no operation date
        assert (got[pair]["status"], got[pair]["completed_on"], got[pair]["result_count"]) == (
            "no_window",
            None,
            1,
        )
    assert got[(2, 13)]["status"] == "open"  # always needs no milestone date


def test_held_back_pairs_appear_once_with_their_reason_and_results_window_row_or_not(db: Conn) -> None:
    source(db, journeys=2)
    db.execute("UPDATE public.patient_journey SET operation_date = '4714-11-25 BC' WHERE id = 2")
    insert(db, "journey_activity", ["journey_id", "activity_id"], [(1, 99)])  # no such activity
    result(db, 1, 15, "2026-03-12 12:00:00+00")
    result(db, 77, 10, "2026-03-12 12:00:00+00")  # no such patient journey
    run(db)
    db.execute("UPDATE public.schedule SET slug = 'fortnightly-ish' WHERE id = 100")  # window row stays
    run(db)
    rows = db.execute(  # journey 2's windows are BC: psycopg reads no such date
        "SELECT patient_id, patient_journey_id, activity_id, activity_content_slug, completed_on, "
        "result_count, status, held_back_reason FROM pipeline.adherence('2026-04-01')"
    ).fetchall()
    keys = [(r["patient_journey_id"], r["activity_id"]) for r in rows]
    assert len(keys) == len(set(keys))
    held = {(r["patient_journey_id"], r["activity_id"]): r for r in rows if r["status"] == "held_back"}
    assert {k: v["held_back_reason"] for k, v in held.items()} == {
        (1, 10): "slug does not parse",
        (2, 10): "slug does not parse",
        (1, 15): "slug does not parse",
        (2, 15): "slug does not parse",
        (1, 99): "missing activity",
        (2, 99): "missing activity",
        (2, 17): "window date out of range",
        (77, 10): "missing patient_journey",
    }
    assert (held[(1, 15)]["result_count"], held[(1, 15)]["completed_on"]) == (1, None)
    # each named by the patient and activity the source has now, where it has them
    assert (held[(1, 10)]["patient_id"], held[(1, 10)]["activity_content_slug"]) == (501, "knee")
    assert (held[(2, 17)]["patient_id"], held[(2, 17)]["activity_content_slug"]) == (502, "consent")
    assert (held[(77, 10)]["patient_id"], held[(77, 10)]["activity_content_slug"]) == (None, "knee")
    assert (held[(1, 99)]["patient_id"], held[(1, 99)]["activity_content_slug"]) == (501, None)
    assert all(r["held_back_reason"] is None for r in rows if r["status"] != "held_back")


def test_a_pair_held_back_for_its_dates_counts_its_results_in_incremental_runs_as_in_full_ones(
    db: Conn,
) -> None:
    """Journey 2's operation is on the first day PostgreSQL has, so the window of 4 days before
    it is out of range: held back. An incremental run reaches only its scope's results for such
    journeys (not a scan of every patient journey) and must still count them all."""
    source(db, journeys=2)
    db.execute("UPDATE public.patient_journey SET operation_date = '4714-11-25 BC' WHERE id = 2")
    result(db, 2, 17, "2026-03-07 12:00:00+00")
    run(db, full=True)
    result(db, 2, 17, None, "2026-03-08 12:00:00+00")  # queues journey 2: the next run is incremental
    assert run(db)["mode"] == "incremental"
    held = (
        "SELECT result_count FROM pipeline.held_back_pair WHERE patient_journey_id = 2 AND activity_id = 17"
    )
    assert db.execute(held).fetchone() == {"result_count": 2}
    assert run(db, full=True)["mode"] == "full"
    assert db.execute(held).fetchone() == {"result_count": 2}


@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
def test_a_window_row_is_marked_while_its_pair_is_held_back_and_unmarked_when_it_loads_again(
    db: Conn, full: bool
) -> None:
    source(db)
    result(db, 1, 10, "2026-03-12 12:00:00+00")
    run(db)
    db.execute("UPDATE public.schedule SET slug = 'fortnightly-ish' WHERE id = 100")
    run(db, full=full)
    marked = (
        "SELECT held_back FROM pipeline.patient_journey_schedule_window "
        "WHERE (patient_journey_id, activity_id) = (1, 10)"
    )
    assert db.execute(marked).fetchone() == {"held_back": True}
    assert status_of(db, "2026-04-01") == ("held_back", None)
    db.execute("UPDATE public.schedule SET slug = '1d-7d-post-op' WHERE id = 100")
    run(db, full=full)
    assert db.execute(marked).fetchone() == {"held_back": False}
    assert status_of(db, "2026-04-01") == ("done_in_window", date(2026, 3, 12))


@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
def test_a_retired_pair_that_comes_back_held_back_is_no_longer_retired(db: Conn, full: bool) -> None:
    """A pair held back, then removed from its journey (retired), then prescribed again while
    still held back: the source has it again, so its window row is not retired but held back."""
    source(db)
    run(db)
    db.execute("UPDATE public.schedule SET slug = 'fortnightly-ish' WHERE id = 100")
    run(db)
    db.execute("DELETE FROM public.journey_activity WHERE activity_id = 10")
    run(db, full=full)
    row = (
        "SELECT retired_at IS NOT NULL AS retired, held_back FROM pipeline.patient_journey_schedule_window "
        "WHERE (patient_journey_id, activity_id) = (1, 10)"
    )
    assert db.execute(row).fetchone() == {"retired": True, "held_back": True}
    insert(db, "journey_activity", ["journey_id", "activity_id"], [(1, 10)])
    run(db, full=full)
    assert db.execute(row).fetchone() == {"retired": False, "held_back": True}
    assert status_of(db, "2026-04-01") == ("held_back", None)


@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
def test_a_pair_removed_while_a_run_holds_it_back_is_retired_by_the_next_run_not_by_that_one(
    db: Conn, db_url: str, full: bool
) -> None:
    """Actor: the application writer. A run records the pairs held back before it retires the
    rows whose pair has left the source, each in its own statement: a pair held back, removed
    from its journey in between, was retired by that run while still in held_back_pair, and a
    full run after the pair came back, which looks only pairs held back anew up again, left its
    row retired. The run spares the pairs it recorded held back; the next run, which the removal
    queued, releases and retires the pair."""
    source(db)
    run(db)
    db.execute("UPDATE public.schedule SET slug = 'fortnightly-ish' WHERE id = 100")
    run(db)  # held back, its row marked
    if not full:
        result(db, 1, 10, "2026-03-12 12:00:00+00")  # something for an incremental run to do
        db.execute("DELETE FROM public.survey_result")
    row = (
        "SELECT retired_at IS NOT NULL AS retired, held_back FROM pipeline.patient_journey_schedule_window "
        "WHERE (patient_journey_id, activity_id) = (1, 10)"
    )
    outcome = run_held_at_the_window_table(
        db, db_url, "DELETE FROM public.journey_activity WHERE activity_id = 10", full=full
    )
    assert outcome["status"] == "returned"
    assert db.execute(row).fetchone() == {"retired": False, "held_back": True}
    run(db)
    assert db.execute(row).fetchone() == {"retired": True, "held_back": True}
    insert(db, "journey_activity", ["journey_id", "activity_id"], [(1, 10)])
    run(db, full=True)
    assert db.execute(row).fetchone() == {"retired": False, "held_back": True}


def test_a_survey_pair_whose_last_result_goes_during_a_full_run_is_retired_by_the_next_run(
    db: Conn, db_url: str
) -> None:
    """A full run keeps the survey pairs that no journey prescribes and that it found with
    results, without looking their results up again when it retires rows: one whose last result
    the application deletes in between is retired by the next run, which the deletion queued."""
    source(db)
    # an activity no journey prescribes, with a result
    insert(db, "activity", ["id", "content_slug", "schedule_id"], [(18, "extra", 100)])
    result(db, 1, 18, "2026-03-12 12:00:00+00")
    run(db)
    row = (
        "SELECT retired_at IS NOT NULL AS retired FROM pipeline.patient_journey_schedule_window "
        "WHERE (patient_journey_id, activity_id) = (1, 18)"
    )
    assert db.execute(row).fetchone() == {"retired": False}
    outcome = run_held_at_the_window_table(
        db, db_url, "DELETE FROM public.survey_result WHERE activity_id = 18", full=True
    )
    assert outcome["status"] == "returned"
    assert db.execute(row).fetchone() == {"retired": False}
    assert run(db)["mode"] == "incremental"
    assert db.execute(row).fetchone() == {"retired": True}


@pytest.mark.parametrize(
    ("first_load", "full"),
    [(False, False), (False, True), (True, True)],
    ids=["loaded table", "full run over the loaded table", "first load"],
)
def test_a_pair_the_application_releases_while_a_run_records_it_held_back_is_reported_once(
    db: Conn, db_url: str, first_load: bool, full: bool
) -> None:
    """Actor: the application writer (must never make a change go unnoticed). A run reads the
    patient journeys once to record the pairs held back and again to write the windows: a
    milestone date corrected between the two left the pair in held_back_pair and its window row
    written unmarked, so adherence reported it twice (overdue and held_back). The row is marked
    after the windows are written; the next run, which the correction queued, loads the pair.
    A first load marks only the pairs held back for their journey's row, as this one is; a full
    run over the loaded table, only pairs held back anew and those among the rows it wrote, as
    this one is: held back by the run before, it is no change to held_back_pair."""
    source(db, journeys=2)
    if not first_load:
        run(db)
    db.execute("UPDATE public.patient_journey SET operation_date = '4714-11-25 BC' WHERE id = 2")
    if full and not first_load:
        run(db)  # held back and marked before the run below
    outcome = run_held_at_the_window_table(
        db, db_url, "UPDATE public.patient_journey SET operation_date = '2026-03-10' WHERE id = 2", full=full
    )
    assert outcome["status"] == "returned"
    pair = (
        "SELECT status FROM pipeline.adherence('2026-04-01') "
        "WHERE (patient_journey_id, activity_id) = (2, 17)"
    )
    assert db.execute(pair).fetchall() == [{"status": "held_back"}]
    run(db)
    assert db.execute(pair).fetchall() == [{"status": "overdue"}]


@pytest.mark.parametrize(
    ("time_zone", "expected"),
    [("UTC", ("done_in_window", "2026-03-17")), ("Europe/Zurich", ("done_late", "2026-03-18"))],
)
def test_a_result_near_midnight_takes_its_date_in_the_report_time_zone(
    db: Conn, time_zone: str, expected: tuple[str, str]
) -> None:
    source(db)
    result(db, 1, 10, "2026-03-17 23:30:00+00")
    run(db)
    db.execute("UPDATE pipeline.settings SET report_time_zone = %s", (time_zone,))
    assert run(db)["mode"] == "full"  # a new report time zone re-dates every result
    got = status_of(db, "2026-04-01")
    assert (got[0], str(got[1])) == expected


def test_the_sessions_time_zone_changes_neither_result_dates_nor_today(db: Conn) -> None:
    """Actor: a reader whose session has another TimeZone (a client's default)."""
    source(db, journeys=2)
    result(db, 1, 10, "2026-03-17 23:30:00+00")
    result(db, 2, 10, "2026-03-10 00:30:00+00")
    db.execute("UPDATE pipeline.settings SET report_time_zone = 'America/New_York'")
    run(db)
    outcomes = []
    for session_zone in ("UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"):
        db.execute(f"SET TimeZone = '{session_zone}'")
        outcomes.append(
            (
                statuses(db, "2026-04-01"),
                db.execute("SELECT * FROM pipeline.activity_adherence ORDER BY 2, 3").fetchall(),
                db.execute(f"SELECT * FROM pipeline.adherence({TODAY_IN_NEW_YORK}) ORDER BY 2, 3").fetchall(),
            )
        )
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert outcomes[0][1] == outcomes[0][2]  # the view is adherence(today in report_time_zone)
    assert (outcomes[0][0][(1, 10)]["status"], str(outcomes[0][0][(1, 10)]["completed_on"])) == (
        "done_in_window", "2026-03-17",
    )  # fmt: skip
    assert outcomes[0][0][(2, 10)]["status"] == "done_early"  # 2026-03-09 in New York


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "utc ", "", "UTC+5"])
def test_report_time_zone_must_be_a_time_zone_name(db: Conn, name: str) -> None:
    assert db.execute("SELECT report_time_zone FROM pipeline.settings").fetchone() == {
        "report_time_zone": "UTC"
    }
    with pytest.raises(psycopg.errors.CheckViolation, match="settings_report_time_zone_is_a_time_zone_name"):
        db.execute("UPDATE pipeline.settings SET report_time_zone = %s", (name,))
    db.execute("UPDATE pipeline.settings SET report_time_zone = 'Australia/Lord_Howe'")


@pytest.mark.parametrize("name", ["EST", "CET", "MST", "HST", "EET", "MET", "WET"])
def test_report_time_zone_refuses_a_zone_name_that_is_also_an_abbreviation(db: Conn, name: str) -> None:
    """AT TIME ZONE looks a name up among the session's time zone abbreviations before the time
    zone database: 'CET' there is UTC+1 all year (the zone CET has summer time), 'EST' is UTC-5
    or, under timezone_abbreviations 'Australia', UTC+10."""
    db.execute("SET timezone_abbreviations = 'India'")
    with pytest.raises(psycopg.errors.CheckViolation, match="settings_report_time_zone_is_a_time_zone_name"):
        db.execute("UPDATE pipeline.settings SET report_time_zone = %s", (name,))
    for zone in ("UTC", "GMT", "Europe/Paris", "America/New_York", "Japan"):
        db.execute("UPDATE pipeline.settings SET report_time_zone = %s", (zone,))
    # the check looks at every set, and leaves the session's own as it was
    assert db.execute("SHOW timezone_abbreviations").fetchone() == {"timezone_abbreviations": "India"}


def test_the_runners_time_zone_abbreviations_cannot_move_a_result_to_another_day(
    db: Conn, db_url: str
) -> None:
    """Actor: pipeline_runner (must never choose what a run computes). Its session's
    timezone_abbreviations decided what the run made of report_time_zone 'EST' (a zone name
    and an abbreviation): under 'Australia' a result of 20:00 UTC took the next day's date
    (UTC+10), done_late instead of done_in_window. Such a name is refused where it enters, and
    the names accepted date a result alike under every abbreviation set."""
    source(db)
    result(db, 1, 10, "2026-03-17 20:00:00+00")  # 15:00 in New York, the window's last day
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("UPDATE pipeline.settings SET report_time_zone = 'EST'")
    db.execute("UPDATE pipeline.settings SET report_time_zone = 'America/New_York'")
    with connect(db_url, "pipeline_runner") as runner:
        for abbreviations in ("Australia", "India", "Default"):
            runner.execute(f"SET timezone_abbreviations = '{abbreviations}'")
            runner.execute("CALL pipeline.run_patient_journey_pipeline('manual', true)")
            assert status_of(db, "2026-04-01") == ("done_in_window", date(2026, 3, 17)), abbreviations


def test_the_reader_reads_adherence_and_the_view_but_still_not_the_source(db: Conn, db_url: str) -> None:
    """Actor: pipeline_reader, an analyst who may read the results only."""
    source(db)
    result(db, 1, 10, "2026-03-12 12:00:00+00")
    run(db)
    with connect(db_url, "pipeline_reader") as reader:
        row = reader.execute(
            "SELECT status, result_count FROM pipeline.adherence('2026-04-01') WHERE activity_id = 10"
        ).fetchone()
        assert row == {"status": "done_in_window", "result_count": 1}
        assert reader.execute("SELECT count(*) AS n FROM pipeline.activity_adherence").fetchone() == {"n": 8}
        for table in ("public.survey_result", "public.patient_journey", "pipeline.settings"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(f"SELECT * FROM {table}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("UPDATE pipeline.settings SET report_time_zone = 'Europe/Zurich'")


def plan_nodes(conn: Conn, query: str) -> list[tuple[str, str | None]]:
    plan = conn.execute(f"EXPLAIN (FORMAT JSON) {query}").fetchone()["QUERY PLAN"]  # type: ignore[index]
    nodes: list[tuple[str, str | None]] = []

    def walk(node: dict[str, Any]) -> None:
        nodes.append((node["Node Type"], node.get("Relation Name")))
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return nodes


def test_a_filter_on_one_patient_journey_reaches_the_indexes(db: Conn) -> None:
    source(db, journeys=3000)
    db.execute(
        "INSERT INTO public.survey_result (patient_journey_id, activity_id, end_time) "
        "SELECT j, 10, timestamptz '2026-03-12 12:00+00' FROM generate_series(1, 3000) AS j"
    )
    run(db)
    db.execute("ANALYZE")
    query = "SELECT * FROM pipeline.adherence(DATE '2026-06-01') WHERE patient_journey_id = 42"
    nodes = plan_nodes(db, query)
    scanned = {relation for kind, relation in nodes if relation is not None}
    assert {"patient_journey_schedule_window", "held_back_pair"} <= scanned
    assert not scanned & {"survey_result", "patient_journey", "activity", "journey_activity", "schedule"}
    big = {"patient_journey_schedule_window", "held_back_pair"}
    assert not [n for n in nodes if n[0] == "Seq Scan" and n[1] in big], nodes
    assert len(db.execute(query).fetchall()) == 8
    # Control: with a SET clause the function is not inlined, and the filter cannot reach in.
    db.execute("ALTER FUNCTION pipeline.adherence(date) SET search_path = pg_catalog")
    assert plan_nodes(db, query)[0][0] == "Function Scan"


def test_adherence_binds_none_of_the_apps_columns_and_counts_results_as_of_the_last_run(db: Conn) -> None:
    """Actor: the application's DBA, who drops and retypes the app's own columns. Nothing of
    the pipeline depends on public.*: adherence reads the results the run kept in the window rows."""
    source(db)
    result(db, 1, 10, "2026-03-12 12:00:00+00")
    run(db)
    result(db, 1, 10, None)
    assert status_of(db, "2026-04-01") == ("done_in_window", date(2026, 3, 12))
    assert statuses(db, "2026-04-01")[(1, 10)]["result_count"] == 1  # not yet run
    run(db)
    assert statuses(db, "2026-04-01")[(1, 10)]["result_count"] == 2
    depends = db.execute(
        "SELECT DISTINCT d.refobjid::regclass::text AS t FROM pg_depend AS d "
        "JOIN pg_class AS c ON c.oid = d.refobjid JOIN pg_namespace AS n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND d.classid IN ('pg_rewrite'::regclass, 'pg_proc'::regclass)"
    ).fetchall()
    assert depends == []
    db.execute("ALTER TABLE public.survey_result ALTER COLUMN activity_id TYPE integer")
    db.execute("ALTER TABLE public.survey_result DROP COLUMN device_id")
    db.execute("ALTER TABLE public.patient_journey DROP COLUMN registration_date")


def test_a_survey_result_time_of_another_type_is_refused_before_the_run_reads_it(db: Conn) -> None:
    """Actor: an app owner whose column type could carry a cast of theirs."""
    source(db)
    db.execute("ALTER TABLE public.survey_result ALTER COLUMN end_time TYPE text")
    with pytest.raises(
        psycopg.errors.ExternalRoutineException, match=r"survey_result\.end_time has type text"
    ):
        run(db)
    db.execute(
        "ALTER TABLE public.survey_result ALTER COLUMN end_time TYPE timestamptz USING end_time::timestamptz"
    )
    assert run(db)["status"] == "succeeded"


def test_a_database_without_the_apps_tables_migrates_with_adherence_that_is_empty(
    empty_db_url: str,
) -> None:
    """A pipeline installed before the app's tables: migrate installs adherence all the same
    (it reads only the pipeline's tables) and grants it to the reader."""
    migrate(empty_db_url)
    with connect(empty_db_url, "pipeline_reader") as reader:
        assert reader.execute("SELECT count(*) AS n FROM pipeline.activity_adherence").fetchone() == {"n": 0}
