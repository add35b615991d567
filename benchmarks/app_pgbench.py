"""The application's cost of change capture, measured with pgbench: a measurement, not a test.

pgbench runs the app's typical single-row transactions against the source tables (insert a
patient journey, reschedule one, insert a survey result; equal weights, prepared statements)
with change capture and without it (its triggers disabled), at 1 and at 8 clients, with
durability off (the throwaway cluster's default) and on (fsync, synchronous_commit and
full_page_writes on, as a production server has them), and, with capture, while a full run
works. Each figure: transactions per second, and latency percentiles from pgbench's
per-transaction log. After each run with capture, the pipeline run that takes the queued
changes is timed, beside a full run over the same changes (on a copy of the database); before
each pgbench run, an untimed full run takes whatever capture did not see (switching capture off
and on makes the next run full, which would otherwise be timed as the one after pgbench).
Prints a table and writes benchmarks/results/app_pgbench.json.
BENCH_JOURNEYS sets the size (default 100,000), BENCH_PGBENCH_SECONDS each run's length
(default 15).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from common import HERE, bench_server, fresh_database, log, machine
from psycopg.conninfo import conninfo_to_dict

from pytools.cluster import find_bindir
from pytools.config import with_database

JOURNEYS = int(os.environ.get("BENCH_JOURNEYS", "100000"))
SECONDS = int(os.environ.get("BENCH_PGBENCH_SECONDS", "15"))
CAPTURED = ("public.patient_journey", "public.survey_result")
TRIGGERS = ("pipeline_capture_insert", "pipeline_capture_update", "pipeline_capture_delete")
SCRIPTS = {
    "insert_journey.sql": "INSERT INTO public.patient_journey (id, patient_id, journey_id, operation_date) "
    "VALUES (nextval('public.bench_ids'), :client_id, 1 + :client_id % 5, DATE '2026-06-01');\n",
    "reschedule.sql": f"\\set pj random(1, {JOURNEYS})\n"
    "UPDATE public.patient_journey SET operation_date = operation_date + interval '1 day' WHERE id = :pj;\n",
    "survey_result.sql": f"\\set pj random(1, {JOURNEYS})\n\\set act random(1, 200)\n"
    "INSERT INTO public.survey_result (id, patient_journey_id, activity_id, end_time) "
    "VALUES (nextval('public.bench_ids'), :pj, :act, now());\n",
}
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
FAST = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def set_capture(conn: psycopg.Connection[Any], on: bool) -> None:
    verb = "ENABLE" if on else "DISABLE"
    for table in CAPTURED:
        for trigger in TRIGGERS:
            conn.execute(f"ALTER TABLE {table} {verb} TRIGGER {trigger}")


def set_durability(conn: psycopg.Connection[Any], settings: dict[str, str]) -> None:
    for name, value in settings.items():
        conn.execute(f"ALTER SYSTEM SET {name} = {value}")
    conn.execute("SELECT pg_reload_conf()")
    time.sleep(0.5)


def pgbench(url: str, clients: int, workdir: Path) -> dict[str, float]:
    """One pgbench run of SECONDS: tps and latency percentiles (ms) of every transaction."""
    params = conninfo_to_dict(url)
    for old in workdir.glob("pgb*"):
        old.unlink()
    argv = [
        str(find_bindir() / "pgbench"), "-n", "-M", "prepared", "-T", str(SECONDS),
        "-c", str(clients), "-j", str(min(clients, 2)), "-l", "--log-prefix", str(workdir / "pgb"),
        "-h", str(params["host"]), "-p", str(params["port"]), "-U", str(params["user"]),
        *[arg for name in SCRIPTS for arg in ("-f", str(workdir / name))],
        str(params["dbname"]),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=workdir)
    tps = next(
        float(line.split("=")[1].split()[0]) for line in done.stdout.splitlines() if line.startswith("tps")
    )
    latencies = sorted(
        int(line.split()[2]) / 1000
        for log_file in workdir.glob("pgb*")
        for line in log_file.read_text().splitlines()
    )
    cut = statistics.quantiles(latencies, n=100)
    return {"tps": tps, "p50_ms": cut[49], "p95_ms": cut[94], "p99_ms": cut[98], "max_ms": latencies[-1]}


def timed_run(conn: psycopg.Connection[Any], full: bool) -> float:
    started = time.perf_counter()
    conn.execute("CALL pipeline.run_patient_journey_pipeline('benchmark', %s)", (full,))
    return time.perf_counter() - started


def last_run(conn: psycopg.Connection[Any]) -> tuple[str, int, int]:
    row = conn.execute(
        "SELECT mode, rows_inserted, rows_updated FROM pipeline.pipeline_runs ORDER BY run_id DESC LIMIT 1"
    ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def next_runs(server: str, name: str) -> dict[str, Any]:
    """The run that takes what pgbench queued, and a full run over the same state (on a copy of
    the database made before either), so that the two are compared over the same changes."""
    copy = f"{name}_copy"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {copy}")
        conn.execute(f"CREATE DATABASE {copy} TEMPLATE {name} STRATEGY file_copy")
    figures: dict[str, Any] = {}
    try:
        for label, database, full in (("next_run", name, False), ("full_run_same_changes", copy, True)):
            with psycopg.connect(with_database(server, database), autocommit=True) as conn:
                figures[f"{label}_s"] = timed_run(conn, full)
                figures[f"{label}_mode"], inserted, updated = last_run(conn)
                figures[f"{label}_rows_written"] = inserted + updated
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {copy}")
    return figures


def during_full_run(url: str, clients: int, workdir: Path) -> dict[str, float]:
    """pgbench while full runs follow one another on another connection."""
    stop = threading.Event()

    def runs() -> None:
        with psycopg.connect(url, autocommit=True) as runner:
            while not stop.is_set():
                timed_run(runner, True)

    worker = threading.Thread(target=runs)
    worker.start()
    try:
        return pgbench(url, clients, workdir)
    finally:
        stop.set()
        worker.join()


def next_runs_text(figures: dict[str, Any]) -> str:
    if "next_run_s" not in figures:
        return ""
    return (
        f"next run {figures['next_run_s']:.2f} s ({figures['next_run_mode']}), "
        f"full run {figures['full_run_same_changes_s']:.2f} s"
    )


def measure(server: str, name: str, workdir: Path) -> dict[str, dict[str, Any]]:
    url = with_database(server, name)
    results: dict[str, dict[str, Any]] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE public.bench_ids START 1000000000")
    for durability, settings in (("durability off", FAST), ("durability on", DURABLE)):
        for clients in (1, 8):
            for capture in (False, True):
                with psycopg.connect(url, autocommit=True) as conn:
                    set_durability(conn, settings)
                    set_capture(conn, capture)
                    # Capture switched back on (or writes made without it) makes the next run
                    # full: take that run now, so the one timed after pgbench takes its queue only.
                    timed_run(conn, True)
                    conn.execute("VACUUM ANALYZE")
                who = f"{clients} client{'s' * (clients > 1)}"
                label = f"{durability}, {who}, capture {'on' if capture else 'off'}"
                figures: dict[str, Any] = dict(pgbench(url, clients, workdir))
                if capture:
                    figures.update(next_runs(server, name))
                results[label] = figures
                tps = f"{figures['tps']:,.0f} tps, p99 {figures['p99_ms']:.2f} ms"
                log(f"  {label}: {tps}; {next_runs_text(figures)}")
        for clients in (1, 8):
            label = f"{durability}, {clients} client{'s' * (clients > 1)}, capture on, during full runs"
            results[label] = during_full_run(url, clients, workdir)
            log(f"  {label}: {results[label]['tps']:,.0f} tps, p99 {results[label]['p99_ms']:.2f} ms")
    with psycopg.connect(url, autocommit=True) as conn:
        set_durability(conn, FAST)
    return results


def main() -> int:
    with bench_server(54341) as server, tempfile.TemporaryDirectory(prefix="pjp-pgbench-") as tmp:
        workdir = Path(tmp)
        for name, text in SCRIPTS.items():
            (workdir / name).write_text(text)
        log(f"the application's transactions with pgbench at N = {JOURNEYS:,}, {SECONDS} s each")
        fresh_database(server, "bench_pgbench", JOURNEYS)
        results = measure(server, "bench_pgbench", workdir)
    print(f"\nN = {JOURNEYS:,} patient journeys, pgbench -T {SECONDS} -M prepared; {machine()}")
    print(f"  {'scenario':<58} {'tps':>8} {'vs off':>7} {'p50':>7} {'p95':>7} {'p99':>7}  runs after")
    for name, figures in results.items():
        baseline = results.get(name.replace("capture on", "capture off").replace(", during full runs", ""))
        ratio = f"{figures['tps'] / baseline['tps']:.2f}x" if baseline else ""
        print(f"  {name:<58} {figures['tps']:>8,.0f} {ratio:>7} {figures['p50_ms']:>6.2f}  "
              f"{figures['p95_ms']:>6.2f}  {figures['p99_ms']:>6.2f}  {next_runs_text(figures)}")  # fmt: skip
    results_dir = HERE / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / "app_pgbench.json").write_text(
        json.dumps(
            {"machine": machine(), "journeys": JOURNEYS, "seconds": SECONDS, "results": results}, indent=2
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
