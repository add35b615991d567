"""Run the pipeline once, and read its runs and failures."""

from __future__ import annotations

import re
from typing import Any

import psycopg

from pytools.db import Target, database_error, using
from pytools.errors import ExitCode, UserError
from pytools.migrations import require_migrated

RUN_COLUMNS = (
    "run_id, trigger, status, mode, started_at, finished_at, "
    "round(extract(epoch FROM finished_at - started_at)::numeric, 3) AS seconds, "
    "rows_inserted, rows_updated, rows_held_back, failures, sla_breached, error_message"
)
# The DETAIL of the errors the procedure raises after recording the run.
_RUN_ID_DETAIL = re.compile(r"run_id=([0-9]+)")
FAILURE_COLUMNS = (
    "failure_id, run_id, failed_at, stage, schedule_id, schedule_slug, patient_journey_id, "
    "activity_id, sqlstate, error_message, rows_held_back"
)


class RunFailed(Exception):
    """The run itself broke; carries what is known of it."""

    def __init__(self, message: str, run: dict[str, Any] | None, *, failures_readable: bool = True) -> None:
        super().__init__(message)
        self.run = run
        self.failures_readable = failures_readable  # may the role that ran it read pipeline_failures?


def _run_id_of(error: psycopg.Error) -> int | None:
    """The run a failed CALL recorded, from the error's DETAIL (run_id=N): the procedure puts
    it there when it raises after recording the run, since a RAISE loses OUT values."""
    match = _RUN_ID_DETAIL.fullmatch(error.diag.message_detail or "")
    return int(match.group(1)) if match else None


def run_now(target: Target, trigger: str = "manual", *, full: bool = False) -> dict[str, Any]:
    """CALL the procedure (it COMMITs, so autocommit) and return the row of the run it hands back.

    `target`: the pipeline database's URL, or a connection to it (autocommit, dict rows).
    """
    with using(target) as conn:
        require_migrated(conn)
        run_id: int | None = None
        try:
            row = conn.execute(
                "CALL pipeline.run_patient_journey_pipeline(%s, %s)", (trigger, full)
            ).fetchone()
            run_id = row["p_run_id"] if row else None
            error = None
        except psycopg.errors.ExternalRoutineException as exc:
            run_id = _run_id_of(exc)
            error = exc.diag.message_primary or str(exc)
        except psycopg.errors.InsufficientPrivilege:
            raise  # the caller may not run the pipeline (or its steps): no run happened
        except psycopg.Error as exc:
            # The run could not even record itself (e.g. pipeline_failures unwritable); an
            # error the procedure did not raise itself names no run, and none is guessed.
            run_id = _run_id_of(exc)
            error = f"the run broke: {exc.diag.message_primary or exc}"
        run = None
        if run_id is not None:
            run = conn.execute(
                f"SELECT {RUN_COLUMNS} FROM pipeline.pipeline_runs WHERE run_id = %s", (run_id,)
            ).fetchone()
        readable = None
        if error is not None:
            readable = conn.execute(
                "SELECT has_table_privilege('pipeline.pipeline_failures', 'SELECT') AS readable"
            ).fetchone()
    if error is not None:
        raise RunFailed(error, run, failures_readable=bool(readable and readable["readable"]))
    if run is None:
        raise RunFailed("the run left no record in pipeline.pipeline_runs", None)
    return run


def recent_runs(target: Target, limit: int) -> list[dict[str, Any]]:
    with using(target) as conn:
        require_migrated(conn)
        return conn.execute(
            f"SELECT {RUN_COLUMNS} FROM pipeline.pipeline_runs ORDER BY run_id DESC LIMIT %s",
            (limit,),
        ).fetchall()


def _failures_of(run_id: int | None, all_runs: bool) -> tuple[str, str, list[Any]]:
    """Where `failures` reads: one run's, every retained run's, or the latest run's."""
    if run_id is not None:
        return "pipeline.pipeline_failures", "WHERE run_id = %s", [run_id]
    if all_runs:
        return "pipeline.pipeline_failures", "", []
    return "pipeline.current_failures", "", []


def failures(target: Target, *, run_id: int | None, all_runs: bool, limit: int) -> list[dict[str, Any]]:
    """The latest run's failures (pipeline.current_failures), one run's, or all retained ones."""
    source, where, params = _failures_of(run_id, all_runs)
    with using(target) as conn:
        require_migrated(conn)
        try:
            if run_id is not None:
                _require_run_exists(conn, run_id)
            return conn.execute(
                f"SELECT {FAILURE_COLUMNS} FROM {source} {where} ORDER BY failure_id DESC LIMIT %s",
                [*params, limit],
            ).fetchall()
        except psycopg.errors.InsufficientPrivilege:
            raise  # the CLI names the grant that fixes it
        except psycopg.Error as exc:
            raise database_error("reading failures", exc) from None


def failures_total(target: Target, *, run_id: int | None, all_runs: bool) -> int:
    """How many failures `failures` would list without a limit."""
    source, where, params = _failures_of(run_id, all_runs)
    with using(target) as conn:
        row = conn.execute(f"SELECT count(*) AS n FROM {source} {where}", params).fetchone()
    return int(row["n"]) if row else 0


def _require_run_exists(conn: psycopg.Connection[dict[str, Any]], run_id: int) -> None:
    """A run id that names no retained run is the user's mistake, not an empty list."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE run_id = %s) AS found, min(run_id) AS first, max(run_id) AS last "
        "FROM pipeline.pipeline_runs",
        [run_id],
    ).fetchone()
    if row and row["found"]:
        return
    kept = (
        f"the retained runs are {row['first']} to {row['last']}"
        if row and row["last"]
        else "no run is retained"
    )
    raise UserError(
        f"no run {run_id} in pipeline.pipeline_runs ({kept}; older runs are purged after "
        "settings.retention): see `python -m pytools status`",
        ExitCode.USAGE,
    )
