"""Fixtures the CLI tests share."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest


@pytest.fixture
def password_role(server: str) -> Iterator[str]:
    """A role that must give its password (scram-sha-256) from 127.0.0.1; its name."""
    role = f"pjp_pw_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        hba = Path(str(conn.execute("SHOW hba_file").fetchone()[0]))  # type: ignore[index]
        if not (hba.is_file() and os.access(hba, os.R_OK | os.W_OK)):
            pytest.skip(f"the server's hba file {hba} is not writable by the tests")
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'the-right-one'")
        original = hba.read_text()
        hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n{original}")
        try:
            conn.execute("SELECT pg_reload_conf()")
            yield role
        finally:
            hba.write_text(original)
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(f"DROP ROLE {role}")
