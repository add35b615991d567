"""`python -m pytools`: migrate, run, schedule and inspect the pipeline.

Every option can also come from an environment variable, named in --help.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import psycopg

from pytools import adherence, cron, demo, failure_log, guard, migrations, probes, report, runs
from pytools.config import hide, parse_url, resolve_database_url, secrets_of
from pytools.db import connect_dicts, database_error
from pytools.errors import ExitCode, UserError
from pytools.text import escape_controls

EXIT_CODES = """exit codes:
  0  success (for run-now: the run succeeded or was skipped because another run was active)
  1  run-now: the run failed (see `failures`)
  2  usage error: bad option, bad URL or cron expression, no database given
  3  the database cannot be reached (server down, wrong host, authentication failed)
  4  the pipeline schema is not migrated: run `python -m pytools migrate`
  5  pg_cron is missing (not installed, not preloaded, or extension not created)
  6  the database refused an operation (message says which; for a missing privilege, the GRANT)"""

OWNER_ROLE = "pipeline_owner"
DEMO_PORT = demo.DEFAULT_PORT


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line, without the arguments that may hold
    a password (a URL passed without --database-url is quoted by argparse otherwise)."""

    hidden: Sequence[str] = ()
    probe = False  # main: the command is `check`, whose usage errors follow the plugin conventions
    commands: dict[str, Parser]  # build_parser: each command's own parser

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = {}

    def error(self, message: str) -> NoReturn:
        for argument in sorted(self.hidden, key=len, reverse=True):
            message = message.replace(argument, "(a connection string, not shown)")
        if Parser.probe:  # Nagios plugin conventions: UNKNOWN, exit 3, one line on stdout
            print(probes.unknown(f"usage: {message} (see check --help)").line())
            self.exit(probes.UNKNOWN)
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {escape_controls(message)} (see --help)\n")


def _may_hold_password(argument: str) -> bool:
    return "://" in argument or "password" in argument.lower() or "@" in argument


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1 to 65535)")
    return int(text)


@dataclass(frozen=True)
class FromEnv:
    """An option's value as its environment variable gave it, not yet checked: main checks it
    with the option's own type and choices once the command is known (an option of another
    command is never checked)."""

    variable: str
    text: str
    convert: Callable[[str], Any]
    choices: Sequence[Any] | None

    def value(self) -> Any:
        try:
            value = self.convert(self.text)
        except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
            raise ValueError(f"environment variable {self.variable}: {exc}") from None
        if self.choices is not None and value not in self.choices:
            raise ValueError(
                f"environment variable {self.variable}: {self.text!r} is not one of "
                f"{', '.join(map(str, self.choices))}"
            )
        return value


def add_option(
    parser: argparse.ArgumentParser,
    flag: str,
    *,
    env: str,
    help: str,
    default: Any = None,
    shown_default: str | None = None,
    type: Callable[[str], Any] = str,
    choices: Sequence[Any] | None = None,
    **kwargs: Any,
) -> None:
    """An option whose value may also come from the environment variable `env`, declared here
    only: the help names the variable and the default, and the variable's value is held to the
    same `type` and `choices` as the flag's (see FromEnv; a bad one is a usage error naming it)."""
    text = os.environ.get(env)
    fallback: Any = default if text is None else FromEnv(env, text, type, choices)
    shown = shown_default if shown_default is not None else default
    parser.add_argument(
        flag,
        default=fallback,
        type=type,
        choices=choices,
        help=f"{help} (env {env}" + ("" if shown is None else f"; default {shown}") + ")",
        **kwargs,
    )


def check_env_values(parser: Parser, args: argparse.Namespace) -> None:
    """Turn the options that came from the environment into values, or stop with a usage error
    naming the variable, from the command's own parser."""
    command = parser.commands.get(getattr(args, "command", ""), parser)
    for name, given in vars(args).items():
        if isinstance(given, FromEnv):
            try:
                setattr(args, name, given.value())
            except ValueError as exc:
                command.error(str(exc))


# What each command's --help says first: what it does, the role it is meant to run as, and an
# example (README "Roles" creates those roles; "The CLI" lists the commands).
ABOUT: dict[str, tuple[str, str, str]] = {
    "migrate": (
        "Applies the pending migrations, then (re)creates every routine and grants pipeline_runner and "
        "pipeline_reader their rights. Safe to repeat.",
        f'{OWNER_ROLE}, with the grants README "Roles" lists (not a superuser: all would be theirs)',
        "DATABASE_URL=postgresql://pipeline_owner@dbhost/clinic python -m pytools migrate",
    ),
    "run-now": (
        "Runs the pipeline once, now, and prints the run it recorded; exits 1 when the run failed.",
        f"{cron.RUNNER_ROLE} (or a member of it)",
        "python -m pytools run-now --full",
    ),
    "schedule": (
        "Creates or updates the pg_cron job that runs the pipeline, in pg_cron's database, to run in "
        "this one, and says which role the job runs as.",
        "a superuser, or the job's own role given pg_cron's rights (README \"Roles\")",
        "python -m pytools schedule --cron '*/15 * * * *'",
    ),
    "unschedule": (
        "Removes the pg_cron job, saying so when there was none.",
        "the role that scheduled it, or a superuser",
        "python -m pytools unschedule",
    ),
    "guard": (
        "Installs (or re-creates) the event trigger pipeline_source_guard, which refuses an index, "
        "statistics object, constraint, partition key or child table on a source table that would run "
        "code (a function, operator, domain or range type) of a role that is not a superuser: a run's "
        "lock on the tables does not keep those out; and pipeline_source_guard_start, which makes "
        "CREATE INDEX CONCURRENTLY wait for a run's reads.",
        "a superuser (only one may create an event trigger), after migrate",
        "DATABASE_URL=postgresql://postgres@dbhost/clinic python -m pytools guard",
    ),
    "status": (
        "Shows the pg_cron job, its last executions (cron.job_run_details) and the last runs; a role "
        "that may not read pg_cron's job sees the runs and one line saying why.",
        "a member of pipeline_reader (a superuser also sees the job)",
        "python -m pytools status --limit 10 --format json",
    ),
    "failures": (
        "Lists what is failing now (the failures of the latest finished run), of one run, or of every "
        "retained run, with the pairs each holds back; --log FILE appends the lines FILE lacks, as the "
        "runs write them to the server log.",
        "a member of pipeline_reader",
        "python -m pytools failures --log failures.log",
    ),
    "check": (
        "A monitoring probe with the conventions of Nagios / Icinga plugins: one line "
        "'PIPELINE OK|WARNING|CRITICAL|UNKNOWN - summary | perfdata' and exit 0, 1, 2 or 3 (a usage "
        "error too is UNKNOWN, exit 3).",
        "a member of pipeline_reader",
        "python -m pytools check --max-age '2 hours' --warn-held-back 10",
    ),
    "metrics": (
        "Prints the pipeline's state in the Prometheus text exposition format, for node_exporter's "
        "textfile collector.",
        "a member of pipeline_reader",
        "python -m pytools metrics > /var/lib/node_exporter/pipeline.prom.tmp && "
        "mv /var/lib/node_exporter/pipeline.prom.tmp /var/lib/node_exporter/pipeline.prom",
    ),
    "report": (
        'Counts and shares of each adherence status (pipeline.adherence, README "Adherence"), held-back '
        "pairs included, per milestone, per activity, or per week from the milestone "
        "(floor(schedule_start_offset_days / 7), no offset in its own group); --html writes a page "
        "with charts.",
        "a member of pipeline_reader",
        "python -m pytools report --as-of 2026-06-01 --by week",
    ),
    "generate": (
        "Erases every row of the app's ten source tables (public.patient, journey, schedule, activity, "
        "journey_activity, patient_journey, survey, survey_result, device, step_result), then fills them "
        "with N realistic patient journeys. For test databases only: it refuses while any of those "
        "tables holds a row, unless --force.",
        "the owner of the app's source tables, on a test database",
        "python -m pytools generate --journeys 1000",
    ),
    "demo": (
        "Starts a throwaway local PostgreSQL cluster in .pgdata/ with sample data, installs the "
        "pipeline, schedules the job and runs it once; --stop stops it.",
        "any local account (root runs the server as the postgres user); no database role",
        "make demo",
    ),
}


def _describe(parser: Parser, command: str) -> None:
    summary, role, example = ABOUT[command]
    lines = [textwrap.fill(summary, 79), "", textwrap.fill(f"Run as: {role}.", 79), f"Example: {example}"]
    parser.description = "\n".join(lines)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def build_parser() -> Parser:
    common = Parser(add_help=False)
    add_option(
        common,
        "--database-url",
        env="DATABASE_URL",
        shown_default="DATABASE_URL in ./.env",
        help="PostgreSQL URL of the pipeline's database",
    )
    output = Parser(add_help=False)
    add_option(
        output,
        "--format",
        env="PIPELINE_FORMAT",
        choices=report.FORMATS,
        default="table",
        help="output format",
    )
    job = Parser(add_help=False)
    add_option(
        job,
        "--job-name",
        env="PIPELINE_JOB_NAME",
        shown_default="patient-journey-pipeline@<dbname>",
        help="pg_cron job name",
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
    add_option(
        p,
        "--cron",
        env="PIPELINE_CRON",
        default=cron.DEFAULT_CRON,
        shown_default=f"hourly, '{cron.DEFAULT_CRON}'",
        help="cron expression",
    )
    add_option(
        p,
        "--run-as",
        env="PIPELINE_RUN_AS",
        metavar="ROLE",
        shown_default=f"{cron.RUNNER_ROLE} if it exists, else the connecting role if it is not a superuser",
        help="role the job runs as: one that may run the pipeline, never a superuser",
    )
    sub.add_parser("unschedule", parents=[common, job], help="remove the pg_cron job")
    sub.add_parser(
        "guard",
        parents=[common],
        help="as a superuser: install the event trigger that refuses DDL a run could not read safely",
    )
    p = sub.add_parser(
        "status", parents=[common, output, job], help="the job, its executions and the last runs"
    )
    add_option(
        p, "--limit", env="PIPELINE_LIMIT", type=_positive_int, default=5, help="rows of history to show"
    )
    p = sub.add_parser("failures", parents=[common, output], help="recent failures")
    p.add_argument("--run-id", type=_positive_int, help="failures of this run")
    p.add_argument("--all", action="store_true", help="every retained failure, not only the latest run's")
    p.add_argument(
        "--log",
        metavar="FILE",
        type=Path,
        help="append to FILE, one line each, every retained failure it lacks (safe to repeat)",
    )
    add_option(
        p, "--limit", env="PIPELINE_LIMIT", type=_positive_int, default=50, help="at most this many rows"
    )
    p = sub.add_parser(
        "report",
        parents=[common, output],
        help="adherence: how many pairs have each status, per milestone, activity or week",
    )
    add_option(
        p,
        "--as-of",
        env="PIPELINE_AS_OF",
        type=adherence.as_of_date,
        metavar="DATE",
        shown_default="today in pipeline.settings.report_time_zone",
        help="judge the windows as of this date (YYYY-MM-DD)",
    )
    add_option(
        p, "--by", env="PIPELINE_REPORT_BY", choices=adherence.BY, default="milestone", help="group by"
    )
    p.add_argument(
        "--html",
        metavar="FILE",
        type=Path,
        help="write instead one self-contained HTML page (every grouping, a chart per milestone; needs "
        "the report extra: pip install 'patient-journey-pipeline[report]')",
    )
    p = sub.add_parser(
        "generate",
        parents=[common],
        help="ERASE the app's source tables, then fill them with N realistic patient journeys "
        "(test databases only)",
    )
    p.add_argument("--journeys", type=_positive_int, required=True, help="how many patient journeys")
    p.add_argument("--force", action="store_true", help="erase the source tables even if they hold rows")
    p = sub.add_parser(
        "demo", help="start a throwaway local cluster in .pgdata/ with sample data and run once"
    )
    p.add_argument("--stop", action="store_true", help="stop the demo cluster")
    add_option(
        p, "--port", env="PIPELINE_DEMO_PORT", type=_port, default=DEMO_PORT, help="the demo cluster's port"
    )
    _add_probes(sub, common, job)
    parser.commands = dict(sub.choices)
    for command, command_parser in parser.commands.items():
        _describe(command_parser, command)
    return parser


def _duration(text: str) -> float:
    try:
        return probes.parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _percent(text: str) -> float:
    try:
        return probes.parse_percent(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_probes(sub: Any, common: Parser, job: Parser) -> None:
    p = sub.add_parser(
        "check",
        parents=[common, job],
        help="a Nagios / Icinga probe: one status line with performance data, exit 0 OK, 1 WARNING, "
        "2 CRITICAL, 3 UNKNOWN (run as a pipeline_reader member)",
    )
    add_option(
        p,
        "--max-age",
        env="PIPELINE_MAX_AGE",
        type=_duration,
        default=7200.0,
        shown_default="2 hours",
        metavar="INTERVAL",
        help="CRITICAL when no run succeeded within this long ('2 hours', '90min', '7200s', '1d')",
    )
    add_option(
        p,
        "--warn-held-back",
        env="PIPELINE_WARN_HELD_BACK",
        type=_percent,
        default=10.0,
        shown_default="10",
        metavar="PCT",
        help="WARNING when the latest succeeded run held back more than this percentage of pairs",
    )
    p.add_argument("--no-job", action="store_true", help="expect no pg_cron job (runs started another way)")
    p = sub.add_parser(
        "metrics",
        parents=[common, job],
        help="the pipeline's state in the Prometheus text format, for node_exporter's textfile "
        "collector (run as a pipeline_reader member)",
    )
    p.add_argument("--no-job", action="store_true", help="expect no pg_cron job: leave out its metrics")


def _print(rows: Sequence[dict[str, Any]], fmt: str) -> None:
    print(report.render(rows, fmt, terminal=sys.stdout.isatty()))


def _say(line: str, *, err: bool = False) -> None:
    """A line that quotes the database (role, table or job names): controls escaped; on stderr if `err`."""
    print(escape_controls(line), file=sys.stderr if err else sys.stdout)


def _capture_warnings(role: str, unwatched: list[tuple[str, str]]) -> list[str]:
    """One line per kind of problem change capture has, naming all its tables, saying only what is true."""
    groups: dict[str, list[str]] = {}
    others: list[str] = []
    for table, problem in unwatched:
        for kind in ("table does not exist", "no right to create triggers"):
            if problem.startswith(kind):
                groups.setdefault(kind, []).append(table)
                break
        else:
            others.append(f"warning: change capture on {table}: {problem}")
    lines = []
    if tables := ", ".join(groups.get("table does not exist", [])):
        lines.append(
            f"warning: change capture does not watch {tables}: they do not exist; "
            "runs stay full until they do and migrate runs again"
        )
    if tables := ", ".join(groups.get("no right to create triggers", [])):
        lines.append(
            f"warning: change capture does not watch {tables}: {role} may not create triggers on them; "
            f"runs stay full until a DBA runs GRANT TRIGGER ON {tables} TO {role} and migrate runs again"
        )
    return lines + others


def _cmd_migrate(args: argparse.Namespace) -> int:
    result = migrations.migrate(args.database_url)
    applied = ", ".join(result.applied) or "none pending"
    _say(f"migrations applied: {applied}; routines (re)created: {result.routines}")
    if result.superuser:
        _say(
            f"warning: {result.role} is a superuser, so the pipeline's objects belong to it and the run "
            f"steps run with a superuser's rights: install it as role {OWNER_ROLE} instead (README, Roles)"
        )
    for line in _capture_warnings(result.role, result.unwatched):
        _say(line)
    notes: dict[str, list[str]] = {}  # the same note for several tables: said once
    for table, note in result.capture_notes:
        notes.setdefault(note, []).append(table)
    for note, noted in notes.items():
        _say(f"note: change capture on {', '.join(noted)}: {note}")
    if tables := ", ".join(result.unreadable):
        _say(
            f"warning: {result.role} may not read {tables}: runs fail until a DBA runs "
            f"GRANT SELECT ON {tables} TO {result.role}"
        )
    for table, definition, purpose, replaces in result.missing_indexes:
        then = f"; then DROP INDEX CONCURRENTLY {replaces}, which it replaces" if replaces else ""
        _say(f"note: {table} lacks a recommended index ({purpose}): {definition}{then} (README, Installing)")
    for role, granted, access in result.access:
        if granted:
            _say(f"access: {role} {access}")
        else:
            _say(f"note: role {role} does not exist; create it for a role that {access} (README, Roles)")
    if not result.guarded:
        _say(
            f"note: event triggers {guard.EVENT_TRIGGER} and {guard.START_TRIGGER} are not both installed, "
            "so the source tables' owner "
            "could add an index, statistics object or child table while a run reads, whose functions "
            f"would run with {result.role}'s rights: a superuser runs `python -m pytools guard` "
            "(README, Trust boundary)"
        )
    return ExitCode.OK


def _cmd_run_now(args: argparse.Namespace) -> int:
    try:
        run = runs.run_now(args.database_url, full=args.full)
    except runs.RunFailed as failed:
        if failed.run is not None:
            _print([failed.run], args.format)
        if failed.failures_readable:
            where = "see `python -m pytools failures`"
        else:  # the runner: its run's error_message is what it may read; the failure rows need a reader
            run_id = f" --run-id {failed.run['run_id']}" if failed.run else ""
            where = (
                "its error_message (pipeline_runs) is above; its failure rows: "
                f"`python -m pytools failures{run_id}` as a member of pipeline_reader"
            )
        _error(f"{failed}; {where}", secrets_of(args.database_url))
        return ExitCode.RUN_FAILED
    _print([run], args.format)
    return ExitCode.OK


def _job_name(args: argparse.Namespace) -> str:
    return str(args.job_name or cron.default_job_name(args.database_url))


def _cmd_schedule(args: argparse.Namespace) -> int:
    job, run_as, reach = cron.schedule_as(args.database_url, args.cron, _job_name(args), args.run_as)
    _print([vars(job)], args.format)
    if args.format == "table":  # json and csv carry it in the username field
        _say(f"the job runs as role {job.username} ({run_as.why})")
    if reach is not None:  # json and csv: on stderr, so that stdout stays parseable and it is still seen
        _say(reach.line(), err=args.format != "table")
    return ExitCode.OK


def _cmd_unschedule(args: argparse.Namespace) -> int:
    name = _job_name(args)
    if cron.unschedule(args.database_url, name):
        _say(f"removed pg_cron job {name!r}")
    else:
        _say(f"no pg_cron job named {name!r}; nothing to remove")
    return ExitCode.OK


def _cmd_guard(args: argparse.Namespace) -> int:
    guard.install_guard(args.database_url)
    _say(
        f"installed event triggers {guard.EVENT_TRIGGER} and {guard.START_TRIGGER}: they refuse an index, "
        "statistics object, constraint, partition key or child table on a source table that would run code "
        "of a role that is not a superuser (README, Trust boundary)"
    )
    return ExitCode.OK


def _cmd_status(args: argparse.Namespace) -> int:
    hidden = None  # why the job is not shown, for a role that may read the runs but not pg_cron
    with connect_dicts(args.database_url) as conn:  # the runs and, where pg_cron lives here, the job
        last_runs = runs.recent_runs(conn, args.limit)
        role = str((conn.execute("SELECT current_user AS r").fetchone() or {"r": "?"})["r"])
        try:
            job, executions = cron.job_history(args.database_url, _job_name(args), args.limit, conn=conn)
        except (UserError, psycopg.errors.InsufficientPrivilege) as exc:
            if isinstance(exc, UserError) and exc.exit_code != ExitCode.DATABASE_ERROR:
                raise  # pg_cron missing, not merely hidden: that stays an error
            job, executions = None, []
            reason = str(exc) if isinstance(exc, UserError) else (exc.diag.message_primary or str(exc))
            hidden = f"not shown to role {role}: {reason}"
    if args.format == "json":
        shown = {"job": vars(job) if job else None, "executions": executions, "runs": last_runs}
        print(report.to_json({**shown, "job_not_shown": hidden}))
        return ExitCode.OK
    if args.format == "csv":  # one table: a `record` column says which each row is
        kinds = [("job", [vars(job)] if job else []), ("execution", executions), ("run", last_runs)]
        _print(report.records([*kinds, ("job_not_shown", [{"reason": hidden}] if hidden else [])]), "csv")
        return ExitCode.OK
    if hidden:
        _say(f"pg_cron job: {hidden}")
    else:
        print("pg_cron job:")
        print(report.render([vars(job)], "table") if job else "(not scheduled: run `schedule`)")
    print("\nlast executions (cron.job_run_details):")
    print(report.render(executions, "table"))
    print("\nlast runs (pipeline.pipeline_runs):")
    print(report.render(last_runs, "table"))
    return ExitCode.OK


def _cmd_failures(args: argparse.Namespace) -> int:
    if args.log is not None:
        if args.run_id is not None or args.all:
            raise UserError("--log writes every retained run's failures: leave out --run-id and --all")
        _say(failure_log.describe(failure_log.append_failure_log(args.database_url, args.log), args.log))
        return ExitCode.OK
    rows = runs.failures(args.database_url, run_id=args.run_id, all_runs=args.all, limit=args.limit)
    _print(rows, args.format)
    if len(rows) == args.limit and args.format == "table":
        total = runs.failures_total(args.database_url, run_id=args.run_id, all_runs=args.all)
        if total > len(rows):
            print(f"(the latest {len(rows)} of {total} failures: --limit {total} shows them all)")
    return ExitCode.OK


def _cmd_report(args: argparse.Namespace) -> int:
    if args.html is not None:
        day, pairs = adherence.html_report(args.database_url, args.as_of, args.html)
        _say(f"wrote {args.html}: adherence of {pairs:,} pairs as of {day.isoformat()}")
        return ExitCode.OK
    _print(adherence.adherence_report(args.database_url, args.as_of, args.by), args.format)
    return ExitCode.OK


def _cmd_check(args: argparse.Namespace) -> int:
    """Every outcome one line on stdout and an exit code from 0 to 3, never an error line."""
    try:
        args.database_url = resolve_database_url(args.database_url)
        args.resolved = True
        job_name = None if args.no_job else _job_name(args)
        facts = probes.gather(args.database_url, job_name)
        verdict = probes.evaluate(
            facts, max_age=args.max_age, warn_held_back=args.warn_held_back, job_name=job_name
        )
    except UserError as exc:
        verdict = probes.unknown(hide(str(exc), _secrets(args)))
    except psycopg.Error as exc:
        verdict = probes.unknown(hide(str(database_error("check", exc)), _secrets(args)))
    print(verdict.line())
    return verdict.state


def _cmd_metrics(args: argparse.Namespace) -> int:
    job_name = None if args.no_job else _job_name(args)
    facts = probes.gather(args.database_url, job_name)
    sys.stdout.write(probes.metrics_text(facts, job_expected=job_name is not None))
    return ExitCode.OK


def _cmd_generate(args: argparse.Namespace) -> int:
    from pytools import generate

    generate.generate(args.database_url, args.journeys, force=args.force)
    return ExitCode.OK


def _cmd_demo(args: argparse.Namespace) -> int:
    workdir = Path.cwd()
    return demo.stop_demo(workdir, args.port) if args.stop else demo.run_demo(workdir, args.port)


COMMANDS = {
    "migrate": _cmd_migrate,
    "run-now": _cmd_run_now,
    "schedule": _cmd_schedule,
    "unschedule": _cmd_unschedule,
    "guard": _cmd_guard,
    "status": _cmd_status,
    "failures": _cmd_failures,
    "report": _cmd_report,
    "generate": _cmd_generate,
    "demo": _cmd_demo,
    "check": _cmd_check,
    "metrics": _cmd_metrics,
}


# What gives a role the right a command needs, for a command refused for lack of privilege.
ACCESS_FIXES = {
    "run-now": f"GRANT {cron.RUNNER_ROLE} TO {{role}} (migrate grants {cron.RUNNER_ROLE} the right to "
    "run the pipeline)",
    "status": "GRANT pipeline_reader TO {role} (migrate grants pipeline_reader the right to read the runs)",
    "failures": "GRANT pipeline_reader TO {role} (migrate grants pipeline_reader the right to read failures)",
    "metrics": "GRANT pipeline_reader TO {role} (migrate grants pipeline_reader the right to read the runs)",
    "report": "GRANT pipeline_reader TO {role} (migrate grants pipeline_reader the right to read adherence)",
    "migrate": f'run migrate as {OWNER_ROLE}, with the grants README "Roles" lists',
    "generate": "run generate as the owner of the app's source tables, on a test database",
}


def _login_role(args: argparse.Namespace) -> str:
    """The role the command connected as (as libpq chooses it when the URL names none)."""
    try:
        params = parse_url(args.database_url if args.resolved else "")
    except UserError:
        return "<role>"
    try:
        return params.get("user") or os.environ.get("PGUSER") or getpass.getuser()
    except (OSError, KeyError):  # no login name to be found
        return "<role>"


def _privilege_error(args: argparse.Namespace, exc: psycopg.Error) -> UserError:
    """A command the database refused for lack of privilege: exit 6, with the grant that fixes it."""
    failed = database_error(args.command, exc)
    role = _login_role(args)
    fix = ACCESS_FIXES.get(args.command, "ask a DBA for the privilege named above")
    return UserError(
        f"{failed}: role {role} lacks a privilege; fix: {fix.format(role=role)}", failed.exit_code
    )


def _error(message: str, secrets: list[str]) -> None:
    """One line on stderr: the passwords the URL and PGPASSWORD carry replaced by ***, whatever
    quoted them (a driver, a server), and control characters escaped (a newline too)."""
    print(f"error: {escape_controls(hide(message, secrets))}", file=sys.stderr)


def _secrets(args: argparse.Namespace) -> list[str]:
    """What to hide: the URL's passwords once main resolved it; before (no URL, or one libpq
    cannot parse, none of which is ever printed), PGPASSWORD's only."""
    return secrets_of(getattr(args, "database_url", None) if args.resolved else None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    given = list(sys.argv[1:] if argv is None else argv)
    Parser.hidden = [a for a in given if _may_hold_password(a)]
    Parser.probe = next((a for a in given if not a.startswith("-")), None) == "check"
    args = parser.parse_args(argv)
    check_env_values(parser, args)
    args.resolved = False
    if args.command == "check":  # resolves its URL itself: every outcome is a status line
        return _cmd_check(args)
    try:
        if "database_url" in vars(args):  # every command but demo: resolved once, here
            args.database_url = resolve_database_url(args.database_url)
            args.resolved = True
        return int(COMMANDS[args.command](args))
    except UserError as exc:
        _error(str(exc), _secrets(args))
        return int(exc.exit_code)
    except psycopg.errors.InsufficientPrivilege as exc:
        refused = _privilege_error(args, exc)
        _error(str(refused), _secrets(args))
        return int(refused.exit_code)
    except psycopg.Error as exc:
        # e.g. no privilege on a pipeline table, or the connection lost mid-command
        failed = database_error(args.command, exc)
        _error(str(failed), _secrets(args))
        return int(failed.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
