"""What a monitor asks of the pipeline: `check` (a Nagios / Icinga plugin: one status line,
performance data, exit 0 to 3) and `metrics` (the Prometheus text exposition format), both
from the same facts, read as a pipeline_reader member may read them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from pytools import cron
from pytools.db import using
from pytools.errors import ExitCode, UserError
from pytools.migrations import require_migrated
from pytools.text import escape_controls

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
STATUSES = ("running", "succeeded", "failed", "skipped", "aborted")
REPEATED_SKIPS = 3  # the last this many runs all skipped: WARNING
# The live run a skipped run names (_begin_run: "another run held the pipeline: run N (...").
_HELD_BY = re.compile(r"another run held the pipeline: run ([0-9]+)")
_HISTORY = 200  # finished runs read to find how long skips have named the same run
_DURATION = re.compile(
    r"\s*([0-9]+(?:\.[0-9]+)?)\s*(s|secs?|seconds?|m|mins?|minutes?|h|hours?|d|days?)?\s*", re.IGNORECASE
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in '2 hours', '90min', '7200s', '1d' or '7200' (seconds); ValueError otherwise."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration such as '2 hours', '90min', '7200s' or '1d'")
    unit = (match.group(2) or "s").lower()
    seconds = float(match.group(1)) * _UNIT_SECONDS[unit[0]]
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return seconds


def parse_percent(text: str) -> float:
    """0 to 100, with or without a trailing %; ValueError otherwise."""
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise ValueError(f"{text!r} is not a percentage from 0 to 100") from None
    if not 0 <= value <= 100:
        raise ValueError(f"{text!r} is not a percentage from 0 to 100")
    return value


@dataclass
class JobFacts:
    """The pg_cron job as the connecting role may see it: `visible` False when it may not
    (then `why` says so), else `job` is None when there is none."""

    visible: bool
    job: cron.Job | None = None
    why: str = ""
    # pg_cron's latest execution of the job (status, return_message, end_epoch): a failed one
    # may leave no pipeline_runs row ("connection failed", "authentication failed")
    last_execution: dict[str, Any] | None = None


@dataclass
class Facts:
    now_epoch: float
    by_status: dict[str, int]
    last: dict[str, Any] | None  # the latest finished run that was not skipped
    last_success: dict[str, Any] | None
    recent: list[dict[str, Any]]  # finished runs, newest first (skipped ones included)
    window_rows: int
    job: JobFacts = field(default_factory=lambda: JobFacts(visible=False))

    @property
    def held_back_pct(self) -> float:
        held = int(self.last_success["rows_held_back"]) if self.last_success else 0
        total = self.window_rows + held
        return 100.0 * held / total if total else 0.0

    @property
    def success_age(self) -> float | None:
        if not self.last_success:
            return None
        return max(0.0, self.now_epoch - float(self.last_success["finished_epoch"]))

    def trailing_skips(self) -> list[dict[str, Any]]:
        """The skipped runs since the latest run that was not skipped, newest first."""
        skips = []
        for run in self.recent:
            if run["status"] != "skipped":
                break
            skips.append(run)
        return skips

    def skipped_behind(self) -> tuple[str, int, float] | None:
        """(the run the latest skips name, how many name it, seconds since the first of them)."""
        skips = self.trailing_skips()
        if not skips:
            return None
        match = _HELD_BY.match(skips[0]["error_message"] or "")
        if not match:
            return None
        same = [s for s in skips if (s["error_message"] or "").startswith(match.group(0) + " ")]
        return match.group(1), len(same), self.now_epoch - float(same[-1]["started_epoch"])


_RUN_FIELDS = (
    "run_id, status, error_message, rows_inserted, rows_updated, rows_held_back, failures, sla_breached, "
    "extract(epoch FROM started_at)::float8 AS started_epoch, "
    "extract(epoch FROM finished_at)::float8 AS finished_epoch, "
    "extract(epoch FROM finished_at - started_at)::float8 AS seconds"
)


def gather(url: str, job_name: str | None) -> Facts:
    """The facts both probes report; `job_name` None: no pg_cron job is expected."""
    with using(url) as conn:
        require_migrated(conn)
        with conn.transaction():  # one snapshot: the counts, the runs and now() agree
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            facts = _read_runs(conn)
        if job_name is not None:
            facts.job = _read_job(url, conn, job_name)
    return facts


def _read_runs(conn: psycopg.Connection[dict[str, Any]]) -> Facts:
    now = conn.execute("SELECT extract(epoch FROM now())::float8 AS t").fetchone()
    counts = conn.execute("SELECT status, count(*) AS n FROM pipeline.pipeline_runs GROUP BY status")
    by_status = dict.fromkeys(STATUSES, 0) | {r["status"]: int(r["n"]) for r in counts}
    finished = "FROM pipeline.pipeline_runs WHERE status <> 'running'"
    recent = conn.execute(
        f"SELECT {_RUN_FIELDS} {finished} ORDER BY run_id DESC LIMIT %s", (_HISTORY,)
    ).fetchall()
    last = conn.execute(
        f"SELECT {_RUN_FIELDS} {finished} AND status <> 'skipped' ORDER BY run_id DESC LIMIT 1"
    ).fetchone()
    last_success = conn.execute(
        f"SELECT {_RUN_FIELDS} {finished} AND status = 'succeeded' ORDER BY run_id DESC LIMIT 1"
    ).fetchone()
    # An exact count: about 0.2 s for 3.7 million rows, once a probe; reltuples may lag by a
    # whole autovacuum cycle and is -1 before the first ANALYZE.
    windows = conn.execute("SELECT count(*) AS n FROM pipeline.patient_journey_schedule_window").fetchone()
    return Facts(
        now_epoch=float(now["t"]) if now else 0.0,
        by_status=by_status,
        last=last,
        last_success=last_success,
        recent=recent,
        window_rows=int(windows["n"]) if windows else 0,
    )


def _read_job(url: str, conn: psycopg.Connection[dict[str, Any]], job_name: str) -> JobFacts:
    try:
        with cron.cron_connection(url, conn) as cron_conn:
            job = cron.find_job(cron_conn, job_name)
            if job is not None:
                last_execution = cron_conn.execute(
                    "SELECT status, return_message, extract(epoch FROM end_time)::float8 AS end_epoch "
                    "FROM cron.job_run_details WHERE jobid = %s AND status IN ('succeeded', 'failed') "
                    "ORDER BY runid DESC LIMIT 1",
                    (job.jobid,),
                ).fetchone()
                return JobFacts(visible=True, job=job, last_execution=last_execution)
            sees_all = cron_conn.execute(
                "SELECT rolsuper OR rolbypassrls AS sees FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
            if sees_all and sees_all["sees"]:
                return JobFacts(visible=True)
            return JobFacts(
                visible=False,
                why=f"cron.job shows role {cron_conn.info.user} only its own jobs, and no job "
                f"{job_name!r} of its own",
            )
    except UserError as exc:
        if exc.exit_code == ExitCode.NO_PG_CRON:
            return JobFacts(visible=True, why=str(exc))  # no pg_cron: certainly no job
        return JobFacts(visible=False, why=_first_clause(str(exc)))
    except psycopg.Error as exc:
        return JobFacts(visible=False, why=_first_clause(exc.diag.message_primary or str(exc)))


def _first_clause(message: str) -> str:
    return message.split(":")[0] if message.startswith("pg_cron's settings") else message


# --- check ------------------------------------------------------------------------------


@dataclass
class Verdict:
    state: int
    summary: str
    perfdata: str

    def line(self) -> str:
        data = f" | {self.perfdata}" if self.perfdata else ""
        return f"PIPELINE {STATES[self.state]} - {self.summary}{data}"


def _clean(text: str, limit: int = 120) -> str:
    """Database text fit for the one status line: no control, no `|` (perfdata follows it)."""
    one = escape_controls(text).replace("|", "/")
    return one if len(one) <= limit else one[: limit - 3] + "..."


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def evaluate(facts: Facts, *, max_age: float, warn_held_back: float, job_name: str | None) -> Verdict:
    critical: list[str] = []
    warning: list[str] = []
    notes: list[str] = []
    last, success = facts.last, facts.last_success
    if last and last["status"] != "succeeded":
        message = _clean(last["error_message"] or "no message")
        if (last["error_message"] or "").startswith("blocked:"):
            critical.append(f"pipeline blocked (run {last['run_id']}): {message}")
        else:
            critical.append(f"latest run {last['run_id']} {last['status']}: {message}")
    age = facts.success_age
    if age is None:
        critical.append("no run has succeeded yet")
    elif age > max_age:
        critical.append(f"no run succeeded within {_ago(max_age)} (last success {_ago(age)} ago)")
    behind = facts.skipped_behind()
    if behind and behind[1] >= 2 and behind[2] > max_age:
        critical.append(
            f"pipeline blocked: {behind[1]} runs skipped over {_ago(behind[2])} behind live run {behind[0]}"
        )
    skips = facts.trailing_skips()
    if len(skips) >= REPEATED_SKIPS:
        warning.append(f"the last {len(skips)} runs were skipped: {_clean(skips[0]['error_message'] or '')}")
    if last and last.get("sla_breached"):
        warning.append(
            f"run {last['run_id']} took {last['seconds']:.0f} s, longer than its SLA (settings.sla)"
        )
    pct = facts.held_back_pct
    if pct > warn_held_back:
        warning.append(f"{pct:.1f}% of pairs held back (over {warn_held_back:g}%): see `failures`")
    if job_name is not None:
        _judge_job(facts.job, job_name, critical, notes)
    if success:
        notes.insert(
            0,
            f"last success run {success['run_id']} {_ago(age or 0)} ago "
            f"({success['rows_inserted']} inserted, {success['rows_updated']} updated, "
            f"{success['failures']} failures, {pct:.1f}% held back)",
        )
    state = CRITICAL if critical else WARNING if warning else OK
    summary = "; ".join(critical + warning + notes) or "no runs yet"
    return Verdict(state, summary, _perfdata(facts, max_age=max_age, warn_held_back=warn_held_back))


def _judge_job(job: JobFacts, job_name: str, critical: list[str], notes: list[str]) -> None:
    if not job.visible:
        notes.append(f"pg_cron job not checked: {_clean(job.why, 200)}")
    elif job.job is None:
        reason = f" ({_clean(job.why, 200)})" if job.why else ""
        critical.append(f"pg_cron job {job_name!r} is missing{reason}: run `schedule`, or pass --no-job")
    elif not job.job.active:
        critical.append(
            f"pg_cron job {job_name!r} is inactive: SELECT cron.alter_job({job.job.jobid}, active => true)"
        )
    else:
        notes.append(f"pg_cron job {job_name!r} active ({_clean(job.job.schedule)})")
    execution = job.last_execution
    if execution and execution["status"] == "failed":
        critical.append(
            f"pg_cron's latest execution of {job_name!r} failed: "
            f"{_clean(execution['return_message'] or 'no message')}"
        )


def _perfdata(facts: Facts, *, max_age: float, warn_held_back: float) -> str:
    age = facts.success_age
    last = facts.last_success
    values = [
        f"age={'U' if age is None else f'{age:.0f}s'};;{max_age:.0f};0",  # U: never succeeded
        f"failures={last['failures'] if last else 0};;;0",
        f"held_back={last['rows_held_back'] if last else 0};;;0",
        f"held_back_pct={facts.held_back_pct:.1f}%;{warn_held_back:g};;0;100",
        f"runs_skipped={len(facts.trailing_skips())};{REPEATED_SKIPS - 1};;0",
        f"window_rows={facts.window_rows};;;0",
    ]
    return " ".join(values)


def unknown(message: str) -> Verdict:
    return Verdict(UNKNOWN, _clean(message, 400), "")


# --- metrics -------------------------------------------------------------------------------


def metrics_text(facts: Facts, *, job_expected: bool) -> str:
    """The facts in the Prometheus text exposition format, from a registry of their own (not
    the global one, which would add this process's own metrics). A fact that is not known (no
    success yet, a job the role may not see) is left out rather than given a false 0."""
    registry = CollectorRegistry(auto_describe=True)
    runs = Gauge("pipeline_runs", "Retained runs in pipeline.pipeline_runs, by status", ["status"],
                 registry=registry)  # fmt: skip
    for status, count in facts.by_status.items():
        runs.labels(status=status).set(count)
    for name, doc, value in _metric_values(facts, job_expected=job_expected):
        if value is not None:
            Gauge(name, doc, registry=registry).set(value)
    return generate_latest(registry).decode()


def _metric_values(facts: Facts, *, job_expected: bool) -> list[tuple[str, str, float | None]]:
    last, success = facts.last, facts.last_success
    job = facts.job.job if job_expected and facts.job.visible else None
    job_seen = job_expected and facts.job.visible
    execution = facts.job.last_execution if job_seen else None

    def of_last(column: str) -> float | None:
        return float(last[column]) if last and last[column] is not None else None

    return [
        ("pipeline_up", "1 when the latest finished run that was not skipped succeeded",
         1.0 if last and last["status"] == "succeeded" else 0.0),
        ("pipeline_last_success_timestamp_seconds", "When the latest succeeded run finished (unix time)",
         float(success["finished_epoch"]) if success else None),
        ("pipeline_last_run_id", "run_id of the latest finished run that was not skipped", of_last("run_id")),
        ("pipeline_last_run_duration_seconds", "How long that run took", of_last("seconds")),
        ("pipeline_last_run_rows_inserted", "Window rows that run inserted", of_last("rows_inserted")),
        ("pipeline_last_run_rows_updated", "Window rows that run updated", of_last("rows_updated")),
        ("pipeline_last_run_failures", "Failures that run recorded", of_last("failures")),
        ("pipeline_last_run_held_back_pairs", "Pairs that run held back", of_last("rows_held_back")),
        ("pipeline_last_run_sla_breached", "1 when that run took longer than settings.sla",
         of_last("sla_breached")),
        ("pipeline_held_back_ratio", "Pairs the latest succeeded run held back, over window rows plus them",
         facts.held_back_pct / 100),
        ("pipeline_window_rows", "Rows in the window table", float(facts.window_rows)),
        ("pipeline_consecutive_skipped_runs", "Skipped runs since the latest run that was not skipped",
         float(len(facts.trailing_skips()))),
        ("pipeline_cron_job_present", "1 when the pg_cron job exists (absent: the role may not see it)",
         (1.0 if job else 0.0) if job_seen else None),
        ("pipeline_cron_job_active", "1 when the pg_cron job exists and is active",
         (1.0 if job and job.active else 0.0) if job_seen else None),
        ("pipeline_cron_last_execution_succeeded", "1 when pg_cron's latest execution of the job succeeded",
         (1.0 if execution["status"] == "succeeded" else 0.0) if execution else None),
        ("pipeline_cron_last_execution_timestamp_seconds", "When pg_cron's latest execution of the job ended",
         execution["end_epoch"] if execution else None),
    ]  # fmt: skip
