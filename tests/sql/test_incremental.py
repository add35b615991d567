"""Incremental runs give the same result as full runs, and no change is ever lost."""

from __future__ import annotations

import random
import threading
import time

import psycopg
import pytest
from psycopg.rows import dict_row

from pytools.generate import generate
from tests.helpers.pipeline import (
    COMPARED,
    FAILURE_KEY,
    adherence_counts,
    bulk_fallbacks,
    insert,
    journeys_of_one_activity,
    quiet,
    run,
)


def _failures(conn, run_id: int) -> list[tuple]:
    rows = conn.execute(
        f"SELECT {FAILURE_KEY} FROM pipeline.pipeline_failures WHERE run_id = %s ORDER BY 1, 2, 4, 5, 6",
        (run_id,),
    )
    return [tuple(r.values()) for r in rows]


def _random_change(conn, rng: random.Random, next_id: list[int]) -> str:
    """Apply one application-like change; returns its name for the failure message."""
    kind = rng.choice(
        ["reschedule", "new journeys", "edit slug", "move activity", "prescribe", "unprescribe",
         "survey", "dated survey", "unsurvey", "edit survey", "orphan survey", "delete journey",
         "add missing activity", "rename activity", "move to patient", "null dates", "copy journey",
         "drop a copy"]
    )  # fmt: skip
    ids = [rng.randint(1, 300) for _ in range(rng.randint(1, 5))]
    if kind == "reschedule":
        conn.execute(
            "UPDATE public.patient_journey SET operation_date = operation_date + %s * interval '1 day', "
            "discharge_date = discharge_date + 1 WHERE id = ANY(%s)",
            (rng.randint(-20, 20), ids),
        )
    elif kind == "new journeys":
        first = next_id[0]
        next_id[0] += 3
        insert(
            conn,
            "patient_journey",
            ["id", "patient_id", "journey_id", "operation_date", "registration_date"],
            [(i, i, rng.randint(1, 6), f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}", "2026-01-02")
             for i in range(first, first + 3)],
        )  # fmt: skip
    elif kind == "edit slug":
        slug = rng.choice(
            ["4d-2d-pre-op", "5d-1d-pre-op", "2w-post-dis", "reg-d3", "9d-post-nowhere", "always"]
        )
        conn.execute("UPDATE public.schedule SET slug = %s WHERE id = %s", (slug, rng.randint(1, 61)))
    elif kind == "move activity":
        conn.execute(
            "UPDATE public.activity SET schedule_id = %s WHERE id = %s",
            (rng.choice([None, 70, *range(1, 62)]), rng.randint(1, 200)),
        )
    elif kind == "prescribe":
        insert(
            conn,
            "journey_activity",
            ["journey_id", "activity_id"],
            [(rng.randint(1, 5), rng.randint(1, 210))],
        )
    elif kind == "unprescribe":
        conn.execute(
            "DELETE FROM public.journey_activity WHERE ctid = (SELECT ctid FROM public.journey_activity "
            "WHERE journey_id = %s ORDER BY activity_id LIMIT 1)",
            (rng.randint(1, 5),),
        )
    elif kind == "survey":
        insert(
            conn,
            "survey_result",
            ["id", "patient_journey_id", "activity_id"],
            [(next_id[0] * 100 + i, rng.randint(1, 300), rng.randint(1, 205)) for i in range(3)],
        )
        next_id[0] += 1
    elif kind == "dated survey":
        insert(
            conn,
            "survey_result",
            ["id", "patient_journey_id", "activity_id", "start_time", "end_time"],
            [(next_id[0] * 100 + i, ids[0], rng.randint(1, 205), "2026-03-01 08:00+00",
              rng.choice([None, f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)} 23:30+00"]))
             for i in range(rng.randint(1, 3))],
        )  # fmt: skip
        next_id[0] += 1
    elif kind == "unsurvey":
        conn.execute(
            "DELETE FROM public.survey_result WHERE ctid IN (SELECT ctid FROM public.survey_result "
            "WHERE patient_journey_id = ANY(%s))",
            (ids,),
        )
    elif kind == "edit survey":  # a result moves to another pair and changes its time
        conn.execute(
            "UPDATE public.survey_result SET patient_journey_id = %s, "
            "end_time = coalesce(end_time, '2026-04-01 12:00+00') - interval '9 days' "
            "WHERE ctid = (SELECT ctid FROM public.survey_result ORDER BY id LIMIT 1 OFFSET %s)",
            (rng.randint(1, 300), rng.randint(0, 50)),
        )
    elif kind == "orphan survey":
        insert(
            conn,
            "survey_result",
            ["id", "patient_journey_id", "activity_id"],
            [(-next_id[0], 90_000 + ids[0], 3)],
        )
        next_id[0] += 1
    elif kind == "delete journey":
        conn.execute("DELETE FROM public.patient_journey WHERE id = %s", (ids[0],))
    elif kind == "add missing activity":
        insert(
            conn,
            "activity",
            ["id", "content_slug", "schedule_id"],
            [(rng.randint(201, 210), "late", rng.randint(1, 61))],
        )
    elif kind == "rename activity":  # its content slug is in every row of its pairs, held back or not
        conn.execute(
            "UPDATE public.activity SET content_slug = content_slug || '-v2' WHERE id = %s",
            (rng.randint(1, 200),),
        )
    elif kind == "copy journey" or (
        kind == "drop a copy"
        and not conn.execute("SELECT FROM public.patient_journey GROUP BY id HAVING count(*) > 1").fetchall()
    ):  # the same id again, with other values: one copy is kept
        conn.execute(
            "INSERT INTO public.patient_journey (id, patient_id, journey_id, operation_date) "
            "SELECT id, patient_id + 1000, 1 + journey_id %% 5, operation_date + interval '4 days' "
            "FROM public.patient_journey WHERE id = %s LIMIT 1",
            (ids[0],),
        )
    elif kind == "drop a copy":
        conn.execute(
            "DELETE FROM public.patient_journey WHERE ctid = (SELECT ctid FROM public.patient_journey "
            "WHERE id IN (SELECT id FROM public.patient_journey GROUP BY id HAVING count(*) > 1) "
            "ORDER BY id, patient_id DESC LIMIT 1)"
        )
    elif kind == "move to patient":
        conn.execute(
            "UPDATE public.patient_journey SET patient_id = patient_id + 1 WHERE id = ANY(%s)", (ids,)
        )
    else:
        conn.execute("UPDATE public.patient_journey SET operation_date = NULL WHERE id = ANY(%s)", (ids,))
    return kind


GROUP_KEY = "held_back, schedule_id, patient_journey_id, activity_id, milestone_slug"


def _group_counts(conn) -> list[tuple]:
    """held_back_group as the runs keep it, by adding and subtracting what each changed."""
    rows = conn.execute(f"SELECT {GROUP_KEY}, pairs FROM pipeline.held_back_group ORDER BY 1, 2, 3, 4, 5")
    return [tuple(r.values()) for r in rows]


def _recounted_groups(conn) -> list[tuple]:
    """The same counted afresh from held_back_pair: what the kept counts must equal."""
    rows = conn.execute(
        "SELECT held_back, "
        "  CASE WHEN held_back IN ('slug does not parse', 'missing schedule') THEN schedule_id END AS s, "
        "  CASE WHEN held_back = 'missing patient_journey' THEN patient_journey_id END AS pj, "
        "  CASE WHEN held_back IN ('missing activity', 'missing schedule') THEN activity_id END AS a, "
        "  CASE WHEN held_back = 'milestone date column unusable' THEN milestone_slug END AS m, "
        "  count(*) "
        "FROM pipeline.held_back_pair "
        "WHERE held_back NOT IN ('milestone date is infinite', 'window date out of range') "
        "GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"
    )
    return [tuple(r.values()) for r in rows]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_incremental_runs_equal_a_full_run_after_random_changes(db, db_url, seed):
    generate(db_url, 300, progress=quiet)
    assert run(db)["mode"] == "full"
    rng = random.Random(seed)
    next_id = [1_000]
    applied = []
    for _ in range(12):
        applied += [_random_change(db, rng, next_id) for _ in range(rng.randint(1, 3))]
        incremental = run(db)
        assert (incremental["status"], incremental["mode"]) == ("succeeded", "incremental"), applied
        assert _group_counts(db) == _recounted_groups(db), applied
        # the adherence report's counts, kept by the window table's triggers, on either side of
        # the generated windows (2026-01 .. 2026-06)
        for as_of in ("2026-01-15", "2026-04-01", "2026-09-01"):
            kept, counted = adherence_counts(db, as_of)
            assert kept == counted, (as_of, applied)

    before = db.execute(
        f"SELECT {COMPARED}, retired_at IS NOT NULL AS retired FROM pipeline.patient_journey_schedule_window "
        "ORDER BY 2, 3"
    ).fetchall()
    held_back = "SELECT * FROM pipeline.held_back_pair ORDER BY patient_journey_id, activity_id"
    held_back_before = db.execute(held_back).fetchall()
    full = run(db, full=True)
    assert full["mode"] == "full"
    assert (full["rows_inserted"], full["rows_updated"]) == (0, 0), applied
    after = db.execute(
        f"SELECT {COMPARED}, retired_at IS NOT NULL AS retired FROM pipeline.patient_journey_schedule_window "
        "ORDER BY 2, 3"
    ).fetchall()
    assert after == before
    assert db.execute(held_back).fetchall() == held_back_before, applied
    assert _failures(db, full["run_id"]) == _failures(db, incremental["run_id"]), applied
    assert full["rows_held_back"] == incremental["rows_held_back"]


LATER = "operation_date + interval '3 days'"


@pytest.mark.parametrize(
    ("slug", "moved_to"),
    [("5d-1d-pre-op", LATER), ("not-a-slug", LATER), ("5d-1d-pre-op", "'infinity'")],
    ids=["rescheduled", "bad slug", "date at risk"],
)
def test_a_pair_in_scope_through_both_its_journey_and_its_activity_is_recomputed_once(
    db, db_url, slug, moved_to
):
    """A rescheduled patient journey and an edited schedule of one of its activities, in one run:
    the pair is in the scope twice over, and is written (or, held back for its slug or its
    journey's date, recorded) once."""
    generate(db_url, 60, progress=quiet)
    run(db)
    pair = db.execute(
        "SELECT w.patient_journey_id, w.schedule_id FROM pipeline.patient_journey_schedule_window AS w "
        "WHERE w.schedule_id IS NOT NULL AND w.window_start_date IS NOT NULL AND NOT w.held_back "
        "ORDER BY 1, w.activity_id LIMIT 1"
    ).fetchone()
    db.execute(
        f"UPDATE public.patient_journey SET operation_date = {moved_to} WHERE id = %s",
        (pair["patient_journey_id"],),
    )
    db.execute("UPDATE public.schedule SET slug = %s WHERE id = %s", (slug, pair["schedule_id"]))
    fallbacks = bulk_fallbacks(db)
    incremental = run(db)
    assert (incremental["status"], incremental["mode"]) == ("succeeded", "incremental")
    # written in one statement: a pair twice in it fails it, and the run falls back to one at a time
    assert fallbacks == []
    assert incremental["rows_updated"] > 0
    assert _group_counts(db) == _recounted_groups(db)
    rows = f"SELECT {COMPARED} FROM pipeline.patient_journey_schedule_window ORDER BY 2, 3"
    before = db.execute(rows).fetchall()
    full = run(db, full=True)
    assert (full["rows_inserted"], full["rows_updated"]) == (0, 0)
    assert db.execute(rows).fetchall() == before
    assert full["rows_held_back"] == incremental["rows_held_back"]


def test_nothing_queued_is_a_noop_that_keeps_reporting_the_failures(db, db_url):
    generate(db_url, 100, progress=quiet)
    first = run(db)
    noop = run(db)
    assert (noop["mode"], noop["rows_inserted"], noop["rows_updated"]) == ("noop", 0, 0)
    assert noop["rows_held_back"] == first["rows_held_back"] > 0
    assert _failures(db, noop["run_id"]) == _failures(db, first["run_id"])
    current = db.execute("SELECT count(*) AS n FROM pipeline.current_failures").fetchone()
    assert current["n"] == len(_failures(db, first["run_id"]))


@pytest.mark.parametrize(
    "bypass",
    [
        "TRUNCATE public.survey_result",
        "INSERT INTO pipeline.milestone_alias VALUES ('surgery', 'operation')",
        "ALTER TABLE public.patient_journey DISABLE TRIGGER pipeline_capture_update",
        "DROP TRIGGER pipeline_capture_insert ON public.activity",
    ],
)
def test_changes_that_bypass_or_outgrow_the_queue_make_a_full_run(db, db_url, bypass):
    generate(db_url, 50, progress=quiet)
    run(db)
    db.execute(bypass)
    assert run(db)["mode"] == "full"


@pytest.mark.parametrize("analysed", [False, True])
def test_changes_that_reach_most_of_the_source_make_a_full_run_and_a_few_an_incremental_one(db, analysed):
    """An application statement that reschedules every patient journey, or one that edits most
    schedules, would cost an incremental run more than a full one: past 40% of
    the patient journeys or of the activities, in a database of 10,000 or more journeys, the run
    is full. Whether the planner's row estimates exist (analysed) or not (counted)."""
    insert(db, "schedule", ["id", "slug"], [(i, "4d-2d-pre-op") for i in range(1, 6)])
    insert(db, "activity", ["id", "content_slug", "schedule_id"], [(i, f"a{i}", i) for i in range(1, 6)])
    insert(db, "journey_activity", ["journey_id", "activity_id"], [(1, i) for i in range(1, 6)])
    db.execute(
        "INSERT INTO public.patient_journey (id, patient_id, journey_id, operation_date) "
        "SELECT g, g, 1, date '2026-03-01' + g % 30 FROM generate_series(1, 10000) AS g"
    )
    if analysed:
        db.execute("ANALYZE public.patient_journey, public.activity")
    assert run(db)["mode"] == "full"

    db.execute("UPDATE public.patient_journey SET operation_date = operation_date + interval '1 day'")
    every = run(db)
    assert (every["mode"], every["rows_updated"]) == ("full", 10000 * 5)
    reschedule = (
        "UPDATE public.patient_journey SET operation_date = operation_date + interval '1 day' WHERE id <= %s"
    )
    db.execute(reschedule, (3900,))
    assert (run(db)["mode"], latest_updates(db)) == ("incremental", 3900 * 5)
    db.execute(reschedule, (4100,))
    assert (run(db)["mode"], latest_updates(db)) == ("full", 4100 * 5)
    db.execute("UPDATE public.schedule SET slug = '5d-2d-pre-op' WHERE id <= 2")
    assert run(db)["mode"] == "incremental"
    db.execute("UPDATE public.schedule SET slug = '6d-2d-pre-op' WHERE id <= 3")
    assert run(db)["mode"] == "full"
    db.execute("TRUNCATE public.patient_journey")  # a small database: every run stays incremental
    db.execute("INSERT INTO public.patient_journey (id, patient_id, journey_id) VALUES (1, 1, 1)")
    run(db)
    db.execute("UPDATE public.patient_journey SET operation_date = date '2026-04-01'")
    if analysed:
        db.execute("ANALYZE public.patient_journey")
    assert run(db)["mode"] == "incremental"


def latest_updates(db):
    return db.execute(
        "SELECT rows_updated FROM pipeline.pipeline_runs ORDER BY run_id DESC LIMIT 1"
    ).fetchone()["rows_updated"]


def queued_keys(db, kind):
    rows = db.execute("SELECT keys FROM pipeline.change_queue WHERE kind = %s", (kind,)).fetchall()
    return sorted(key for row in rows for key in row["keys"])


def test_a_statement_that_rewrites_many_rows_queues_only_those_whose_read_columns_changed(db):
    """An application's UPDATE of every row that changes nothing a run reads (here the same
    operation dates) costs the next run nothing: it queues no key, and the run is a no-op. One
    that changes three of 2,000 rows queues those three (old and new key), not 2,000."""
    journeys_of_one_activity(db, 2000)
    run(db)
    db.execute(
        "UPDATE public.patient_journey SET operation_date = operation_date, consent_date = consent_date"
    )
    assert queued_keys(db, "patient_journey") == []
    assert run(db)["mode"] == "noop"
    db.execute(
        "UPDATE public.patient_journey SET operation_date = "
        "CASE WHEN id <= 3 THEN operation_date + interval '1 day' ELSE operation_date END"
    )
    assert queued_keys(db, "patient_journey") == [1, 1, 2, 2, 3, 3]
    ran = run(db)
    assert (ran["mode"], ran["rows_updated"]) == ("incremental", 3)


def test_an_incremental_run_neither_writes_nor_locks_the_rows_of_its_scope_that_did_not_change(db, db_url):
    """A run recomputes every pair of a touched patient journey; those that come out the same are
    left alone, not even locked (ON CONFLICT locks each row it meets, a dirtied page and a WAL
    record apiece, before its WHERE finds it unchanged)."""
    generate(db_url, 50, progress=quiet)
    run(db)
    db.execute("UPDATE public.patient_journey SET operation_date = operation_date WHERE id = 5")
    assert queued_keys(db, "patient_journey") == [5, 5]
    ran = run(db)
    assert (ran["mode"], ran["rows_inserted"], ran["rows_updated"]) == ("incremental", 0, 0)
    touched = db.execute(
        "SELECT count(*) AS rows, count(*) FILTER (WHERE xmax::text <> '0') AS locked "
        "FROM pipeline.patient_journey_schedule_window WHERE patient_journey_id = 5"
    ).fetchone()
    assert touched["rows"] > 0
    assert touched["locked"] == 0


def test_a_full_run_over_an_unchanged_source_rewrites_no_pair_held_back_and_no_window_row(db, db_url):
    """A full run writes held_back_pair by difference, as an incremental run does: the pairs
    held back as before are neither deleted nor inserted again (341,000 at 100,000 journeys)."""
    generate(db_url, 50, progress=quiet)
    run(db)
    versions = (
        "SELECT patient_journey_id, activity_id, xmin::text AS version "
        "FROM pipeline.held_back_pair ORDER BY 1, 2"
    )
    before = db.execute(versions).fetchall()
    ran = run(db, full=True)
    assert (ran["mode"], ran["rows_inserted"], ran["rows_updated"]) == ("full", 0, 0)
    assert len(before) > 0
    assert db.execute(versions).fetchall() == before
    assert ran["rows_held_back"] == len(before)
    touched = db.execute(
        "SELECT count(*) FILTER (WHERE xmax::text <> '0') AS locked "
        "FROM pipeline.patient_journey_schedule_window"
    ).fetchone()
    assert touched["locked"] == 0


def test_a_large_update_in_a_transaction_older_than_the_catalog_it_would_compare_keeps_every_key(db):
    """Under REPEATABLE READ the catalog is read as of the transaction's start, so the columns an
    UPDATE of many rows would be compared on may since have another type (the tables' owner's,
    with its own operators): such an UPDATE queues every key, compared on nothing."""
    journeys_of_one_activity(db, 2100)
    run(db)
    db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    db.execute("UPDATE public.patient_journey SET operation_date = operation_date")
    db.execute("COMMIT")
    assert len(queued_keys(db, "patient_journey")) == 2 * 2100


def case_insensitive_slugs(db):
    """schedule.slug under a case-insensitive ICU collation of the tables' owner (skipped without ICU)."""
    if db.execute("SELECT FROM pg_collation WHERE collname = 'und-x-icu'").fetchone() is None:
        pytest.skip("this PostgreSQL has no ICU")
    db.execute(
        "CREATE COLLATION public.pjp_nocase "
        "(provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
    )
    db.execute("ALTER TABLE public.schedule ALTER COLUMN slug TYPE text COLLATE public.pjp_nocase")


def test_rows_compared_byte_for_byte_and_only_on_built_in_types(db):
    """Actor: the source tables' owner. A slug column under a case-insensitive collation still
    has a change of case seen (compared COLLATE "C"); a compared column of the owner's type (an
    enum, whose comparison is not the catalog's) is never compared: every key is queued."""
    case_insensitive_slugs(db)
    insert(db, "schedule", ["id", "slug"], [(i, "4D-2D-PRE-OP") for i in range(1, 1201)])
    db.execute("DELETE FROM pipeline.change_queue")  # the insert's keys
    db.execute("UPDATE public.schedule SET slug = CASE WHEN id = 7 THEN lower(slug) ELSE slug END")
    assert queued_keys(db, "schedule") == [7, 7]

    db.execute("DELETE FROM pipeline.change_queue")
    db.execute("CREATE TYPE public.pjp_slug AS ENUM ('x', 'y')")
    insert(db, "activity", ["id", "content_slug", "schedule_id"], [(i, "x", 1) for i in range(1, 1201)])
    db.execute(
        "ALTER TABLE public.activity ALTER COLUMN content_slug TYPE public.pjp_slug "
        "USING content_slug::public.pjp_slug"
    )
    db.execute("DELETE FROM pipeline.change_queue")
    db.execute("UPDATE public.activity SET content_slug = content_slug")
    assert queued_keys(db, "activity") == sorted(list(range(1, 1201)) * 2)


def test_dates_a_milestone_is_pointed_at_before_their_statement_commits_are_still_queued(db, db_url):
    """Actor: the application writer. An UPDATE of many rows sets a date column that no
    milestone reads yet; before it commits, a milestone is pointed at that column (a full run)
    and a run reads the old dates. The statement's keys must be queued all the same, so that the
    next run reads the new dates, as a full run does."""
    db.execute("ALTER TABLE public.patient_journey ADD COLUMN appointment_date date")
    journeys_of_one_activity(db, 1500, "2d-post-appt", dated=False)
    run(db)
    with psycopg.connect(db_url) as application:
        application.execute("UPDATE public.patient_journey SET appointment_date = date '2026-04-01'")
        db.execute(
            "UPDATE pipeline.milestone SET date_column = 'appointment_date' "
            "WHERE milestone_slug = 'appointment'"
        )
        assert run(db)["mode"] == "full"
    assert run(db)["mode"] == "incremental"
    dated = "SELECT count(milestone_date) AS dated FROM pipeline.patient_journey_schedule_window"
    assert db.execute(dated).fetchone()["dated"] == 1500


@pytest.mark.parametrize("first", ["4d-2d-pre-op", "4D-2D-PRE-OP"])
def test_a_duplicated_schedule_id_keeps_the_same_slug_whatever_its_collation_and_the_rows_order(db, first):
    """Actor: the source tables' owner. Two copies of a schedule id whose slugs a
    case-insensitive collation calls equal: the run parses them (a regular expression refuses
    that collation) and keeps the same one, the first byte for byte, whichever the table holds
    first. Change capture compares slugs byte for byte, so an
    UPDATE that rewrites every row unchanged queues nothing; it may reorder the rows, and that
    must not change which slug a full run keeps."""
    case_insensitive_slugs(db)
    second = first.swapcase()
    insert(db, "schedule", ["id", "slug"], [(1, first), (1, second)])
    insert(db, "activity", ["id", "content_slug", "schedule_id"], [(1, "prep", 1)])
    insert(db, "journey_activity", ["journey_id", "activity_id"], [(1, 1)])
    insert(
        db, "patient_journey", ["id", "patient_id", "journey_id", "operation_date"], [(1, 1, 1, "2026-03-10")]
    )
    assert run(db)["failures"] == 0
    kept = db.execute("SELECT schedule_slug FROM pipeline.patient_journey_schedule_window").fetchone()
    assert kept["schedule_slug"] == "4D-2D-PRE-OP"


def test_migrate_reinstalls_missing_triggers(db, db_url):
    from pytools.migrations import migrate

    db.execute("DROP TRIGGER pipeline_capture_insert ON public.activity")
    assert migrate(db_url).unwatched == []
    run(db)
    insert(db, "activity", ["id", "content_slug", "schedule_id"], [(1, "x", None)])
    assert run(db)["mode"] == "incremental"


def test_a_change_committed_during_a_run_is_processed_by_that_run_or_the_next(db, db_url):
    generate(db_url, 50, progress=quiet)
    run(db)
    blocker = psycopg.connect(db_url)
    # the run first reads this table after draining the queue (its slugs' words), so it waits there
    blocker.execute("LOCK TABLE pipeline.milestone_alias IN ACCESS EXCLUSIVE MODE")
    done = threading.Event()

    def background_run() -> None:
        with psycopg.connect(db_url, autocommit=True, application_name="slow-run") as conn:
            conn.execute("CALL pipeline.run_patient_journey_pipeline()")
        done.set()

    db.execute("UPDATE public.patient_journey SET operation_date = DATE '2030-01-01' WHERE id = 1")
    thread = threading.Thread(target=background_run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not db.execute(
        "SELECT 1 FROM pg_stat_activity WHERE application_name = 'slow-run' AND wait_event_type = 'Lock'"
    ).fetchone():
        assert time.monotonic() < deadline, "the run never reached the lock"
        time.sleep(0.05)
    db.execute("UPDATE public.patient_journey SET operation_date = DATE '2031-02-02' WHERE id = 2")
    blocker.rollback()
    blocker.close()
    thread.join(30)
    assert done.is_set()
    # the second change came after the drain: it waits for the next run
    queued = db.execute("SELECT keys FROM pipeline.change_queue WHERE kind = 'patient_journey'").fetchall()
    assert {key for r in queued for key in r["keys"]} == {2}
    run(db)

    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        dates = {
            r["patient_journey_id"]: r["milestone_date"]
            for r in conn.execute(
                "SELECT DISTINCT patient_journey_id, milestone_date "
                "FROM pipeline.patient_journey_schedule_window "
                "WHERE patient_journey_id IN (1, 2) AND schedule_milestone_slug = 'operation'"
            )
        }
    assert str(dates[1]) == "2030-01-01" and str(dates[2]) == "2031-02-02"


def test_application_roles_need_no_rights_on_the_pipeline_schema(db, db_url):
    db.execute("CREATE ROLE pjp_app_writer LOGIN")
    try:
        db.execute("GRANT INSERT, UPDATE ON public.patient_journey TO pjp_app_writer")
        app = db_url.replace("postgresql://postgres@", "postgresql://pjp_app_writer@")
        with psycopg.connect(app, autocommit=True) as conn:
            conn.execute("INSERT INTO public.patient_journey (id, journey_id) VALUES (77, 1)")
        queued = db.execute(
            "SELECT keys FROM pipeline.change_queue WHERE kind = 'patient_journey'"
        ).fetchall()
        assert [77] in [r["keys"] for r in queued]
    finally:
        db.execute("DROP OWNED BY pjp_app_writer")
        db.execute("DROP ROLE pjp_app_writer")
