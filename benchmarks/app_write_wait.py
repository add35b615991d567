"""How long the application's writes wait while a run works: a measurement, not a test.

One connection CALLs a full run; another keeps making small application writes (insert a
patient journey, reschedule one, insert a survey result), one statement per transaction,
timing each; a third samples pg_stat_activity and counts the writes it catches waiting on a
lock. Scenarios: no run (the baseline), the first full load into an empty window table, and
a full run over a loaded table. Prints a table and writes
benchmarks/results/app_write_wait.json. The server is BENCH_DATABASE_URL (a superuser URL) or
a throwaway local cluster; BENCH_JOURNEYS sets the size (default 100,000).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from common import HERE, WINDOW, bench_server, fresh_database, log, machine

JOURNEYS = int(os.environ.get("BENCH_JOURNEYS", "100000"))
BASELINE_S = float(os.environ.get("BENCH_BASELINE_SECONDS", "10"))
WRITER = "bench-app-writer"


class AppWriter:
    """Small application writes in a loop on its own connection, each one timed."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.rng = random.Random(7)
        self.ids = itertools.count(10 * JOURNEYS + 1)
        self.latencies: list[float] = []
        self.lock_waits = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _writes(self) -> list[Callable[[psycopg.Connection[Any]], Any]]:
        def insert_journey(conn: psycopg.Connection[Any]) -> Any:
            new = next(self.ids)
            return conn.execute(
                "INSERT INTO public.patient_journey (id, patient_id, journey_id, operation_date) "
                "VALUES (%s, %s, %s, DATE '2026-06-01')",
                (new, new, 1 + new % 5),
            )

        def reschedule(conn: psycopg.Connection[Any]) -> Any:
            return conn.execute(
                "UPDATE public.patient_journey SET operation_date = operation_date + interval '1 day' "
                "WHERE id = %s",
                (self.rng.randint(1, JOURNEYS),),
            )

        def insert_survey_result(conn: psycopg.Connection[Any]) -> Any:
            return conn.execute(
                "INSERT INTO public.survey_result (id, patient_journey_id, activity_id, score_value) "
                "VALUES (%s, %s, %s, 1)",
                (-next(self.ids), self.rng.randint(1, JOURNEYS), self.rng.randint(1, 200)),
            )

        return [insert_journey, reschedule, insert_survey_result]

    def _write_loop(self) -> None:
        writes = self._writes()
        with psycopg.connect(self.url, autocommit=True, application_name=WRITER) as conn:
            for write in itertools.cycle(writes):
                if self._stop.is_set():
                    return
                started = time.perf_counter()
                write(conn)
                self.latencies.append(time.perf_counter() - started)
                time.sleep(0.002)

    def _sample_loop(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = %s AND wait_event_type = 'Lock'",
                    (WRITER,),
                ).fetchone()
                self.lock_waits += int(row[0]) if row else 0
                time.sleep(0.01)

    def __enter__(self) -> AppWriter:
        self._threads = [
            threading.Thread(target=self._write_loop),
            threading.Thread(target=self._sample_loop),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def call_full_run(conn: psycopg.Connection[Any]) -> dict[str, float]:
    """A full run; returns its duration and its commit's (the running row's finished_at up to the
    CALL's return, on the server's clock: the commit plus the procedure's last statements)."""
    started = time.perf_counter()
    conn.execute("CALL pipeline.run_patient_journey_pipeline('benchmark', true)")
    seconds = time.perf_counter() - started
    row = conn.execute(
        "SELECT extract(epoch FROM clock_timestamp() - finished_at), rows_inserted, rows_updated "
        "FROM pipeline.pipeline_runs WHERE backend_pid = pg_backend_pid() ORDER BY run_id DESC LIMIT 1"
    ).fetchone()
    assert row is not None
    return {"run_s": seconds, "commit_s": float(row[0]), "rows_inserted": row[1], "rows_updated": row[2]}


def summary(writer: AppWriter) -> dict[str, float]:
    ms = sorted(latency * 1000 for latency in writer.latencies)
    return {
        "writes": len(ms),
        "max_ms": ms[-1],
        "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
        "median_ms": statistics.median(ms),
        "lock_wait_samples": writer.lock_waits,
    }


def measure(url: str) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        log(f"  baseline: application writes for {BASELINE_S:.0f} s, no run")
        with AppWriter(url) as writer:
            time.sleep(BASELINE_S)
        results["no run"] = summary(writer)

        log("  first full load into the empty window table, with application writes")
        with AppWriter(url) as writer:
            time.sleep(0.5)
            run = call_full_run(conn)
        results["first full load"] = {**summary(writer), **run}

        log("  full run over the loaded window table, with application writes")
        with AppWriter(url) as writer:
            time.sleep(0.5)
            run = call_full_run(conn)
        results["full run, table loaded"] = {**summary(writer), **run}
        row = conn.execute(f"SELECT count(*) FROM {WINDOW}").fetchone()
        results["window rows"] = {"rows": float(row[0]) if row else 0.0}
    return results


def main() -> int:
    with bench_server(54341) as server:
        log(f"application write waits at N = {JOURNEYS:,} patient journeys")
        results = measure(fresh_database(server, "bench_write_wait", JOURNEYS))

    print(
        f"\nN = {JOURNEYS:,} patient journeys ({results['window rows']['rows']:,.0f} window rows); "
        f"{machine()}"
    )
    header = ("scenario", "writes", "median", "p99", "max", "lock waits", "run", "run commit")
    rows = [header]
    for name in ("no run", "first full load", "full run, table loaded"):
        r = results[name]
        rows.append(
            (
                name,
                f"{r['writes']:,.0f}",
                f"{r['median_ms']:.1f} ms",
                f"{r['p99_ms']:.1f} ms",
                f"{r['max_ms']:.1f} ms",
                f"{r['lock_wait_samples']:.0f}",
                f"{r['run_s']:.1f} s" if "run_s" in r else "",
                f"{r['commit_s'] * 1000:.0f} ms" if "commit_s" in r else "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print(
            "  "
            + "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    print("  (lock waits: times a 10 ms sampler saw the writer waiting on a lock)")
    results_dir = HERE / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / "app_write_wait.json").write_text(
        json.dumps({"machine": machine(), "journeys": JOURNEYS, "results": results}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
