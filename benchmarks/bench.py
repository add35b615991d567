"""`make bench`: the pipeline's costs side by side, measured in one run on the same data.

Every figure is the median of BENCH_REPEAT runs and is shown with its ratio to a baseline
measured in this same run. Results are printed as a table and written to
benchmarks/results/latest-N.json (N = BENCH_JOURNEYS). The server is BENCH_DATABASE_URL (a superuser URL) or a
throwaway local cluster.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import dba_alternative
import psycopg
from common import (
    HERE,
    WINDOW,
    bench_server,
    fresh_database,
    log,
    machine,
    one_journey_adherence_s,
    reschedule_and_add,
)

from pytools.adherence import adherence_report
from pytools.db import connect_dicts

JOURNEYS = int(os.environ.get("BENCH_JOURNEYS", "100000"))
OLD_JOURNEYS = int(os.environ.get("BENCH_OLD_JOURNEYS", "10000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def median_of(prepare: Callable[[], Any], action: Callable[[], Any]) -> float:
    samples = []
    for _ in range(REPEAT):
        prepare()
        samples.append(timed(action))
    return statistics.median(samples)


def call_run(conn: psycopg.Connection[Any], *, full: bool = False) -> None:
    conn.execute("CALL pipeline.run_patient_journey_pipeline('benchmark', %s)", (full,))


def call_run_in_new_session(url: str) -> None:
    """A run as pg_cron makes each one: a new connection, so a new backend whose catalog caches
    are empty and which compiles every routine and plans every statement afresh."""
    with psycopg.connect(url, autocommit=True) as conn:
        call_run(conn)


def temp_bytes(conn: psycopg.Connection[Any]) -> int:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()"
    ).fetchone()
    return int(row[0]) if row else 0


def window_rows(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(f"SELECT count(*) FROM {WINDOW}").fetchone()
    return int(row[0]) if row else 0


def measure_ours(url: str) -> dict[str, float]:
    """Full load, the limit, a no-op run and a small-change run, on the same data."""
    results: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        before = temp_bytes(conn)
        call_run(conn, full=True)
        time.sleep(0.7)  # statistics reach pg_stat_database asynchronously
        results["full_load_temp_bytes"] = temp_bytes(conn) - before
        results["rows"] = window_rows(conn)
        results["full_load_s"] = median_of(
            lambda: conn.execute(f"TRUNCATE {WINDOW}"), lambda: call_run(conn, full=True)
        )
        log(f"  full load: {results['full_load_s']:.2f} s for {results['rows']:,} rows")

        conn.execute(f"CREATE TABLE bench_rows AS SELECT * FROM {WINDOW}")
        conn.execute("VACUUM ANALYZE bench_rows")

        def limit() -> None:
            conn.execute("CREATE TABLE bench_limit AS SELECT * FROM bench_rows")
            conn.execute("ALTER TABLE bench_limit ADD PRIMARY KEY (patient_journey_id, activity_id)")

        results["limit_s"] = median_of(lambda: conn.execute("DROP TABLE IF EXISTS bench_limit"), limit)
        conn.execute("DROP TABLE IF EXISTS bench_limit, bench_rows")
        log(f"  limit: {results['limit_s']:.2f} s")

        results["noop_s"] = median_of(lambda: None, lambda: call_run(conn))
        log(f"  no-op run: {results['noop_s'] * 1000:.0f} ms")
        results["noop_new_session_s"] = median_of(lambda: None, lambda: call_run_in_new_session(url))
        new_session_ms = results["noop_new_session_s"] * 1000
        log(f"  no-op run in a new session, connecting included: {new_session_ms:.0f} ms")

        changes = iter(range(1, 99))

        results["small_change_s"] = median_of(
            lambda: small_change(conn, next(changes), True), lambda: call_run(conn)
        )
        log(f"  small change: {results['small_change_s'] * 1000:.0f} ms")
        # The same without the slug edit, which alone rewrites every pair of one activity.
        results["small_change_no_slug_s"] = median_of(
            lambda: small_change(conn, next(changes), False), lambda: call_run(conn)
        )
        log(f"  small change without the slug edit: {results['small_change_no_slug_s'] * 1000:.0f} ms")
        results.update(measure_update_limit(conn, next(changes)))
        results.update(measure_unchanged_full_run(conn))
        results.update(
            dba_alternative.measure_view(conn, median_of, lambda: small_change(conn, next(changes), True))
        )
        log(f"  materialized view: full {results['mv_full_s']:.2f} s, no-op {results['mv_noop_s']:.2f} s, "
            f"small change {results['mv_small_change_s']:.2f} s, {results['mv_rows']:,.0f} rows")  # fmt: skip
        results.update(measure_adherence(conn, url))
        results.update(measure_trigger_cost(conn))
    return results


def small_change(conn: psycopg.Connection[Any], step: int, edit_slug: bool) -> None:
    """1% of the patient journeys rescheduled (a different 1% each step), 100 new ones, and
    with `edit_slug` one schedule's slug edited (every pair of its activities changes)."""
    reschedule_and_add(conn, JOURNEYS, step, 100)
    if edit_slug:
        conn.execute(
            "UPDATE public.schedule SET slug = CASE WHEN slug = '4d-2d-pre-op' THEN '5d-2d-pre-op' "
            "ELSE '4d-2d-pre-op' END WHERE id = 1"
        )


def measure_update_limit(conn: psycopg.Connection[Any], step: int) -> dict[str, float]:
    """The update limit of one small change: on a copy of the window table with the same
    indexes, an UPDATE of exactly the rows the run changed to their new values, from a
    precomputed table, plus an INSERT of the rows it added; beside the run itself."""
    conn.execute(f"CREATE TABLE bench_copy (LIKE {WINDOW} INCLUDING ALL)")
    conn.execute(f"INSERT INTO bench_copy SELECT * FROM {WINDOW}")
    conn.execute("VACUUM ANALYZE bench_copy")
    small_change(conn, step, True)
    started = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
    run_s = timed(lambda: call_run(conn))
    conn.execute(
        f"CREATE TABLE bench_changed AS SELECT * FROM {WINDOW} WHERE updated_at >= %s AND inserted_at < %s",
        (started, started),
    )
    conn.execute(f"CREATE TABLE bench_new AS SELECT * FROM {WINDOW} WHERE inserted_at >= %s", (started,))
    conn.execute("ANALYZE bench_changed, bench_new")
    columns = [
        row[0]
        for row in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'bench_copy'::regclass AND attnum > 0 "
            "AND NOT attisdropped AND attname NOT IN ('patient_journey_id', 'activity_id') ORDER BY attnum"
        )
    ]
    assignments = ", ".join(f"{c} = n.{c}" for c in columns)

    def limit() -> None:
        with conn.transaction(force_rollback=True):
            conn.execute(
                f"UPDATE bench_copy AS c SET {assignments} FROM bench_changed AS n "
                "WHERE c.patient_journey_id = n.patient_journey_id AND c.activity_id = n.activity_id"
            )
            conn.execute("INSERT INTO bench_copy SELECT * FROM bench_new")

    limit_s = median_of(lambda: None, limit)
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM bench_changed), (SELECT count(*) FROM bench_new)"
    ).fetchone()
    conn.execute("DROP TABLE bench_copy, bench_changed, bench_new")
    log(f"  update limit of a small change: {limit_s * 1000:.0f} ms ({counts[0]:,} rows updated, "  # type: ignore[index]
        f"{counts[1]:,} inserted); that run: {run_s * 1000:.0f} ms")  # type: ignore[index]  # fmt: skip
    return {"update_limit_s": limit_s, "update_limit_run_s": run_s}


def measure_unchanged_full_run(conn: psycopg.Connection[Any]) -> dict[str, float]:
    """A full run over the loaded table when nothing changed (it writes nothing), beside the
    candidate query alone: what pipeline.preview_run() prepares, counted."""
    call_run(conn)  # nothing queued after this

    def candidates() -> None:
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL jit = off")
            conn.execute("SELECT pipeline.preview_run()")
            conn.execute("SELECT count(*) FROM pg_temp.run_window").fetchall()

    candidates_s = median_of(lambda: None, candidates)
    full_s = median_of(lambda: None, lambda: call_run(conn, full=True))
    log(
        f"  full run over the unchanged table: {full_s:.2f} s; the candidate query alone {candidates_s:.2f} s"
    )
    return {"unchanged_full_run_s": full_s, "candidates_s": candidates_s}


def measure_adherence(conn: psycopg.Connection[Any], url: str) -> dict[str, float]:
    """The report by milestone beside a plain count(*) of the window table, and one patient
    journey's adherence (which must reach the indexes), both on a loaded table."""
    conn.execute("VACUUM ANALYZE")
    count_s = median_of(lambda: None, lambda: conn.execute(f"SELECT count(*) FROM {WINDOW}").fetchall())
    with connect_dicts(url) as reader:  # the report as the CLI reads it
        report_s = median_of(lambda: None, lambda: adherence_report(reader, date(2026, 6, 1), "milestone"))
    one_s = one_journey_adherence_s(conn)
    log(f"  report by milestone: {report_s * 1000:.0f} ms, count(*) {count_s * 1000:.0f} ms; "
        f"one journey's adherence: {one_s * 1000:.2f} ms")  # fmt: skip
    return {"count_s": count_s, "report_by_milestone_s": report_s, "one_journey_adherence_s": one_s}


def measure_trigger_cost(conn: psycopg.Connection[Any]) -> dict[str, float]:
    """The application's bulk insert of patient journeys with and without change capture."""
    first = JOURNEYS * 10
    bulk = (
        "INSERT INTO public.patient_journey (id, patient_id, journey_id, operation_date, discharge_date) "
        "SELECT n, n, 1 + n %% 5, DATE '2026-01-01' + n %% 90, DATE '2026-01-05' + n %% 90 "
        "FROM generate_series(%s::int, %s::int) AS n"
    )
    batch = max(JOURNEYS // 2, 1000)
    # Both triggers an insert meets: the statement-level one and the row-level one for
    # replica-mode writers (enabled REPLICA, so skipped for the application's writes).
    triggers = {
        "without": "DISABLE TRIGGER pipeline_capture_insert, DISABLE TRIGGER pipeline_capture_replica",
        "with": "ENABLE TRIGGER pipeline_capture_insert, ENABLE REPLICA TRIGGER pipeline_capture_replica",
    }
    samples: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(REPEAT):
        for mode in ("without", "with"):
            conn.execute(f"ALTER TABLE public.patient_journey {triggers[mode]}")
            samples[mode].append(timed(lambda: conn.execute(bulk, (first, first + batch - 1))))
            conn.execute("DELETE FROM public.patient_journey WHERE id >= %s", (first,))
    conn.execute(f"ALTER TABLE public.patient_journey {triggers['with']}")
    conn.execute("VACUUM public.patient_journey")
    with_s, without_s = statistics.median(samples["with"]), statistics.median(samples["without"])
    log(f"  bulk insert of {batch:,} patient journeys: {without_s:.3f} s bare, {with_s:.3f} s with triggers")
    return {"bulk_insert_rows": batch, "bulk_insert_s": without_s, "bulk_insert_with_triggers_s": with_s}


def measure_old(url: str) -> dict[str, float]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS old_pipeline CASCADE")
    out = subprocess.run(
        [sys.executable, str(HERE / "old_pipeline.py"), url], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def measure_cli_memory(url: str) -> float:
    """Peak RSS of `python -m pytools run-now` (our Python process), in MiB."""
    code = (
        "import resource, sys; from pytools.cli import main; "
        f"main(['run-now', '--database-url', {url!r}, '--format', 'json']); "
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.split("PEAK")[-1]) / 1024


def main() -> int:
    with bench_server(54339) as server:
        log(f"our pipeline at N = {JOURNEYS:,} patient journeys")
        big = measure_ours(fresh_database(server, "bench_big", JOURNEYS))
        log(f"old approach vs ours at N = {OLD_JOURNEYS:,}")
        small_url = fresh_database(server, "bench_small", OLD_JOURNEYS)
        old_runs = [measure_old(small_url) for _ in range(REPEAT)]
        old_run = {key: statistics.median(r[key] for r in old_runs) for key in old_runs[0]}
        log(f"  old approach: {old_run['seconds']:.1f} s for {old_run['rows']:,.0f} rows")
        with psycopg.connect(small_url, autocommit=True) as conn:
            ours_small = median_of(
                lambda: conn.execute(f"TRUNCATE {WINDOW}"), lambda: call_run(conn, full=True)
            )
            small_rows = window_rows(conn)
        cli_mib = measure_cli_memory(small_url)

    old_rate = old_run["rows"] / old_run["seconds"]
    ours_rate = small_rows / ours_small
    full, limit_s = big["full_load_s"], big["limit_s"]
    old_mib = old_run["peak_rss_mib"]
    figures = [
        ("full load", f"{full:.2f} s", f"{full / limit_s:.2f}x the limit (target <= 1.5x)"),
        ("limit: CTAS of the same rows + PK", f"{limit_s:.2f} s", "1.00x"),
        ("no-op run", f"{big['noop_s'] * 1000:.0f} ms",
         f"{big['noop_s'] / full:.3f}x the full load (target < 10 ms)"),
        ("  in a new session (as pg_cron runs it)", f"{big['noop_new_session_s'] * 1000:.0f} ms",
         "connecting included"),
        ("small change run", f"{big['small_change_s'] * 1000:.0f} ms",
         f"{big['small_change_s'] / full:.3f}x the full load (target < 1 s)"),
        ("  the same without the slug edit", f"{big['small_change_no_slug_s'] * 1000:.0f} ms",
         f"{big['small_change_no_slug_s'] / full:.3f}x the full load"),
        ("small change run, measured beside its limit", f"{big['update_limit_run_s'] * 1000:.0f} ms",
         f"{big['update_limit_run_s'] / big['update_limit_s']:.2f}x the update limit (target <= 1.5x)"),
        ("  update limit: UPDATE + INSERT of the changes", f"{big['update_limit_s'] * 1000:.0f} ms", "1.00x"),
        ("full run over the unchanged table", f"{big['unchanged_full_run_s']:.2f} s",
         f"{big['unchanged_full_run_s'] / big['candidates_s']:.2f}x the candidate query (target <= 1.2x)"),
        ("  the candidate query alone", f"{big['candidates_s']:.2f} s", "1.00x"),
        ("materialized view: full load (REFRESH)", f"{big['mv_full_s']:.2f} s",
         f"ours {full / big['mv_full_s']:.2f}x its time"),
        ("materialized view: no-op REFRESH CONCURRENTLY", f"{big['mv_noop_s'] * 1000:.0f} ms",
         f"ours {big['noop_s'] / big['mv_noop_s']:.4f}x its time"),
        ("materialized view: small change, CONCURRENTLY", f"{big['mv_small_change_s'] * 1000:.0f} ms",
         f"ours {big['small_change_s'] / big['mv_small_change_s']:.3f}x its time"),
        (f"old approach, N={OLD_JOURNEYS:,}", f"{old_rate:,.0f} rows/s", "1.00x"),
        (f"ours, N={OLD_JOURNEYS:,}", f"{ours_rate:,.0f} rows/s",
         f"{ours_rate / old_rate:.1f}x the old approach (target >= 15x)"),
        ("peak RSS, old approach", f"{old_mib:.0f} MiB", "1.00x"),
        ("peak RSS, run-now", f"{cli_mib:.0f} MiB", f"{cli_mib / old_mib:.2f}x the old approach"),
        ("adherence report by milestone", f"{big['report_by_milestone_s'] * 1000:.0f} ms",
         f"{big['report_by_milestone_s'] / big['count_s']:.2f}x count(*) of the window table (target <= 3x)"),
        ("  count(*) of the window table", f"{big['count_s'] * 1000:.0f} ms", "1.00x"),
        ("one patient journey's adherence", f"{big['one_journey_adherence_s'] * 1000:.2f} ms",
         "(target < 10 ms)"),
        ("temp file bytes, full load", f"{big['full_load_temp_bytes'] / 2**20:.0f} MiB", ""),
        (f"bulk insert, {big['bulk_insert_rows']:,.0f} journeys", f"{big['bulk_insert_s']:.3f} s", "1.00x"),
        ("  the same with change capture", f"{big['bulk_insert_with_triggers_s']:.3f} s",
         f"{big['bulk_insert_with_triggers_s'] / big['bulk_insert_s']:.2f}x (target < 1.10x)"),
    ]  # fmt: skip
    width = max(len(f[0]) for f in figures)
    print(
        f"\nN = {JOURNEYS:,} patient journeys ({big['rows']:,.0f} window rows), median of {REPEAT}; "
        f"{machine()}"
    )
    for name, value, ratio in figures:
        print(f"  {name.ljust(width)}  {value:>14}  {ratio}")
    results_dir = HERE / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / f"latest-{JOURNEYS}.json").write_text(
        json.dumps(
            {"machine": machine(), "journeys": JOURNEYS, "old_journeys": OLD_JOURNEYS, "repeat": REPEAT,
             "ours": big, "old": old_run, "ours_small_s": ours_small, "ours_small_rows": small_rows,
             "cli_peak_rss_mib": cli_mib},
            indent=2,
        )
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
