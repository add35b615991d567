"""Drift: however a database reached the current version, its pipeline schema is the same.

A fresh install is compared with one that applied the migrations one at a time, rolled them
all back and applied them again, with `migrate` repeated in between."""

from __future__ import annotations

import re
import subprocess

import psycopg
from yoyo import read_migrations

from pytools.cluster import find_bindir
from pytools.config import parse_url
from pytools.migrations import SCHEMA, migrate, yoyo_backend
from pytools.sql_files import migrations_dir


def _schema_dump(url: str) -> str:
    params = parse_url(url)
    dump = subprocess.run(
        [
            str(find_bindir() / "pg_dump"),
            "--schema-only",
            "--no-owner",
            f"--schema={SCHEMA}",
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
