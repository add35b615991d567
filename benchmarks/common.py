"""What the benchmark scripts share: a server to measure on and data generated into it."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from pytools.cluster import throwaway_cluster
from pytools.config import with_database
from pytools.generate import generate
from pytools.migrations import migrate

HERE = Path(__file__).resolve().parent
WINDOW = "pipeline.patient_journey_schedule_window"


def log(message: str) -> None:
    print(message, flush=True)


def machine() -> str:
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, PostgreSQL 15"


@contextmanager
def bench_server(default_port: int) -> Iterator[str]:
    """BENCH_DATABASE_URL (a superuser URL), or a throwaway local cluster on BENCH_PORT."""
    if os.environ.get("BENCH_DATABASE_URL"):
        yield os.environ["BENCH_DATABASE_URL"]
        return
    port = int(os.environ.get("BENCH_PORT", str(default_port)))
    with throwaway_cluster(prefix="pjp-bench-", port=port) as cluster:
        yield cluster.url("postgres")


def fresh_database(server: str, name: str, journeys: int) -> str:
    """A new database with `journeys` generated patient journeys and the pipeline installed."""
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    url = with_database(server, name)
    generate(url, journeys, progress=lambda m: log(f"  generate: {m}"))
    migrate(url)
    return url


def one_journey_adherence_s(conn: psycopg.Connection[Any], queries: int = 50) -> float:
    """The median time of one patient journey's adherence, each query a different journey
    (which must reach the window table's index)."""
    one = "SELECT * FROM pipeline.adherence('2026-06-01') WHERE patient_journey_id = %s"
    times = []
    for journey in range(4242, 4242 + queries * 7, 7):
        started = time.perf_counter()
        conn.execute(one, (journey,)).fetchall()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def reschedule_and_add(conn: psycopg.Connection[Any], journeys: int, step: int, every: int) -> None:
    """One patient journey in `every` rescheduled by a day (a different one each step) and 100
    new ones, with ids above the `journeys` generated: the routine change the benchmarks time."""
    conn.execute(
        "UPDATE public.patient_journey SET operation_date = operation_date + interval '1 day' "
        "WHERE id %% %s = %s",
        (every, step),
    )
    first = journeys + step * 1000
    conn.execute(
        "INSERT INTO public.patient_journey (id, patient_id, journey_id, operation_date) "
        "SELECT n, n, 1 + n %% 5, DATE '2026-01-01' + n %% 90 FROM generate_series(%s::int, %s::int) AS n",
        (first, first + 99),
    )
