"""The pg_cron job that runs the pipeline: create or update it, remove it, read its history.

pg_cron lives in one database of the cluster (cron.database_name); the job is created there
with cron.schedule_in_database so that it runs in the pipeline's database, whatever that is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from pytools.config import database_name, with_database
from pytools.db import connect, connect_dicts, database_error
from pytools.errors import ExitCode, UserError
from pytools.migrations import require_migrated

DEFAULT_CRON = "0 * * * *"
JOB_COMMAND = "CALL pipeline.run_patient_journey_pipeline('cron')"


def default_job_name(url: str) -> str:
    """One job per pipeline database, so several databases on one cluster do not collide."""
    return f"patient-journey-pipeline@{database_name(url)}"


@dataclass(frozen=True)
class Job:
    jobid: int
    jobname: str
    schedule: str
    command: str
    database: str
    username: str
    active: bool


def cron_database(conn: psycopg.Connection[Any]) -> str:
    """The database pg_cron runs in, or a one-line error saying how to set pg_cron up."""
    # Only a loaded pg_cron defines the setting at postmaster level; a value set by hand
    # (postgresql.conf, PGOPTIONS) without the library is a mere placeholder.
    row = conn.execute(
        "SELECT setting FROM pg_settings WHERE name = 'cron.database_name' AND context = 'postmaster'"
    ).fetchone()
    if not row or not row[0]:
        raise UserError(
            "pg_cron is not loaded on this server: install postgresql-15-cron, add pg_cron to "
            "shared_preload_libraries in postgresql.conf and restart PostgreSQL",
            ExitCode.NO_PG_CRON,
        )
    return str(row[0])


@contextmanager
def cron_connection(url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A connection to pg_cron's database, checked to hold the pg_cron extension."""
    with connect(url) as conn:
        cron_db = cron_database(conn)
    with connect_dicts(with_database(url, cron_db)) as cron_conn:
        row = cron_conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_cron'").fetchone()
        if row is None:
            raise UserError(
                f"pg_cron is loaded but not created in database {cron_db!r}: "
                f"run CREATE EXTENSION pg_cron; there as a superuser",
                ExitCode.NO_PG_CRON,
            )
        yield cron_conn


def find_job(conn: psycopg.Connection[dict[str, Any]], job_name: str) -> Job | None:
    row = conn.execute(
        "SELECT jobid, jobname, schedule, command, database, username, active "
        "FROM cron.job WHERE jobname = %s",
        (job_name,),
    ).fetchone()
    return Job(**row) if row else None


def schedule(url: str, cron_expr: str, job_name: str) -> Job:
    """Create the job, or update its schedule if it exists; safe to repeat."""
    dbname = database_name(url)
    with cron_connection(url) as conn:
        with connect(url) as target:
            require_migrated(target)  # else the job would call a procedure that does not exist
        try:
            conn.execute(
                "SELECT cron.schedule_in_database(%s, %s, %s, %s)",
                (job_name, cron_expr, JOB_COMMAND, dbname),
            )
        except psycopg.errors.InvalidParameterValue as exc:
            raise UserError(
                f"invalid cron schedule {cron_expr!r}: {exc.diag.message_primary} "
                "(use five fields, e.g. '0 * * * *' for hourly)",
                ExitCode.USAGE,
            ) from None
        except psycopg.Error as exc:
            raise database_error("scheduling the pg_cron job", exc) from None
        job = find_job(conn, job_name)
    if job is None:  # e.g. row-level security on cron.job hides jobs of other users
        raise UserError(
            f"pg_cron accepted job {job_name!r} but cron.job does not show it to this user",
            ExitCode.DATABASE_ERROR,
        )
    return job


def unschedule(url: str, job_name: str) -> bool:
    """Remove the job; False when there was none (nothing to do)."""
    with cron_connection(url) as conn:
        if find_job(conn, job_name) is None:
            return False
        try:
            conn.execute("SELECT cron.unschedule(%s)", (job_name,))
        except psycopg.Error as exc:
            raise database_error("removing the pg_cron job", exc) from None
    return True


def job_history(url: str, job_name: str, limit: int) -> tuple[Job | None, list[dict[str, Any]]]:
    """The job and its latest executions from cron.job_run_details, newest first."""
    with cron_connection(url) as conn:
        job = find_job(conn, job_name)
        if job is None:
            return None, []
        runs = conn.execute(
            "SELECT runid, status, start_time, end_time, return_message "
            "FROM cron.job_run_details WHERE jobid = %s ORDER BY runid DESC LIMIT %s",
            (job.jobid, limit),
        ).fetchall()
    return job, runs
