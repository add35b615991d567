"""Every edge case docs/source-tables.md decides, plus the run log, current_failures and retention,
each checked against a real database run."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
import pytest

from tests.helpers.pipeline import (
    current_failures,
    insert,
    latest_run,
    one_journey,
    refuse_success,
    run,
    windows,
)

COLUMNS = {
    "schedule": ("id", "slug"),
    "activity": ("id", "content_slug", "schedule_id"),
    "journey_activity": ("journey_id", "activity_id"),
    "patient_journey": ("id", "patient_id", "journey_id", "operation_date"),
    "survey_result": ("id", "patient_journey_id", "activity_id"),
}
FAILURE_KEYS = (
    "stage",
    "schedule_id",
    "schedule_slug",
    "patient_journey_id",
    "activity_id",
    "rows_held_back",
)
WINDOW = ("window_start_date", "window_end_date")
DATES = ("milestone_date", *WINDOW)
D = date.fromisoformat


def seed(db, **tables):
    for table, rows in tables.items():
        insert(db, table, COLUMNS[table], rows)


def failures_of(db, run_id):
    return [
        dict(r)
        for r in db.execute(
            "SELECT * FROM pipeline.pipeline_failures WHERE run_id = %s ORDER BY failure_id",
            (run_id,),
        )
    ]


def logged(db, result):
    """The failures a run logged, cut to the columns that say what failed."""
    return brief(failures_of(db, result["run_id"]))


def brief(failures):
    return [{k: f[k] for k in FAILURE_KEYS} for f in failures]


def counts(result):
    keys = ("status", "rows_inserted", "rows_updated", "rows_held_back", "failures")
    return {k: result[k] for k in keys}


def snapshot(db):
    return db.execute(
        "SELECT xmin::text AS row_version, * FROM pipeline.patient_journey_schedule_window "
        "ORDER BY patient_journey_id, activity_id"
    ).fetchall()


def pick(row, *keys):
    return tuple(row[k] for k in keys)


def match_failure(**ids):
    base = dict.fromkeys(FAILURE_KEYS[1:5])
    return {"stage": "match", **base, **ids}


# --- activity without a schedule ---------------------------------------------------------


def test_activity_without_schedule_loads_with_null_schedule_fields_and_no_failure(db):
    seed(
        db,
        activity=[(10, "video", None)],
        journey_activity=[(1, 10)],
        patient_journey=[(1, 501, 1, "2026-03-10")],
    )
    result = run(db)
    assert counts(result) == dict(
        status="succeeded", rows_inserted=1, rows_updated=0, rows_held_back=0, failures=0
    )
    row = windows(db)[(1, 10)]
    assert row["patient_id"] == 501
    assert row["activity_content_slug"] == "video"
    schedule = ("schedule_id", "schedule_slug", "schedule_milestone_slug")
    offsets = ("schedule_start_offset_days", "schedule_end_offset_days")
    assert pick(row, *schedule, *offsets, *DATES) == (None,) * 8
    assert failures_of(db, result["run_id"]) == []


# --- missing references --------------------------------------------------------------------


@pytest.mark.parametrize("source", ["journey_activity", "survey_result"])
def test_missing_activity_holds_back_its_pairs_with_one_match_failure_per_run(db, source):
    one_journey(db)
    seed(db, patient_journey=[(2, 502, 1, "2026-04-01"), (3, 503, 1, None)])
    if source == "journey_activity":  # journey 1 prescribes it to patient journeys 1, 2 and 3
        seed(db, journey_activity=[(1, 99)])
    else:  # two results for the same pair count once
        seed(db, survey_result=[(1, 1, 99), (2, 1, 99), (3, 2, 99), (4, 3, 99)])
    for _ in range(2):
        result = run(db)
        assert counts(result)["status"] == "succeeded"
        assert result["rows_held_back"] == 3
        assert logged(db, result) == [match_failure(activity_id=99, rows_held_back=3)]
    assert sorted(windows(db)) == [(1, 10), (2, 10), (3, 10)]


def test_activity_naming_missing_schedule_holds_back_its_pairs_with_one_match_failure(db):
    one_journey(db)
    seed(
        db,
        activity=[(20, "diary", 777), (21, "exercise", 777)],
        journey_activity=[(1, 20), (1, 21)],
        patient_journey=[(2, 502, 1, "2026-04-01")],
    )
    for _ in range(2):
        result = run(db)
        assert result["rows_held_back"] == 4
        assert logged(db, result) == [match_failure(schedule_id=777, rows_held_back=4)]
    assert sorted(windows(db)) == [(1, 10), (2, 10)]


def test_survey_result_naming_missing_patient_journey_holds_back_its_pairs_with_one_failure(db):
    one_journey(db)
    seed(
        db,
        activity=[(11, "pain-score", 100)],
        survey_result=[(1, 55, 10), (2, 55, 11), (3, 55, 11), (4, 1, 11)],
    )
    for _ in range(2):
        result = run(db)
        assert result["rows_held_back"] == 2
        assert logged(db, result) == [match_failure(patient_journey_id=55, rows_held_back=2)]
    assert sorted(windows(db)) == [(1, 10), (1, 11)]


def test_patient_and_journey_references_are_not_checked(db):
    one_journey(db)  # patient 501 and journey 1 have no rows in public.patient / public.journey
    for table in ("patient", "journey"):
        assert db.execute(f"SELECT count(*) AS n FROM public.{table}").fetchone() == {"n": 0}
    result = run(db)
    assert counts(result) == dict(
        status="succeeded", rows_inserted=1, rows_updated=0, rows_held_back=0, failures=0
    )
    assert windows(db)[(1, 10)]["patient_id"] == 501


# --- slugs that do not parse ---------------------------------------------------------------


def broken_slug_journeys(db, slug):
    """Schedule 100 (`slug`) on activity 10 for patient journeys 1 and 2; schedule 200 loads."""
    one_journey(db, slug=slug)
    seed(
        db,
        schedule=[(200, "reg")],
        activity=[(20, "welcome", 200)],
        journey_activity=[(1, 20)],
        patient_journey=[(2, 502, 1, "2026-04-01")],
    )


def assert_parse_failure(db, result, slug, reason):
    (failure,) = failures_of(db, result["run_id"])
    assert brief([failure]) == [
        dict(
            stage="parse",
            schedule_id=100,
            schedule_slug=slug,
            patient_journey_id=None,
            activity_id=None,
            rows_held_back=2,
        )
    ]
    assert failure["sqlstate"] == "22023"
    assert f'"{slug}"' in failure["error_message"]
    assert reason in failure["error_message"]
    assert result["rows_held_back"] == 2


def test_unparsable_slug_holds_back_its_schedule_until_the_slug_is_fixed(db):
    broken_slug_journeys(db, "3m-1d-post-op")
    result = run(db)
    assert_parse_failure(db, result, "3m-1d-post-op", "the window ends before it starts")
    assert sorted(windows(db)) == [(1, 20), (2, 20)]

    db.execute("UPDATE public.schedule SET slug = '1d-3m-post-op' WHERE id = 100")
    result = run(db)
    assert counts(result) == dict(
        status="succeeded", rows_inserted=2, rows_updated=0, rows_held_back=0, failures=0
    )
    row = windows(db)[(2, 10)]
    offsets = ("schedule_start_offset_days", "schedule_end_offset_days")
    assert pick(row, "schedule_slug", *offsets) == ("1d-3m-post-op", 1, 90)
    assert pick(row, *WINDOW) == (D("2026-04-02"), D("2026-06-30"))


def test_unknown_alias_slug_loads_on_the_first_run_after_the_alias_is_added(db):
    broken_slug_journeys(db, "7d-post-surgery")
    assert_parse_failure(db, run(db), "7d-post-surgery", 'unknown milestone alias "surgery"')

    db.execute("INSERT INTO pipeline.milestone_alias VALUES ('surgery', 'operation')")
    result = run(db)
    assert counts(result) == dict(
        status="succeeded", rows_inserted=2, rows_updated=0, rows_held_back=0, failures=0
    )
    row = windows(db)[(1, 10)]
    assert row["schedule_slug"] == "7d-post-surgery"
    assert row["schedule_milestone_slug"] == "operation"
    assert pick(row, "schedule_start_offset_days", "schedule_end_offset_days") == (7, None)
    assert pick(row, *DATES) == (D("2026-03-10"), D("2026-03-17"), None)


# --- milestone dates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slug", "operation", "milestone", "offsets"),
    [
        ("4d-2d-pre-op", None, "operation", (-4, -2)),
        ("2d-post-appt", "2026-03-10", "appointment", (2, None)),
    ],
    ids=["null-date", "no-date-column"],
)
def test_unknown_milestone_date_loads_row_with_null_dates(db, slug, operation, milestone, offsets):
    one_journey(db, slug=slug, operation=operation)
    result = run(db)
    assert counts(result) == dict(
        status="succeeded", rows_inserted=1, rows_updated=0, rows_held_back=0, failures=0
    )
    row = windows(db)[(1, 10)]
    assert row["schedule_milestone_slug"] == milestone
    assert pick(row, "schedule_start_offset_days", "schedule_end_offset_days") == offsets
    assert pick(row, *DATES) == (None, None, None)


@pytest.mark.parametrize(
    ("column", "value", "slug"),
    [
        # operation_date is a timestamp, which ends in 294276 AD; discharge_date is a date.
        ("discharge_date", "5874897-12-01", "1y-post-dis"),
        ("operation_date", "4714-12-01 BC", "1y-pre-op"),
        ("operation_date", "infinity", "2d-post-op"),
    ],
    ids=["past-date-range-end", "before-date-range-start", "infinite"],
)
def test_date_out_of_range_skips_that_row_alone_with_a_load_failure(db, column, value, slug):
    seed(
        db,
        schedule=[(100, slug), (200, "reg")],
        activity=[(10, "knee-survey", 100), (20, "welcome", 200)],
        journey_activity=[(1, 10), (1, 20)],
    )
    insert(
        db,
        "patient_journey",
        ["id", "patient_id", "journey_id", "operation_date", "discharge_date"],
        [(1, 501, 1, None, None), (2, 502, 1, "2026-03-10", "2026-03-20")],
    )
    db.execute(f"UPDATE public.patient_journey SET {column} = %s WHERE id = 1", (value,))
    result = run(db)
    assert counts(result) == dict(
        status="succeeded", rows_inserted=3, rows_updated=0, rows_held_back=1, failures=1
    )
    assert logged(db, result) == [
        dict(
            stage="load",
            schedule_id=100,
            schedule_slug=slug,
            patient_journey_id=1,
            activity_id=10,
            rows_held_back=1,
        )
    ]
    assert sorted(windows(db)) == [(1, 20), (2, 10), (2, 20)]


@pytest.mark.parametrize(
    ("alias", "milestone", "expected"),
    [
        ("op", "operation", "2026-01-03"),
        ("inv", "invitation", "2026-01-01"),
        ("reg", "registration", "2026-01-02"),
        ("dis", "discharge", "2026-01-04"),
        ("consent", "consent", "2026-01-05"),
    ],
)
def test_each_milestone_takes_the_calendar_date_of_its_own_column(db, alias, milestone, expected):
    seed(
        db,
        schedule=[(100, f"1d-post-{alias}")],
        activity=[(10, "knee-survey", 100)],
        journey_activity=[(1, 10)],
    )
    dates = {
        "invitation_date": "2026-01-01",
        "registration_date": "2026-01-02",
        "operation_date": "2026-01-03 23:59:59",  # timestamp columns: the time of day is dropped
        "discharge_date": "2026-01-04",
        "consent_date": "2026-01-05 00:00:01",
    }
    columns = ["id", "patient_id", "journey_id", *dates]
    insert(db, "patient_journey", columns, [(1, 501, 1, *dates.values())])
    assert run(db)["rows_inserted"] == 1
    row = windows(db)[(1, 10)]
    assert row["schedule_milestone_slug"] == milestone
    assert row["milestone_date"] == D(expected)
    assert pick(row, *WINDOW) == (D(expected) + timedelta(days=1), None)


# --- changes between runs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            "UPDATE public.patient_journey SET operation_date = '2026-04-01 09:30' WHERE id = 1",
            dict(
                milestone_date=D("2026-04-01"),
                window_start_date=D("2026-03-28"),
                window_end_date=D("2026-03-30"),
            ),
        ),
        (
            "UPDATE public.schedule SET slug = '1d-7d-post-op' WHERE id = 100",
            dict(
                schedule_slug="1d-7d-post-op",
                schedule_start_offset_days=1,
                schedule_end_offset_days=7,
                window_start_date=D("2026-03-11"),
                window_end_date=D("2026-03-17"),
            ),
        ),
        (
            "UPDATE public.activity SET schedule_id = 300 WHERE id = 10",
            dict(
                schedule_id=300,
                schedule_slug="42d-pre-op",
                schedule_start_offset_days=-42,
                schedule_end_offset_days=0,
                window_start_date=D("2026-01-27"),
                window_end_date=D("2026-03-10"),
            ),
        ),
    ],
    ids=["operation-rescheduled", "slug-edited", "activity-moved"],
)
def test_changed_source_values_update_the_row_in_place(db, change, expected):
    one_journey(db)
    seed(
        db,
        schedule=[(200, "reg"), (300, "42d-pre-op")],
        activity=[(20, "welcome", 200)],
        journey_activity=[(2, 20)],
        patient_journey=[(2, 502, 2, "2026-03-10")],
    )
    run(db)
    before = windows(db)
    untouched = snapshot(db)[1]
    db.execute(change)
    result = run(db)
    assert counts(result) == dict(
        status="succeeded", rows_inserted=0, rows_updated=1, rows_held_back=0, failures=0
    )
    after = windows(db)[(1, 10)]
    assert {k: after[k] for k in expected} == expected
    assert after["inserted_at"] == before[(1, 10)]["inserted_at"]
    assert after["updated_at"] > before[(1, 10)]["updated_at"]
    assert snapshot(db)[1] == untouched


def test_unchanged_source_makes_the_next_run_write_no_row(db):
    one_journey(db)
    seed(
        db,
        schedule=[(200, "always"), (300, "2d-post-appt")],
        activity=[(20, "faq", 200), (30, "call", 300), (40, "video", None)],
        journey_activity=[(1, 20), (1, 30), (1, 40)],
        patient_journey=[(2, 502, 1, None)],
    )
    assert run(db)["rows_inserted"] == 8
    before = snapshot(db)
    result = run(db)
    assert counts(result) == dict(
        status="succeeded", rows_inserted=0, rows_updated=0, rows_held_back=0, failures=0
    )
    assert snapshot(db) == before


def test_pair_that_left_the_source_keeps_its_row_marked_retired_until_it_comes_back(db):
    one_journey(db)
    run(db)
    before = snapshot(db)
    db.execute("DELETE FROM public.journey_activity")
    result = run(db)
    assert pick(result, "status", "rows_inserted", "rows_updated") == ("succeeded", 0, 0)
    retired = db.execute("SELECT retired_at FROM pipeline.patient_journey_schedule_window").fetchall()
    assert len(retired) == 1 and retired[0]["retired_at"] is not None
    db.execute("INSERT INTO public.journey_activity (journey_id, activity_id) VALUES (1, 10)")
    back = run(db)
    assert pick(back, "status", "rows_inserted", "rows_updated") == ("succeeded", 0, 1)
    assert db.execute("SELECT retired_at FROM pipeline.patient_journey_schedule_window").fetchall() == [
        {"retired_at": None}
    ]
    moved = ("row_version", "updated_at")  # un-retiring writes the row: its values are as before
    assert [{c: v for c, v in r.items() if c not in moved} for r in snapshot(db)] == [
        {c: v for c, v in r.items() if c not in moved} for r in before
    ]


# --- pairs from survey results -------------------------------------------------------------


def test_survey_result_for_an_activity_not_prescribed_creates_a_row(db):
    one_journey(db)
    seed(
        db,
        schedule=[(200, "1d-7d-post-op")],
        activity=[(20, "extra", 200)],
        survey_result=[(1, 1, 20)],
    )
    assert run(db)["rows_inserted"] == 2
    row = windows(db)[(1, 20)]
    assert pick(row, "patient_id", "activity_content_slug", "schedule_id") == (501, "extra", 200)
    assert pick(row, *WINDOW) == (D("2026-03-11"), D("2026-03-17"))


def test_pair_from_both_journey_activity_and_survey_results_yields_one_row(db):
    one_journey(db)
    seed(db, survey_result=[(1, 1, 10), (2, 1, 10)])
    result = run(db)
    assert counts(result) == dict(
        status="succeeded", rows_inserted=1, rows_updated=0, rows_held_back=0, failures=0
    )
    assert list(windows(db)) == [(1, 10)]


# --- the run log ---------------------------------------------------------------------------


def test_run_with_data_failures_succeeds_and_records_exact_counts_and_trigger(db):
    broken_slug_journeys(db, "3q-post-op")  # holds back 2 pairs, 2 pairs load
    seed(db, journey_activity=[(1, 99)])  # missing activity: holds back 2 more
    result = run(db)
    assert counts(result) == dict(
        status="succeeded", rows_inserted=2, rows_updated=0, rows_held_back=4, failures=2
    )
    assert result["trigger"] == "manual"
    assert result["error_message"] is None
    assert result["finished_at"] >= result["started_at"]
    assert sorted(f["stage"] for f in failures_of(db, result["run_id"])) == ["match", "parse"]

    db.execute("UPDATE public.schedule SET slug = '3d-post-op' WHERE id = 100")
    result = run(db, "cron")
    assert result["trigger"] == "cron"
    assert counts(result) == dict(
        status="succeeded", rows_inserted=2, rows_updated=0, rows_held_back=2, failures=1
    )
    db.execute("UPDATE public.patient_journey SET registration_date = '2026-05-02' WHERE id = 1")
    assert counts(run(db, "cron")) == dict(
        status="succeeded", rows_inserted=0, rows_updated=1, rows_held_back=2, failures=1
    )


def test_current_failures_shows_only_the_latest_finished_run(db):
    broken_slug_journeys(db, "7d-post-surgery")
    first, second = run(db), run(db)
    current = current_failures(db)
    assert [(f["run_id"], f["stage"], f["schedule_id"]) for f in current] == [
        (second["run_id"], "parse", 100)
    ]

    db.execute("UPDATE public.schedule SET slug = '7d-post-op' WHERE id = 100")
    assert run(db)["failures"] == 0
    assert current_failures(db) == []
    assert logged_run_ids(db)[1] == [first["run_id"], second["run_id"]]


def backdate(db, run_id, age):
    db.execute(
        "UPDATE pipeline.pipeline_failures SET failed_at = now() - %s::interval WHERE run_id = %s",
        (age, run_id),
    )
    db.execute(
        "UPDATE pipeline.pipeline_runs SET started_at = now() - %s::interval WHERE run_id = %s",
        (age, run_id),
    )


def logged_run_ids(db):
    """The run ids left in pipeline_runs and in pipeline_failures."""
    return tuple(
        [r["run_id"] for r in db.execute(f"SELECT run_id FROM pipeline.{table} ORDER BY run_id")]
        for table in ("pipeline_runs", "pipeline_failures")
    )


def test_retention_purges_old_runs_and_failures_and_keeps_recent_ones(db):
    broken_slug_journeys(db, "7d-post-surgery")  # every run logs one failure
    old, recent = run(db)["run_id"], run(db)["run_id"]
    backdate(db, old, "2 hours")
    db.execute("UPDATE pipeline.settings SET retention = interval '1 hour'")
    latest = run(db)["run_id"]
    assert logged_run_ids(db) == ([recent, latest], [recent, latest])


def test_default_retention_is_thirty_days(db):
    assert db.execute("SELECT retention FROM pipeline.settings").fetchone() == {
        "retention": timedelta(days=30)
    }
    broken_slug_journeys(db, "7d-post-surgery")
    old, aged, recent = run(db)["run_id"], run(db)["run_id"], run(db)["run_id"]
    backdate(db, old, "31 days")
    backdate(db, aged, "29 days")
    latest = run(db)["run_id"]
    assert logged_run_ids(db) == ([aged, recent, latest], [aged, recent, latest])


# --- broken configuration and broken runs --------------------------------------------------


def test_milestone_with_missing_date_column_holds_back_only_its_pairs(db):
    one_journey(db)
    seed(
        db,
        schedule=[(200, "1w-post-dis"), (300, "2d-post-discharge")],
        activity=[(20, "walk", 200), (30, "wound", 300)],
        journey_activity=[(1, 20), (1, 30)],
        patient_journey=[(2, 502, 1, "2026-04-01")],
    )
    db.execute(
        "UPDATE pipeline.milestone SET date_column = %s WHERE milestone_slug = %s",
        ("no_such_column", "discharge"),
    )
    result = run(db)
    assert counts(result) == dict(
        status="succeeded", rows_inserted=2, rows_updated=0, rows_held_back=4, failures=1
    )
    (failure,) = failures_of(db, result["run_id"])
    assert brief([failure]) == [match_failure(rows_held_back=4)]
    assert "discharge" in failure["error_message"]
    assert "no_such_column" in failure["error_message"]
    assert sorted(windows(db)) == [(1, 10), (2, 10)]


def test_run_that_breaks_is_recorded_as_failed_and_writes_no_window_row(db):
    one_journey(db)
    run(db)
    before = snapshot(db)
    db.execute("UPDATE public.patient_journey SET operation_date = '2026-04-01'")
    db.execute("ALTER TABLE public.activity RENAME TO activity_gone")
    with pytest.raises(psycopg.errors.ExternalRoutineException) as raised:
        db.execute("CALL pipeline.run_patient_journey_pipeline()")
    assert raised.value.sqlstate == "38000"
    assert "failed" in str(raised.value)

    failed = latest_run(db)
    assert (failed["status"], failed["failures"], failed["rows_inserted"]) == ("failed", 1, 0)
    assert "activity" in failed["error_message"]
    assert [(f["run_id"], f["stage"]) for f in current_failures(db)] == [(failed["run_id"], "run")]
    assert snapshot(db) == before

    db.execute("ALTER TABLE public.activity_gone RENAME TO activity")
    assert counts(run(db)) == dict(
        status="succeeded", rows_inserted=0, rows_updated=1, rows_held_back=0, failures=0
    )
    assert current_failures(db) == []


def test_run_that_breaks_after_writing_rolls_its_window_rows_back(db):
    one_journey(db)
    run(db)
    before = snapshot(db)
    db.execute("UPDATE public.patient_journey SET operation_date = '2026-04-01'")
    seed(db, patient_journey=[(2, 502, 1, "2026-04-01")])
    refuse_success(db)  # the run breaks at its very end, after the window rows were written
    with pytest.raises(psycopg.errors.ExternalRoutineException):
        db.execute("CALL pipeline.run_patient_journey_pipeline()")
    failed = latest_run(db)
    assert pick(failed, "status", "rows_inserted", "rows_updated") == ("failed", 0, 0)
    assert "refused for the test" in failed["error_message"]
    assert snapshot(db) == before
