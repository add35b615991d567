"""A real pg_cron execution: the scheduler runs the job in the test database, as the role that
may only run the pipeline, and reports success; a run that breaks shows as failed in
cron.job_run_details, data problems do not."""

from __future__ import annotations

import time

import psycopg
import pytest
from psycopg.rows import dict_row

from pytools import cron
from tests.pipeline_helpers import insert, one_journey

pytestmark = pytest.mark.cron


def _job_details(server: str, jobid: int) -> list[dict]:
    with psycopg.connect(server, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT status, return_message FROM cron.job_run_details WHERE jobid = %s "
            "AND status IN ('succeeded', 'failed') ORDER BY runid",
            (jobid,),
        ).fetchall()


def test_pg_cron_runs_the_pipeline_and_reports_whether_the_run_worked(server, db, db_url, empty_db_url):
    # A healthy database with a data problem (a broken slug): the run succeeds.
    one_journey(db)
    insert(db, "schedule", ["id", "slug"], [(200, "7d-post-surgery")])
    insert(db, "activity", ["id", "content_slug", "schedule_id"], [(20, "broken", 200)])
    insert(db, "journey_activity", ["journey_id", "activity_id"], [(1, 20)])
    healthy = cron.schedule(db_url, "* * * * *", cron.default_job_name(db_url))
    assert healthy.username == "pipeline_runner"  # scheduled by a superuser, run as the runner

    # A database where the run itself breaks: the pipeline is installed, a source table is not.
    from pytools.migrations import migrate

    migrate(empty_db_url)
    broken = cron.schedule(empty_db_url, "* * * * *", cron.default_job_name(empty_db_url))

    deadline = time.monotonic() + 150  # minute granularity: the next minute boundary, plus slack
    while time.monotonic() < deadline:
        if _job_details(server, healthy.jobid) and _job_details(server, broken.jobid):
            break
        time.sleep(2)
    healthy_runs = _job_details(server, healthy.jobid)
    broken_runs = _job_details(server, broken.jobid)
    cron.unschedule(db_url, healthy.jobname)
    cron.unschedule(empty_db_url, broken.jobname)

    assert healthy_runs and healthy_runs[0]["status"] == "succeeded", healthy_runs
    window = db.execute("SELECT count(*) AS n FROM pipeline.patient_journey_schedule_window").fetchone()
    assert window["n"] == 1
    run = db.execute("SELECT * FROM pipeline.pipeline_runs ORDER BY run_id LIMIT 1").fetchone()
    assert (run["trigger"], run["status"], run["failures"]) == ("cron", "succeeded", 1)
    assert run["run_by"] == "pipeline_runner"

    assert broken_runs and broken_runs[0]["status"] == "failed", broken_runs
    assert "pipeline run" in broken_runs[0]["return_message"]
    with psycopg.connect(empty_db_url, row_factory=dict_row) as conn:
        failed = conn.execute("SELECT * FROM pipeline.pipeline_runs ORDER BY run_id LIMIT 1").fetchone()
    assert (failed["trigger"], failed["status"]) == ("cron", "failed")
