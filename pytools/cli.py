"""`python -m pytools`: migrate, run, schedule and inspect the pipeline.

Every option can also come from an environment variable, named in --help.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import psycopg

from pytools import cron, migrations, report, runs
from pytools.config import resolve_database_url
from pytools.db import database_error
from pytools.errors import ExitCode, UserError

EXIT_CODES = """exit codes:
  0  success (for run-now: the run succeeded or was skipped because another run was active)
  1  run-now: the run failed (see `failures`)
  2  usage error: bad option, bad URL or cron expression, no database given
  3  the database cannot be reached (server down, wrong host, authentication failed)
  4  the pipeline schema is not migrated: run `python -m pytools migrate`
  5  pg_cron is missing (not installed, not preloaded, or extension not created)
  6  the database refused an operation (message says which)"""


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _limit(text: str) -> int:
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (from --limit or PIPELINE_LIMIT)") from None


def build_parser() -> Parser:
    common = Parser(add_help=False)
    common.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL URL of the pipeline's database (env DATABASE_URL, else DATABASE_URL in ./.env)",
    )
    output = Parser(add_help=False)
    output.add_argument(
        "--format",
        choices=report.FORMATS,
        default=_env("PIPELINE_FORMAT", "table"),
        help="output format (env PIPELINE_FORMAT; default table)",
    )
    job = Parser(add_help=False)
    job.add_argument(
        "--job-name",
        default=_env("PIPELINE_JOB_NAME"),
        help="pg_cron job name (env PIPELINE_JOB_NAME; default patient-journey-pipeline@<dbname>)",
    )

    parser = Parser(
        prog="python -m pytools",
        description="Run and manage the in-database patient-journey pipeline.\n\n"
        "The database comes from --database-url, else DATABASE_URL in the environment,\n"
        "else DATABASE_URL in a .env file in the working directory.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    sub.add_parser("migrate", parents=[common], help="apply pending migrations, then (re)create the routines")
    p = sub.add_parser(
        "run-now", parents=[common, output], help="run the pipeline once and print its summary"
    )
    p.add_argument(
        "--full", action="store_true", help="recompute every pair, not only those the queued changes touched"
    )
    p = sub.add_parser("schedule", parents=[common, output, job], help="create or update the pg_cron job")
    p.add_argument(
        "--cron",
        default=_env("PIPELINE_CRON", cron.DEFAULT_CRON),
        help="cron expression (env PIPELINE_CRON; default hourly, '0 * * * *')",
    )
    p.add_argument(
        "--run-as",
        metavar="ROLE",
        default=_env("PIPELINE_RUN_AS"),
        help="role the job runs as: one that may run the pipeline, never a superuser (env PIPELINE_RUN_AS; "
        f"default {cron.RUNNER_ROLE} if it exists, else the connecting role if it is not a superuser)",
    )
    sub.add_parser("unschedule", parents=[common, job], help="remove the pg_cron job")
    p = sub.add_parser(
        "status", parents=[common, output, job], help="the job, its executions and the last runs"
    )
    p.add_argument(
        "--limit",
        type=_limit,
        default=_env("PIPELINE_LIMIT", "5"),  # argparse converts (and checks) string defaults
        help="rows of history to show (env PIPELINE_LIMIT; default 5)",
    )
    p = sub.add_parser("failures", parents=[common, output], help="recent failures")
    p.add_argument("--run-id", type=_positive_int, help="failures of this run")
    p.add_argument("--all", action="store_true", help="every retained failure, not only the latest run's")
    p.add_argument(
        "--limit",
        type=_limit,
        default=_env("PIPELINE_LIMIT", "50"),
        help="at most this many rows (env PIPELINE_LIMIT; default 50)",
    )
    p = sub.add_parser(
        "generate",
        parents=[common],
        help="fill the app's source tables with N realistic patient journeys (test databases only)",
    )
    p.add_argument("--journeys", type=_positive_int, required=True, help="how many patient journeys")
    p.add_argument(
        "--force", action="store_true", help="replace source tables that already hold patient journeys"
    )
    p = sub.add_parser(
        "demo", help="start a throwaway local cluster in .pgdata/ with sample data and run once"
    )
    p.add_argument("--stop", action="store_true", help="stop the demo cluster")
    return parser


def _print(rows: Sequence[dict[str, Any]], fmt: str) -> None:
    print(report.render(rows, fmt))


def _cmd_migrate(args: argparse.Namespace) -> int:
    url = resolve_database_url(args.database_url)
    result = migrations.migrate(url)
    applied = ", ".join(result.applied) or "none pending"
    print(f"migrations applied: {applied}; routines (re)created: {result.routines}")
    for table, problem in result.unwatched:
        print(f"warning: change capture does not watch {table}: {problem}; runs will be full runs")
    notes: dict[str, list[str]] = {}  # the same note for several tables: said once
    for table, note in result.capture_notes:
        notes.setdefault(note, []).append(table)
    for note, tables in notes.items():
        print(f"note: change capture on {', '.join(tables)}: {note}")
    for table in result.unreadable:
        print(
            f"warning: {result.role} may not read {table}: runs fail until a DBA runs "
            f"GRANT SELECT ON {table} TO {result.role}"
        )
    for role, granted, access in result.access:
        if granted:
            print(f"access: {role} {access}")
        else:
            print(f"note: role {role} does not exist; create it for a role that {access} (README, Roles)")
    return ExitCode.OK


def _cmd_run_now(args: argparse.Namespace) -> int:
    url = resolve_database_url(args.database_url)
    try:
        run = runs.run_now(url, full=args.full)
    except runs.RunFailed as failed:
        if failed.run is not None:
            _print([failed.run], args.format)
        print(f"error: {failed}; see `python -m pytools failures`", file=sys.stderr)
        return ExitCode.RUN_FAILED
    _print([run], args.format)
    return ExitCode.OK


def _job_name(args: argparse.Namespace, url: str) -> str:
    return str(args.job_name or cron.default_job_name(url))


def _cmd_schedule(args: argparse.Namespace) -> int:
    url = resolve_database_url(args.database_url)
    job, run_as = cron.schedule_as(url, args.cron, _job_name(args, url), args.run_as)
    _print([vars(job)], args.format)
    if args.format == "table":  # json and csv carry it in the username field
        print(f"the job runs as role {job.username} ({run_as.why})")
    return ExitCode.OK


def _cmd_unschedule(args: argparse.Namespace) -> int:
    url = resolve_database_url(args.database_url)
    name = _job_name(args, url)
    if cron.unschedule(url, name):
        print(f"removed pg_cron job {name!r}")
    else:
        print(f"no pg_cron job named {name!r}; nothing to remove")
    return ExitCode.OK


def _cmd_status(args: argparse.Namespace) -> int:
    url = resolve_database_url(args.database_url)
    last_runs = runs.recent_runs(url, args.limit)
    job, executions = cron.job_history(url, _job_name(args, url), args.limit)
    if args.format == "json":
        print(
            report.to_json({"job": vars(job) if job else None, "executions": executions, "runs": last_runs})
        )
        return ExitCode.OK
    if args.format == "csv":
        _print(last_runs, "csv")
        return ExitCode.OK
    print("pg_cron job:")
    print(report.render([vars(job)], "table") if job else "(not scheduled: run `schedule`)")
    print("\nlast executions (cron.job_run_details):")
    print(report.render(executions, "table"))
    print("\nlast runs (pipeline.pipeline_runs):")
    print(report.render(last_runs, "table"))
    return ExitCode.OK


def _cmd_failures(args: argparse.Namespace) -> int:
    url = resolve_database_url(args.database_url)
    rows = runs.failures(url, run_id=args.run_id, all_runs=args.all, limit=args.limit)
    _print(rows, args.format)
    return ExitCode.OK


def _cmd_generate(args: argparse.Namespace) -> int:
    from pytools import generate

    url = resolve_database_url(args.database_url)
    existing = generate.existing_patient_journeys(url)
    if existing and not args.force:
        raise UserError(
            f"public.patient_journey already holds {existing:,} rows and generate would empty it: "
            "pass --force if this is a test database",
            ExitCode.USAGE,
        )
    generate.generate(url, args.journeys)
    return ExitCode.OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from pytools import demo  # the cluster tooling is only needed here

    workdir = Path.cwd()
    return demo.stop_demo(workdir) if args.stop else demo.run_demo(workdir)


COMMANDS = {
    "migrate": _cmd_migrate,
    "run-now": _cmd_run_now,
    "schedule": _cmd_schedule,
    "unschedule": _cmd_unschedule,
    "status": _cmd_status,
    "failures": _cmd_failures,
    "generate": _cmd_generate,
    "demo": _cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "format", "table") not in report.FORMATS:  # argparse skips defaults
        parser.error(f"PIPELINE_FORMAT={args.format!r} is not one of {', '.join(report.FORMATS)}")
    try:
        return int(COMMANDS[args.command](args))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except psycopg.Error as exc:
        # e.g. no privilege on a pipeline table, or the connection lost mid-command
        failed = database_error(args.command, exc)
        print(f"error: {failed}", file=sys.stderr)
        return int(failed.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
