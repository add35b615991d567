"""Drift: however a database reached the current version, its pipeline schema is the same.

A fresh install is compared with one that applied the migrations one at a time, rolled them
all back and applied them again, with `migrate` repeated in between; and with databases left at
each earlier release (its migrations and routines, from git history) and then migrated.
Released migrations never change: sql/migrations/frozen.txt lists the hash of each."""

from __future__ import annotations

import difflib
import hashlib
import re
import subprocess
import tarfile
from io import BytesIO
from pathlib import Path

import psycopg
import pytest
from yoyo import read_migrations

from pytools.cluster import find_bindir
from pytools.config import parse_url
from pytools.generate import generate
from pytools.migrations import SCHEMA, migrate, yoyo_backend
from pytools.sql_files import migrations_dir, sample_file
from tests.helpers.pipeline import quiet

REPO = Path(__file__).resolve().parents[2]
FROZEN = migrations_dir() / "frozen.txt"


def _schema_dump(url: str, schemas: tuple[str, ...] = (SCHEMA,)) -> str:
    params = parse_url(url)
    dump = subprocess.run(
        [
            str(find_bindir() / "pg_dump"),
            "--schema-only",
            "--no-owner",
            *(f"--schema={schema}" for schema in schemas),
            "--exclude-table=pipeline._yoyo*",
            "--exclude-table=pipeline.yoyo_lock",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"PGPASSWORD": params.get("password", ""), "PATH": "/usr/bin:/bin"},
    ).stdout
    # Comments and SET lines carry nothing of the schema itself.
    return "\n".join(
        line
        for line in dump.splitlines()
        if line and not re.match(r"^(--|SET |SELECT pg_catalog|\\(un)?restrict )", line)
    )


def test_replayed_migrations_equal_a_fresh_install(server, empty_db_url):
    from tests.helpers.databases import create_database, drop_database

    fresh_url = create_database(server, "pjp_drift_fresh")
    try:
        migrate(fresh_url)

        with psycopg.connect(empty_db_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {SCHEMA}")  # yoyo keeps its tables there
        backend = yoyo_backend(empty_db_url)
        migrations = read_migrations(str(migrations_dir()))
        for migration in migrations:  # one at a time, as successive releases would
            with backend.lock():
                backend.apply_migrations(
                    backend.to_apply(migrations.filter(lambda m, wanted=migration.id: m.id == wanted))
                )
        migrate(empty_db_url)
        with backend.lock():
            backend.rollback_migrations(backend.to_rollback(migrations))
        backend.connection.close()
        migrate(empty_db_url)
        migrate(empty_db_url)

        replayed, fresh = _schema_dump(empty_db_url), _schema_dump(fresh_url)
        assert "CREATE PROCEDURE pipeline.run_patient_journey_pipeline" in fresh
        assert replayed == fresh
    finally:
        drop_database(server, "pjp_drift_fresh")


def test_every_migration_has_a_rollback():
    forward = {p.name for p in migrations_dir().glob("*.sql") if not p.name.endswith(".rollback.sql")}
    rollback = {p.name.replace(".rollback", "") for p in migrations_dir().glob("*.rollback.sql")}
    assert forward == rollback


def _frozen() -> dict[str, str]:
    """file name -> SHA-256 listed in frozen.txt (comment lines start with #)."""
    listed: dict[str, str] = {}
    for line in FROZEN.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split()
            listed[name] = digest
    return listed


def _migration_files() -> list[Path]:
    return sorted(p for p in migrations_dir().glob("*.sql"))


def test_released_migrations_never_change():
    """A database runs each migration once: an edit would reach new installs only, and the
    databases already migrated would drift from them for ever."""
    listed = _frozen()
    changed = [
        p.name for p in _migration_files()
        if p.name in listed and hashlib.sha256(p.read_bytes()).hexdigest() != listed[p.name]
    ]  # fmt: skip
    assert not changed, (
        f"released migrations changed: {changed}. Released migrations never change: undo the edit and "
        "add a new migration (an old routine signature is dropped by a new migration too, see "
        "docs/migrations.md). A migration of yours not released yet: delete its line from "
        "sql/migrations/frozen.txt, then run `make freeze`"
    )
    missing = sorted(set(listed) - {p.name for p in _migration_files()})
    assert not missing, f"released migrations missing from sql/migrations: {missing}; restore them from git"


def test_every_migration_is_listed_in_frozen_txt():
    unlisted = [p.name for p in _migration_files() if p.name not in _frozen()]
    assert not unlisted, (
        f"unlisted migrations {unlisted}: add their hashes to sql/migrations/frozen.txt: make freeze"
    )


# The last commit of each release: the commit before the next migration arrived on the main
# line (0006, 0007 and 0008 arrived out of order, from three branches), and the one before this
# issue's migration. A database migrated there has those migrations and that commit's routines.
# Not here: the states before the freeze whose migrations were edited later (0003 without
# settings.work_mem, before 13f429c; 0004 under its first name, count-held-back-groups, up to
# 4c4d0ce): no new migration can reach them (docs/migrations.md).
RELEASES = {
    "0001-0002": "e1e6a7f",
    "0001-0003": "b9b8293",
    "0001-0005": "313f2c4",
    "0001-0005,0007": "5bba7ef",
    "0001-0005,0007-0008": "f442697",
    "0001-0008": "da71ee5",
}


def _export(commit: str, dest: Path) -> Path:
    """The commit's sql/ folder, as git stores it."""
    git = ["git", "-C", str(REPO)]
    known = subprocess.run([*git, "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True)
    if known.returncode != 0:
        pytest.skip(f"commit {commit} is not in this clone's history (a shallow clone?)")
    archive = subprocess.run(
        [*git, "archive", "--format=tar", commit, "sql"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "sql"


def _install_release(url: str, sql: Path) -> None:
    """What that release's migrate did: its migrations, then its routines in name order, then
    change capture and access where it had them."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    backend = yoyo_backend(url)
    try:
        with backend.lock():
            backend.apply_migrations(backend.to_apply(read_migrations(str(sql / "migrations"))))
    finally:
        backend.connection.close()
    with psycopg.connect(url) as conn:
        for path in sorted((sql / "procedures").glob("*.sql")):
            conn.execute(path.read_text(encoding="utf-8").encode())
        for call in ("install_change_capture", "grant_access"):
            if conn.execute("SELECT to_regproc(%s)", (f"pipeline.{call}",)).fetchone() != (None,):
                conn.execute(f"SELECT * FROM pipeline.{call}()")


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs the git history")
@pytest.mark.parametrize("release", list(RELEASES))
def test_a_database_migrated_from_any_earlier_release_equals_a_fresh_install(server, tmp_path, release):
    """Installed at that release, run once (so held_back_pair holds reasons), then migrated."""
    from tests.conftest import create_database, drop_database

    names = [f"pjp_drift_fresh_{release}", f"pjp_drift_old_{release}"]
    fresh_url, old_url = (create_database(server, re.sub(r"\W", "_", name)) for name in names)
    try:
        for url in (fresh_url, old_url):
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sample_file("source_tables.sql").read_text().encode())
        migrate(fresh_url)
        _install_release(old_url, _export(RELEASES[release], tmp_path))
        generate(old_url, 60, progress=quiet)
        with psycopg.connect(old_url, autocommit=True) as conn:
            conn.execute("CALL pipeline.run_patient_journey_pipeline()")
        migrate(old_url)

        upgraded, fresh = (_schema_dump(url, (SCHEMA, "public")) for url in (old_url, fresh_url))
        assert "CREATE TYPE pipeline.held_back_reason" in fresh
        drift = list(
            difflib.unified_diff(fresh.splitlines(), upgraded.splitlines(), "fresh", "upgraded", lineterm="")
        )
        assert not drift, "\n".join(drift)
        with psycopg.connect(old_url, autocommit=True) as conn:
            conn.execute("CALL pipeline.run_patient_journey_pipeline('manual', true)")
            status = conn.execute("SELECT status FROM pipeline.pipeline_runs ORDER BY run_id DESC LIMIT 1")
            assert status.fetchone() == ("succeeded",)
    finally:
        for name in names:
            drop_database(server, re.sub(r"\W", "_", name))
