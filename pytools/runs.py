"""Run the pipeline once, and read its runs and failures."""

from __future__ import annotations

from typing import Any

import psycopg

from pytools.db import connect_dicts, database_error
from pytools.migrations import require_migrated

RUN_COLUMNS = (
    "run_id, trigger, status, mode, started_at, finished_at, "
    "round(extract(epoch FROM finished_at - started_at)::numeric, 3) AS seconds, "
    "rows_inserted, rows_updated, rows_held_back, failures, error_message"
)
FAILURE_COLUMNS = (
    "failure_id, run_id, failed_at, stage, schedule_id, schedule_slug, patient_journey_id, "
    "activity_id, sqlstate, error_message, rows_held_back"
)


class RunFailed(Exception):
    """The run itself broke; carries what is known of it."""

    def __init__(self, message: str, run: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.run = run


def run_now(url: str, trigger: str = "manual", *, full: bool = False) -> dict[str, Any]:
    """CALL the procedure (it COMMITs, so autocommit) and return this session's run row."""
    with connect_dicts(url) as conn:
        require_migrated(conn)
        # Runs started before this call are not ours, even from a backend with our pid.
        before = conn.execute(
            "SELECT coalesce(max(run_id), 0) AS run_id FROM pipeline.pipeline_runs"
        ).fetchone()
        try:
            conn.execute("CALL pipeline.run_patient_journey_pipeline(%s, %s)", (trigger, full))
            error = None
        except psycopg.errors.ExternalRoutineException as exc:
            error = exc.diag.message_primary or str(exc)
        except psycopg.errors.InsufficientPrivilege:
            raise  # the caller may not run the pipeline (or its steps): no run happened
        except psycopg.Error as exc:
            # The run could not even record itself (e.g. pipeline_failures unwritable).
            error = f"the run broke: {exc.diag.message_primary or exc}"
        run = conn.execute(
            f"SELECT {RUN_COLUMNS} FROM pipeline.pipeline_runs "
            "WHERE backend_pid = pg_backend_pid() AND run_id > %s ORDER BY run_id DESC LIMIT 1",
            (before["run_id"] if before else 0,),
        ).fetchone()
    if error is not None:
        raise RunFailed(error, run)
    if run is None:
        raise RunFailed("the run left no record in pipeline.pipeline_runs", None)
    return run


def recent_runs(url: str, limit: int) -> list[dict[str, Any]]:
    with connect_dicts(url) as conn:
        require_migrated(conn)
        return conn.execute(
            f"SELECT {RUN_COLUMNS} FROM pipeline.pipeline_runs ORDER BY run_id DESC LIMIT %s",
            (limit,),
        ).fetchall()


def failures(url: str, *, run_id: int | None, all_runs: bool, limit: int) -> list[dict[str, Any]]:
    """The latest run's failures (pipeline.current_failures), one run's, or all retained ones."""
    if run_id is not None:
        source, where, params = "pipeline.pipeline_failures", "WHERE run_id = %s", [run_id]
    elif all_runs:
        source, where, params = "pipeline.pipeline_failures", "", []
    else:
        source, where, params = "pipeline.current_failures", "", []
    with connect_dicts(url) as conn:
        require_migrated(conn)
        try:
            return conn.execute(
                f"SELECT {FAILURE_COLUMNS} FROM {source} {where} ORDER BY failure_id DESC LIMIT %s",
                [*params, limit],
            ).fetchall()
        except psycopg.errors.InsufficientPrivilege:
            raise  # the CLI names the grant that fixes it
        except psycopg.Error as exc:
            raise database_error("reading failures", exc) from None
