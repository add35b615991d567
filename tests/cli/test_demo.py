"""`make demo` end to end: a throwaway cluster, sample data, the job scheduled as the runner
role, one run shown; a second demo reuses the cluster and writes nothing."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pytools.cluster import SERVER_USER, find_bindir, free_port
from pytools.config import parse_url
from pytools.demo import DEMO_DATABASE, OVERDUE_QUERY, demo_cluster, run_demo, stop_demo
from tests.helpers.databases import with_params
from tests.helpers.servers import docker_answers


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


@pytest.mark.slow  # starts the demo's own cluster
def test_demo_runs_the_pipeline_with_the_job_run_as_the_runner_and_reruns_idle(workdir, capsys):
    assert run_demo(workdir) == 0
    first = capsys.readouterr().out
    assert "run as role pipeline_runner" in first, first
    with psycopg.connect(demo_cluster(workdir).url(DEMO_DATABASE)) as conn:
        runs = conn.execute(
            "SELECT status, rows_inserted FROM pipeline.pipeline_runs ORDER BY run_id"
        ).fetchall()
    assert len(runs) == 1 and runs[0][0] == "succeeded" and runs[0][1] > 0, runs
    # the adherence summary, held-back pairs counted, and the HTML report where it says
    assert "adherence today, by milestone" in first and "held_back" in first, first
    page = workdir / "adherence.html"
    assert "the HTML report (" in first and str(page) in first, first
    assert page.read_text(encoding="utf-8").count("<svg") >= 2
    # the question the demo suggests asking finds patients, as a pipeline_reader member
    assert "\n        ".join(OVERDUE_QUERY) in first, first
    with psycopg.connect(demo_cluster(workdir).url(DEMO_DATABASE), autocommit=True) as conn:
        conn.execute("CREATE ROLE pjp_demo_analyst LOGIN IN ROLE pipeline_reader")
    analyst = with_params(demo_cluster(workdir).url(DEMO_DATABASE), user="pjp_demo_analyst")
    with psycopg.connect(analyst) as conn:
        overdue = conn.execute(" ".join(OVERDUE_QUERY)).fetchall()
    assert len(overdue) > 10, overdue

    assert run_demo(workdir) == 0  # the same cluster again: nothing changed, nothing written
    with psycopg.connect(demo_cluster(workdir).url(DEMO_DATABASE)) as conn:
        last = conn.execute(
            "SELECT status, rows_inserted, rows_updated FROM pipeline.pipeline_runs "
            "ORDER BY run_id DESC LIMIT 1"
        ).fetchone()
    assert last == ("succeeded", 0, 0), last


def refusal(argv: list[str]) -> str:
    """psql's complaint when it may not connect (it must not)."""
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    assert result.returncode != 0, f"connected: {result.stdout}"
    return result.stderr


def psql_as_nobody(host: str, port: int) -> list[str]:
    psql = str(find_bindir() / "psql")
    return ["runuser", "-u", "nobody", "--", psql, "-X", "-w", "-h", host, "-p", str(port), "-U", "postgres",
            "-c", "SELECT 1", "postgres"]  # fmt: skip


@pytest.mark.slow  # starts the demo's own cluster
def test_the_demo_cluster_admits_no_other_local_account_and_prints_no_password(workdir, capsys):
    """Another local OS account: the demo's superuser is out of its reach. The server listens
    on no TCP port and its only socket is in the 0700 data directory (pg_cron uses it too)."""
    assert run_demo(workdir) == 0
    out = capsys.readouterr().out
    cluster = demo_cluster(workdir)
    with pytest.raises(psycopg.OperationalError, match="refused"):
        psycopg.connect(
            host="127.0.0.1", port=cluster.port, user="postgres", dbname="postgres", connect_timeout=5
        )
    assert stat.S_IMODE(cluster.datadir.stat().st_mode) == 0o700
    assert f"psql -h {cluster.datadir} -p {cluster.port} -U postgres {DEMO_DATABASE}" in out
    assert "next, try" in out and "python -m pytools failures" in out  # where a new user goes next
    suggested = ("status", "report", "check", "failures --log")
    assert all(f"python -m pytools {command}" in out for command in suggested)
    assert (
        f"DATABASE_URL='{cluster.url(DEMO_DATABASE)}'" in out and "postgresql://postgres@:" in out
    )  # no password
    if os.geteuid() != 0:
        pytest.skip("not root: cannot play another OS account")
    assert "Permission denied" in refusal(psql_as_nobody(str(cluster.datadir), cluster.port))
    assert "refused" in refusal(psql_as_nobody("127.0.0.1", cluster.port))
    # ...while the account that runs it gets in through the socket (the job connected the same way)
    with psycopg.connect(cluster.url(DEMO_DATABASE)) as conn:
        assert conn.execute("SELECT count(*) FROM pipeline.pipeline_runs").fetchone() == (1,)


def test_the_test_cluster_admits_no_other_local_account_as_a_superuser(server):
    """Another local OS account: the tests' throwaway cluster takes a password on TCP (no role
    there has one, unless a test gives it) and trusts only its socket, in a 0700 directory."""
    if os.environ.get("TEST_DATABASE_URL") or docker_answers() is None:
        pytest.skip("the tests' server is not a local throwaway cluster (TEST_DATABASE_URL or Docker)")
    if os.geteuid() != 0:
        pytest.skip("not root: cannot play another OS account")
    params = parse_url(server)
    port = int(params["port"])
    assert "no password supplied" in refusal(psql_as_nobody("127.0.0.1", port))
    socket_dir = params.get("host", "")
    assert socket_dir.startswith("/"), f"the tests do not use the private socket: {params}"
    assert stat.S_IMODE(os.stat(socket_dir).st_mode) == 0o700
    assert "Permission denied" in refusal(psql_as_nobody(socket_dir, port))
