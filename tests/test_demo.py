"""`make demo` end to end: a throwaway cluster, sample data, the job scheduled as the runner
role, one run shown; a second demo reuses the cluster and writes nothing."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pytools.cluster import SERVER_USER
from pytools.demo import DEMO_DATABASE, demo_cluster, run_demo, stop_demo
from tests.backends import free_port


@pytest.fixture
def workdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pjp-demo-"))
    path.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(path, SERVER_USER, SERVER_USER)
    monkeypatch.setenv("PIPELINE_DEMO_PORT", str(free_port()))
    yield path
    stop_demo(path)
    shutil.rmtree(path, ignore_errors=True)


def test_demo_runs_the_pipeline_with_the_job_run_as_the_runner_and_reruns_idle(workdir, capsys):
    assert run_demo(workdir) == 0
    first = capsys.readouterr().out
    assert "run as role pipeline_runner" in first, first
    with psycopg.connect(demo_cluster(workdir).url(DEMO_DATABASE)) as conn:
        runs = conn.execute(
            "SELECT status, rows_inserted FROM pipeline.pipeline_runs ORDER BY run_id"
        ).fetchall()
    assert len(runs) == 1 and runs[0][0] == "succeeded" and runs[0][1] > 0, runs

    assert run_demo(workdir) == 0  # the same cluster again: nothing changed, nothing written
    with psycopg.connect(demo_cluster(workdir).url(DEMO_DATABASE)) as conn:
        last = conn.execute(
            "SELECT status, rows_inserted, rows_updated FROM pipeline.pipeline_runs "
            "ORDER BY run_id DESC LIMIT 1"
        ).fetchone()
    assert last == ("succeeded", 0, 0), last
