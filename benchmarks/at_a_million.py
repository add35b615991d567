"""The README's figures at N = 1,000,000, by hand (not part of `make bench`: about 10 minutes).

Generates the data, then times one full load, the no-op run, 1,000 patient journeys
rescheduled plus 100 new (the same absolute change as `make bench`'s small change at
100,000, without its slug edit), and one slug edited, each of the last three the median of 3;
then one patient journey's adherence, the median of 50.
The server is BENCH_DATABASE_URL (a superuser URL) or a throwaway local cluster.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import psycopg
from common import WINDOW, bench_server, fresh_database, log, one_journey_adherence_s, reschedule_and_add

JOURNEYS = 1_000_000


def run(conn: psycopg.Connection[Any], *, full: bool = False) -> float:
    started = time.perf_counter()
    conn.execute("CALL pipeline.run_patient_journey_pipeline('benchmark', %s)", (full,))
    return time.perf_counter() - started


def edit_slug(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "UPDATE public.schedule SET slug = CASE WHEN slug = '4d-2d-pre-op' THEN '5d-2d-pre-op' "
        "ELSE '4d-2d-pre-op' END WHERE id = 1"
    )


def main() -> int:
    with bench_server(54345) as server:
        started = time.perf_counter()
        url = fresh_database(server, "bench_million", JOURNEYS)
        log(f"generate + migrate: {time.perf_counter() - started:.0f} s")
        with psycopg.connect(url, autocommit=True) as conn:
            log(f"full load: {run(conn, full=True):.1f} s")
            row = conn.execute(f"SELECT count(*) FROM {WINDOW}").fetchone()
            log(f"window rows: {row[0] if row else 0:,}")
            noop = [run(conn) for _ in range(3)]
            log(f"no-op run: {statistics.median(noop) * 1000:.0f} ms")
            small = []
            for step in range(1, 4):
                reschedule_and_add(conn, JOURNEYS, step, 1000)
                small.append(run(conn))
            log(f"1,000 journeys rescheduled + 100 new: {statistics.median(small) * 1000:.0f} ms")
            slug = []
            for _ in range(3):
                edit_slug(conn)
                slug.append(run(conn))
            log(f"one slug edited: {statistics.median(slug) * 1000:.0f} ms")
            conn.execute("VACUUM ANALYZE")
            log(f"one patient journey's adherence: {one_journey_adherence_s(conn) * 1000:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
