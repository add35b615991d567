"""`generate --journeys N`: fill the app's source tables with realistic data, set-based and fast.

For benchmarks and trials only: it empties the ten source tables first, and (unless forced)
refuses while any of them holds a row. Deterministic for a given N.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg

from pytools.db import connect, database_error
from pytools.errors import ExitCode, UserError
from pytools.sql_files import sample_file

JOURNEYS = ("hip", "knee", "shoulder", "spine", "ankle")
ACTIVITIES = 200
ACTIVITIES_PER_JOURNEY = 40
CHUNK = 250_000  # patient journeys per statement, so that progress shows on long work

# ~60 schedules in the grammar's forms, plus three broken ones (the last three).
SCHEDULE_SLUGS = (
    "4d-2d-pre-op", "1d-7d-post-op", "2w-6w-post-dis", "42d-pre-op", "3m-post-op", "7d-op",
    "2w-pre-6w-post-op", "1d-pre-1dpo", "6wpo", "op-10d-post-op", "op-3d-pre-op", "4d-op-pre-op",
    "4d-op-post-op", "pre-op", "post-op", "reg", "reg-d0", "op-d14", "always", "1m-0d-pre-op",
    "12d-4w-post-op", "1y-post-op", "inv-d7", "consent", "2d-post-appt", "6m-post-op",
    "2d-5d-post-op", "3w-pre-op", "1w-2w-post-op", "10d-post-dis", "op-d1", "op-d2", "op-d7",
    "op-d30", "op-d90", "op-d180", "op-d365", "reg-d1", "reg-d7", "inv-d0", "inv-d14",
    "2w-pre-op", "1m-pre-op", "8w-12w-post-op", "5d-pre-2dpo", "3dpo", "2wpo", "3mpo",
    "post-dis", "dis-d0", "dis-d7", "consent-d0", "7d-14d-pre-op", "2y-post-op", "4m-post-op",
    "op-6w-post-op", "1d-op-post-op", "6w-pre-op",
    "7d-post-surgery", "3q-pre-op", "reg-10d-post-op",
)  # fmt: skip

Progress = Callable[[str], None]

# The app's tables generate fills, each emptied first.
SOURCE_TABLES = ("patient", "journey", "schedule", "activity", "journey_activity", "patient_journey",
                 "survey", "survey_result", "device", "step_result")  # fmt: skip
# Rows counted per table for the refusal: enough to tell a test database from a real one.
_COUNT_UP_TO = 1_000_000

# The indexes sql/sample/source_tables.sql gives the app's tables.
SOURCE_INDEXES = (
    "patient_journey_id_idx",
    "patient_journey_journey_id_idx",
    "survey_result_patient_journey_id_idx",
    "survey_result_activity_id_idx",
)


def _insert_fixed_tables(cur: psycopg.Cursor[tuple[object, ...]]) -> None:
    cur.execute(
        "INSERT INTO public.journey (id, abbreviation, joint_slug) "
        "SELECT n, upper(left(j, 1)) || 'R', j FROM unnest(%s::text[]) WITH ORDINALITY AS t(j, n)",
        (list(JOURNEYS),),
    )
    cur.execute(
        "INSERT INTO public.schedule (id, slug) "
        "SELECT n, s FROM unnest(%s::text[]) WITH ORDINALITY AS t(s, n)",
        (list(SCHEDULE_SLUGS),),
    )
    # Activities cycle through the schedules; every 50th has none, one names a missing schedule.
    cur.execute(
        """
        INSERT INTO public.activity (id, content_slug, schedule_id)
        SELECT a, format('activity-%%s', a),
               CASE WHEN a %% 50 = 0 THEN NULL WHEN a = 199 THEN 9999 ELSE 1 + a %% %s END
        FROM generate_series(1, %s) AS a
        """,
        (len(SCHEDULE_SLUGS), ACTIVITIES),
    )
    # Each journey prescribes 40 distinct activities (7 is coprime with 200); one is missing.
    cur.execute(
        """
        INSERT INTO public.journey_activity (journey_id, activity_id)
        SELECT j, 1 + (j * 41 + k * 7) %% %s
        FROM generate_series(1, %s) AS j, generate_series(0, %s) AS k
        UNION ALL SELECT 1, 5000
        """,
        (ACTIVITIES, len(JOURNEYS), ACTIVITIES_PER_JOURNEY - 1),
    )
    cur.execute(
        "INSERT INTO public.survey (id, slug, version, tags) VALUES "
        "(1, 'oxford-hip-score', '1', '{prom}'), (2, 'oxford-knee-score', '1', '{prom}'), "
        "(3, 'eq-5d-5l', '2', '{prom,quality-of-life}')"
    )
    cur.execute(
        "INSERT INTO public.device (id, platform, os_version) VALUES (1, 'ios', '17'), (2, 'android', '14')"
    )


def _insert_patient_journeys(cur: psycopg.Cursor[tuple[object, ...]], first: int, last: int) -> None:
    # Dates spread over 2019-2027; 4% of operations not yet booked, 5% never discharged.
    cur.execute(
        """
        INSERT INTO public.patient (id, age_bracket, sex, hospital)
        SELECT n, (ARRAY['18-39', '40-59', '60-79', '80+'])[1 + n %% 4], (ARRAY['F', 'M'])[1 + n %% 2],
               'hospital-' || (n %% 40)
        FROM generate_series(%s::bigint, %s::bigint) AS n
        """,
        (first, last),
    )
    cur.execute(
        """
        INSERT INTO public.patient_journey
            (id, patient_id, journey_id, invitation_date, registration_date, operation_date,
             discharge_date, consent_date, clinician_id)
        SELECT n, n, 1 + n %% %s, op - 60, op - 50 + (n %% 7),
               CASE WHEN n %% 25 = 0 THEN NULL ELSE (op + time '08:00')::timestamp END,
               CASE WHEN n %% 20 = 0 THEN NULL ELSE op + 1 + n %% 5 END,
               (op - 30)::timestamp, 1 + n %% 300
        FROM generate_series(%s::int, %s::int) AS n,
             LATERAL (SELECT DATE '2019-01-01' + ((n::bigint * 7919) %% 3200)::int AS op) AS d
        """,
        (len(JOURNEYS), first, last),
    )
    # Most pairs have a survey result; 1 in 200 results is for an activity the journey does not
    # prescribe, and the last chunk carries two results for a patient journey that does not exist.
    cur.execute(
        """
        INSERT INTO public.survey_result
            (id, patient_journey_id, survey_id, activity_id, device_id, score_value, start_time, end_time)
        SELECT pj.id * 64 + k,
               pj.id,
               1 + k %% 3,
               CASE WHEN (pj.id + k) %% 200 = 0 THEN 1 + (pj.id + k * 13) %% %s
                    ELSE 1 + (pj.journey_id * 41 + k * 7) %% %s END,
               1 + k %% 2,
               (pj.id + k) %% 48,
               TIMESTAMPTZ '2019-01-01 09:00+00' + (pj.id %% 3000) * interval '1 day',
               TIMESTAMPTZ '2019-01-01 09:06+00' + (pj.id %% 3000) * interval '1 day'
        FROM public.patient_journey AS pj, generate_series(0, 29) AS k
        WHERE pj.id BETWEEN %s AND %s
        """,
        (ACTIVITIES, ACTIVITIES, first, last),
    )


def _count(cur: psycopg.Cursor[tuple[object, ...]], table: str) -> int:
    row = cur.execute(f"SELECT count(*)::int FROM public.{table}").fetchone()
    return int(str(row[0])) if row else 0


def rows_it_would_erase(cur: psycopg.Cursor[tuple[object, ...]]) -> list[tuple[str, int]]:
    """(table, rows) for each source table that holds rows, counted up to _COUNT_UP_TO + 1."""
    found = []
    for table in SOURCE_TABLES:
        row = cur.execute(
            f"SELECT count(*)::int FROM (SELECT FROM public.{table} LIMIT {_COUNT_UP_TO + 1}) AS t"
        ).fetchone()
        if row and int(str(row[0])):
            found.append((table, int(str(row[0]))))
    return found


def _refusal(found: list[tuple[str, int]]) -> UserError:
    def rows(n: int) -> str:
        return f"more than {_COUNT_UP_TO:,} rows" if n > _COUNT_UP_TO else f"{n:,} row{'s' if n > 1 else ''}"

    held = ", ".join(f"public.{table} ({rows(n)})" for table, n in found)
    return UserError(
        f"generate erases all {len(SOURCE_TABLES)} source tables, and {held} "
        f"{'holds' if len(found) == 1 else 'hold'} data: "
        "nothing was changed; pass --force if this is a test database",
        ExitCode.USAGE,
    )


def generate(url: str, journeys: int, progress: Progress = print, *, force: bool = True) -> dict[str, int]:
    """Replace the source tables' rows with `journeys` patient journeys; returns row counts.

    Without `force`, a source table that holds a row is a user error, and nothing changes.
    """
    started = time.monotonic()

    def step(message: str) -> None:
        progress(f"[{time.monotonic() - started:6.1f}s] {message}")

    tables = SOURCE_TABLES
    with connect(url, autocommit=False) as conn, conn.cursor() as cur:
        try:
            cur.execute("SET LOCAL synchronous_commit = off")
            source_tables = sample_file("source_tables.sql").read_text(encoding="utf-8").encode()
            cur.execute(source_tables)
            if not force:
                # Writers wait from here to the TRUNCATE, so that no row arrives unseen in between.
                cur.execute(f"LOCK TABLE {', '.join(f'public.{t}' for t in tables)} IN SHARE MODE")
                if found := rows_it_would_erase(cur):
                    raise _refusal(found)
            cur.execute("TRUNCATE " + ", ".join(f"public.{t}" for t in tables))
            # Bulk load, then index: several times faster than maintaining the indexes per row.
            for index in SOURCE_INDEXES:
                cur.execute(f"DROP INDEX IF EXISTS public.{index}")
            _insert_fixed_tables(cur)
            step(f"{len(JOURNEYS)} journeys, {len(SCHEDULE_SLUGS)} schedules, {ACTIVITIES} activities")
            for first in range(1, journeys + 1, CHUNK):
                last = min(first + CHUNK - 1, journeys)
                _insert_patient_journeys(cur, first, last)
                step(f"patient journeys and survey results: {last:,}/{journeys:,}")
            cur.execute(
                "INSERT INTO public.survey_result (id, patient_journey_id, survey_id, activity_id) "
                "VALUES (-1, %s, 1, 1), (-2, %s, 1, 2)",
                (journeys + 1_000_000, journeys + 1_000_000),
            )
            cur.execute(source_tables)  # re-creates the indexes
            step("indexes built")
            conn.commit()
            # VACUUM too: as autovacuum does for an app's settled rows, it marks the pages
            # all-visible, so that index-only scans (survey_result's covering index) skip them
            conn.autocommit = True
            cur.execute("VACUUM (ANALYZE) " + ", ".join(f"public.{t}" for t in tables))
            step("vacuumed and analyzed")
        except psycopg.errors.InsufficientPrivilege:
            raise  # the CLI names what fixes it
        except psycopg.Error as exc:
            raise database_error("generating data", exc) from None
        counts = {t: _count(cur, t) for t in tables}
    step("done: " + ", ".join(f"{t} {n:,}" for t, n in counts.items() if n))
    return counts
