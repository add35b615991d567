"""The adherence report (`python -m pytools report`) by milestone, activity and week, each
beside a plain `SELECT count(*)` of the window table, measured alternately in one session.

    BENCH_DATABASE_URL=postgresql://... python benchmarks/adherence_report.py   # a loaded database
    python benchmarks/adherence_report.py        # else: BENCH_JOURNEYS generated, one full run

Each sample times count(*), the report, count(*) again; the report's ratio is to the mean of
the two counts around it, so that load from elsewhere on the machine moves both. Prints the
median time of each and the median of the ratios over BENCH_REPEAT samples (default 7). The
report is read as the CLI reads it (pytools.adherence.adherence_report, as of 2026-06-01).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import psycopg
from common import WINDOW, bench_server, fresh_database, log

from pytools.adherence import BY, adherence_report
from pytools.db import connect_dicts

JOURNEYS = int(os.environ.get("BENCH_JOURNEYS", "100000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "7"))
AS_OF = date(2026, 6, 1)


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


@contextmanager
def loaded_database() -> Iterator[str]:
    """BENCH_DATABASE_URL as it is, or a throwaway cluster with generated data and one full run."""
    if os.environ.get("BENCH_DATABASE_URL"):
        yield os.environ["BENCH_DATABASE_URL"]
        return
    with bench_server(54399) as server:  # BENCH_PORT, else 54399
        url = fresh_database(server, "bench_report", JOURNEYS)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CALL pipeline.run_patient_journey_pipeline('benchmark', true)")
        yield url


def measure(url: str) -> dict[str, dict[str, float]]:
    """Per grouping: the report's median time, count(*)'s median time and the median ratio."""
    results = {}
    with connect_dicts(url) as conn:
        conn.execute("VACUUM ANALYZE")

        def count() -> None:
            conn.execute(f"SELECT count(*) FROM {WINDOW}").fetchall()

        for by in BY:
            adherence_report(conn, AS_OF, by)  # warm
            reports, counts, ratios = [], [], []
            for _ in range(REPEAT):
                before = timed(count)
                report = timed(lambda: adherence_report(conn, AS_OF, by))  # noqa: B023
                after = timed(count)
                reports.append(report)
                counts.append((before + after) / 2)
                ratios.append(report / counts[-1])
            results[by] = {
                "report_s": statistics.median(reports),
                "count_s": statistics.median(counts),
                "ratio": statistics.median(ratios),
            }
            log(
                f"report --by {by}: {results[by]['report_s'] * 1000:.0f} ms, "
                f"count(*) {results[by]['count_s'] * 1000:.0f} ms, "
                f"{results[by]['ratio']:.2f}x (median of {REPEAT} ratios)"
            )
    return results


def main() -> int:
    with loaded_database() as url:
        with psycopg.connect(url) as conn:
            rows = conn.execute(f"SELECT count(*) FROM {WINDOW}").fetchone()
        log(f"window rows: {rows[0] if rows else 0:,}")
        measure(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
