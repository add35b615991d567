"""`python -m pytools` run as a user runs it: a subprocess with a clean environment, in an
empty working directory, checked on its exit code and on what it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pytools.cluster import free_port
from tests.helpers.databases import with_params

REPO = Path(__file__).resolve().parents[2]
SECRET = "s3cret-pw"
# The CLI's exit codes the tests expect (pytools.errors.ExitCode)
USAGE, CONNECTION, NOT_MIGRATED, NO_PG_CRON = 2, 3, 4, 5


def closed_port_url(**params: str) -> str:
    """A URL of a port nothing listens on."""
    return with_params(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", **params)


def clean_env(database_url: str | None = None, **extra: str) -> dict[str, str]:
    """os.environ without anything that would choose a database or an option for the CLI."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "DATABASE_URL"
        and not key.startswith("PIPELINE_")
        and not (key.startswith("PG") and not key.startswith("PG_"))  # libpq's PGHOST etc.
    }
    env["PYTHONPATH"] = str(REPO)
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    env.update(extra)
    return env


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m pytools ARGS` run in `cwd` (a test's tmp_path: no stray .env), clean env."""
    return subprocess.run(
        [sys.executable, "-m", "pytools", *args],
        capture_output=True,
        text=True,
        env=env if env is not None else clean_env(),
        cwd=cwd,
        timeout=120,
        check=False,
    )


def assert_one_error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The command failed with `code` and said why in exactly one `error:` line."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(("error:", "python -m pytools")), lines[0]
    assert "error:" in lines[0]
    return lines[0]


def assert_ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout


def cron_jobs(server: str, job_name: str) -> list[dict[str, Any]]:
    with psycopg.connect(server, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM cron.job WHERE jobname = %s", (job_name,)).fetchall()
