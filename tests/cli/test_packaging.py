"""`pip install .` (not only -e) must carry the SQL files inside the package."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # builds a wheel and installs it
def test_the_wheel_carries_every_sql_file_and_finds_them_when_installed(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("patient_journey_pipeline-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"pytools/{p.relative_to(REPO)}" for p in (REPO / "sql").rglob("*.sql")}
    assert expected and expected <= names

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pytools import sql_files as f; print(f.sql_root()); print(len(f.routine_files()))",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    )
    root, routines = probe.stdout.split()
    assert Path(root) == target / "pytools" / "sql"
    assert int(routines) == len(list((REPO / "sql" / "procedures").glob("*.sql")))
