"""The pg_cron job that runs the pipeline: create or update it, remove it, read its history.

pg_cron lives in one database of the cluster (cron.database_name); the job is created there
with cron.schedule_in_database so that it runs in the pipeline's database, whatever that is.

pg_cron runs a job as the job's `username`. The job runs as a role that may only run the
pipeline (pipeline_runner by default), never as a superuser. pg_cron lets only a superuser
create a job for another role; any other role schedules the job for itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from pytools import cron_reach
from pytools.config import database_name, with_database
from pytools.db import Target, connect_dicts, database_error, using
from pytools.errors import ExitCode, UserError
from pytools.migrations import require_migrated

DEFAULT_CRON = "0 * * * *"
JOB_COMMAND = "CALL pipeline.run_patient_journey_pipeline('cron')"
RUNNER_ROLE = "pipeline_runner"
PROCEDURE = "pipeline.run_patient_journey_pipeline(text, boolean, bigint)"
CREATE_RUNNER = (
    f"CREATE ROLE {RUNNER_ROLE} LOGIN; then run `python -m pytools migrate`, which grants it the "
    "right to run the pipeline"
)


# pg_cron 1.4's schedule syntax (its src/entry.c, after Vixie cron): five fields, or a macro.
_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly", "@reboot")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (field name, lowest, highest, names of values from lowest on)
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_RANGE = re.compile(r"(\*|[0-9a-z]{1,3})(?:-([0-9a-z]{1,3}))?(?:/([0-9]{1,2}))?", re.IGNORECASE)
_SECONDS = re.compile(r"([1-9]|[1-5][0-9]) seconds?")
CRON_HELP = "five fields: minute hour day month weekday, e.g. '0 * * * *' for hourly; or @hourly, @daily"


def _cron_value(text: str, field: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if text.lower() in names:
        return low + names.index(text.lower())
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"{field} {text!r} is not a number from {low} to {high}")
    return int(text)


def _check_cron_field(text: str, field: str, low: int, high: int, names: tuple[str, ...]) -> None:
    for part in text.split(","):
        match = _RANGE.fullmatch(part)
        if not match:
            raise ValueError(f"{field} {part!r} is not a value, a range a-b, or * (with an optional /step)")
        first, last, step = match.groups()
        if first == "*":
            if last is not None:
                raise ValueError(f"{field} {part!r}: * cannot start a range")
        else:
            start = _cron_value(first, field, low, high, names)
            if last is None and step is not None:
                raise ValueError(f"{field} {part!r}: a /step needs * or a range before it")
            if last is not None and _cron_value(last, field, low, high, names) < start:
                raise ValueError(f"{field} {part!r}: the range ends before it starts")
        if step is not None and int(step) == 0:
            raise ValueError(f"{field} {part!r}: the step must be at least 1")


def check_cron(expression: str) -> str:
    """The expression, stripped, if pg_cron 1.4 reads it as a schedule; else a one-line usage error.

    pg_cron 1.4 ignores whatever follows its fifth field, so `0 0 * * *'; SELECT 1; --` would be
    stored as the job's schedule: nothing but the fields themselves passes here. The `N seconds`
    form of pg_cron 1.5 passes too; an older pg_cron refuses it itself.
    """
    text = expression.strip()
    try:
        if text in _MACROS or _SECONDS.fullmatch(text):  # pg_cron matches macros case-sensitively
            return text
        fields = text.split()
        if len(fields) != len(_FIELDS):
            raise ValueError(f"it has {len(fields)} field(s), not 5")
        for value, (field, low, high, names) in zip(fields, _FIELDS, strict=True):
            _check_cron_field(value, field, low, high, names)
    except ValueError as exc:
        raise UserError(
            f"invalid cron schedule {expression!r}: {exc} (use {CRON_HELP})", ExitCode.USAGE
        ) from None
    return " ".join(fields)


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
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(
            "SELECT setting FROM pg_settings WHERE name = 'cron.database_name' AND context = 'postmaster'"
        ).fetchone()
    if not row:
        # pg_cron shows its settings to superusers and pg_read_all_settings only; a placeholder
        # set by hand is visible to all, so a hidden one is the loaded library's.
        try:
            with conn.transaction():
                conn.execute("SELECT current_setting('cron.database_name', true)")
        except psycopg.errors.InsufficientPrivilege:
            raise UserError(
                "pg_cron's settings (which database it runs in) are hidden from this role: run this "
                "command as a superuser, or have one GRANT pg_read_all_settings TO this role",
                ExitCode.DATABASE_ERROR,
            ) from None
    if not row or not row[0]:
        raise UserError(
            "pg_cron is not loaded on this server: install postgresql-15-cron, add pg_cron to "
            "shared_preload_libraries in postgresql.conf and restart PostgreSQL",
            ExitCode.NO_PG_CRON,
        )
    return str(row[0])


@contextmanager
def cron_connection(url: str, conn: Target | None = None) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A connection to pg_cron's database, checked to hold the pg_cron extension.

    `conn`, a connection to the pipeline's database `url` (else one is opened), asks where
    pg_cron lives; it is that connection itself when pg_cron lives in the pipeline's database,
    else a second one to pg_cron's (cron.database_name), with the same credentials.
    """
    with using(conn if conn is not None else url) as target:
        cron_db = cron_database(target)
        if cron_db == target.info.dbname:
            _require_extension(target, cron_db)
            yield target
            return
    with connect_dicts(with_database(url, cron_db)) as cron_conn:
        _require_extension(cron_conn, cron_db)
        yield cron_conn


def _require_extension(conn: psycopg.Connection[Any], cron_db: str) -> None:
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_cron'").fetchone() is None:
        raise UserError(
            f"pg_cron is loaded but not created in database {cron_db!r}: "
            f"run CREATE EXTENSION pg_cron; there as a superuser",
            ExitCode.NO_PG_CRON,
        )


@dataclass(frozen=True)
class RunAs:
    """The role the job runs as, and why it was chosen."""

    role: str
    why: str


def _jobs_named(conn: psycopg.Connection[dict[str, Any]], job_name: str) -> list[Job]:
    """Jobs of that name (pg_cron keys jobs by name and user); cron.job shows a non-superuser only its own."""
    rows = conn.execute(
        "SELECT jobid, jobname, schedule, command, database, username, active "
        "FROM cron.job WHERE jobname = %s ORDER BY jobid DESC",
        (job_name,),
    ).fetchall()
    return [Job(**row) for row in rows]


def find_job(conn: psycopg.Connection[dict[str, Any]], job_name: str) -> Job | None:
    jobs = _jobs_named(conn, job_name)
    return jobs[0] if jobs else None


def choose_run_as(conn: psycopg.Connection[Any], requested: str | None) -> RunAs:
    """The role the job will run as, checked; a one-line error when there is none fit for it.

    Asked for (--run-as), else pipeline_runner if it exists, else the connecting role unless
    it is a superuser. Refused: a superuser, a role that cannot log in (pg_cron connects as
    it) or may not run the pipeline, and, when connected as a non-superuser, another role.
    """
    with conn.cursor(row_factory=tuple_row) as target:
        return _choose_run_as(target, requested)


def _choose_run_as(target: psycopg.Cursor[tuple[Any, ...]], requested: str | None) -> RunAs:
    me, me_super = target.execute(
        "SELECT current_user::text, rolsuper FROM pg_roles WHERE rolname = current_user"
    ).fetchone() or ("", False)
    if requested:
        choice = RunAs(requested, "asked for with --run-as or PIPELINE_RUN_AS")
    elif target.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (RUNNER_ROLE,)).fetchone():
        choice = RunAs(RUNNER_ROLE, f"the default: role {RUNNER_ROLE} exists")
    elif not me_super:
        choice = RunAs(str(me), f"the connecting role: there is no role {RUNNER_ROLE}")
    else:
        raise UserError(
            f"no role to run the job as: there is no role {RUNNER_ROLE} and the connecting role "
            f"{me} is a superuser, which the job must not run as; create it: {CREATE_RUNNER} "
            "(or pass --run-as ROLE)",
            ExitCode.USAGE,
        )
    row = target.execute(
        "SELECT rolsuper, rolcanlogin, has_function_privilege(oid, %s, 'EXECUTE') "
        "FROM pg_roles WHERE rolname = %s",
        (PROCEDURE, choice.role),
    ).fetchone()
    if row is None:
        raise UserError(
            f"role {choice.role!r} ({choice.why}) does not exist: pass an existing role to --run-as",
            ExitCode.USAGE,
        )
    is_super, can_login, may_run = row
    if is_super:
        raise UserError(
            f"refusing to schedule the job as {choice.role!r}, a superuser: the job runs as a role that "
            f"may only run the pipeline; pass --run-as {RUNNER_ROLE} after {CREATE_RUNNER}",
            ExitCode.USAGE,
        )
    if not can_login:
        raise UserError(
            f"role {choice.role!r} cannot log in, and pg_cron connects as the job's role: "
            f"ALTER ROLE {choice.role} LOGIN, or pass another role to --run-as",
            ExitCode.USAGE,
        )
    if not may_run:
        raise UserError(
            f"role {choice.role!r} may not run the pipeline (no EXECUTE on {PROCEDURE}): run "
            f"`python -m pytools migrate` once role {RUNNER_ROLE} exists, or GRANT {RUNNER_ROLE} TO "
            f"{choice.role}",
            ExitCode.USAGE,
        )
    if choice.role != me and not me_super:
        raise UserError(
            f"pg_cron lets only a superuser schedule a job that runs as another role: connect as "
            f"{choice.role!r} to schedule it, or as a superuser",
            ExitCode.USAGE,
        )
    return choice


def schedule(url: str, cron_expr: str, job_name: str, run_as: str | None = None) -> Job:
    """Create the job, or update its schedule if it exists; safe to repeat."""
    return schedule_as(url, cron_expr, job_name, run_as)[0]


def schedule_as(
    url: str, cron_expr: str, job_name: str, run_as: str | None = None
) -> tuple[Job, RunAs, cron_reach.Finding | None]:
    """Create or update the job, running as `run_as` or the role choose_run_as picks; and whether
    pg_cron will be able to connect as that role (cron_reach: a warning or a note, None if so).

    One connection to the pipeline's database, and a second to pg_cron's only when pg_cron
    lives in another database (cron.database_name).
    """
    cron_expr = check_cron(cron_expr)
    dbname = database_name(url)
    with using(url) as target, cron_connection(url, target) as conn:
        require_migrated(target)  # else the job would call a procedure that does not exist
        choice = choose_run_as(target, run_as)
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        try:
            if superuser and superuser["rolsuper"]:
                # One job per name: a job of that name left from another role (pg_cron keys
                # jobs by name and user) would run too.
                for old in _jobs_named(conn, job_name):
                    if old.username != choice.role:
                        conn.execute("SELECT cron.unschedule(%s::bigint)", (old.jobid,))
                username: str | None = choice.role
            else:
                username = None  # pg_cron: only a superuser may name the user, even itself
            conn.execute(
                "SELECT cron.schedule_in_database(%s, %s, %s, %s, %s)",
                (job_name, cron_expr, JOB_COMMAND, dbname, username),
            )
        except psycopg.errors.InvalidParameterValue as exc:
            raise UserError(
                f"invalid cron schedule {cron_expr!r}: {exc.diag.message_primary} (use {CRON_HELP})",
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
        reach = cron_reach.check(target, job.username, job.database)
    return job, choice, reach


def unschedule(url: str, job_name: str) -> bool:
    """Remove the job (whichever role it runs as); False when there was none (nothing to do)."""
    with cron_connection(url) as conn:  # pg_cron's database; the pipeline's is asked where that is
        jobs = _jobs_named(conn, job_name)
        if not jobs:
            return False
        try:
            for job in jobs:
                # by id: cron.unschedule(name) looks only at the caller's own jobs
                conn.execute("SELECT cron.unschedule(%s::bigint)", (job.jobid,))
        except psycopg.Error as exc:
            raise database_error("removing the pg_cron job", exc) from None
    return True


def job_history(
    url: str, job_name: str, limit: int, *, conn: Target | None = None
) -> tuple[Job | None, list[dict[str, Any]]]:
    """The job and its latest executions from cron.job_run_details, newest first; `conn`, an
    open connection to the pipeline's database `url`, is used rather than a new one."""
    with cron_connection(url, conn) as conn:
        job = find_job(conn, job_name)
        if job is None:
            return None, []
        runs = conn.execute(
            "SELECT runid, status, start_time, end_time, return_message "
            "FROM cron.job_run_details WHERE jobid = %s ORDER BY runid DESC LIMIT %s",
            (job.jobid, limit),
        ).fetchall()
    return job, runs
