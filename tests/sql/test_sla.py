"""The original script's SLA: a run that takes longer than pipeline.settings.sla records
sla_breached and raises a WARNING, and still succeeds (pg_cron's status stays succeeded)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.helpers.pipeline import one_journey, slow_run

Conn = psycopg.Connection[dict[str, Any]]


def test_a_run_slower_than_the_sla_records_the_breach_and_warns_yet_succeeds(db: Conn, db_url: str) -> None:
    one_journey(db)
    db.execute("UPDATE pipeline.settings SET sla = interval '1 second'")
    row, messages = slow_run(db, db_url, 1.5)
    assert (row["status"], row["sla_breached"]) == ("succeeded", True)
    [warning] = [m for m in messages if m.startswith("WARNING")]
    assert f"pipeline run {row['run_id']} took" in warning and "longer than its SLA of 00:00:01" in warning


def test_a_run_within_the_sla_or_without_one_records_no_breach(db: Conn, db_url: str) -> None:
    one_journey(db)
    assert db.execute("SELECT sla::text AS sla FROM pipeline.settings").fetchone() == {"sla": "00:10:00"}
    row, messages = slow_run(db, db_url, 1.5)  # well within the default ten minutes
    assert (row["status"], row["sla_breached"]) == ("succeeded", False)
    assert not [m for m in messages if m.startswith("WARNING")]
    db.execute("UPDATE pipeline.settings SET sla = NULL")  # off: even a slow run breaches nothing
    db.execute("UPDATE public.patient_journey SET operation_date = operation_date + interval '1 day'")
    row, messages = slow_run(db, db_url, 1.5)
    assert (row["status"], row["sla_breached"]) == ("succeeded", False)
    assert not [m for m in messages if m.startswith("WARNING")]


@pytest.mark.parametrize("value", ["0 seconds", "500 milliseconds", "2 days", "-1 minute"])
def test_the_sla_is_a_duration_from_a_second_to_a_day(db: Conn, value: str) -> None:
    with pytest.raises(psycopg.errors.CheckViolation, match="settings_sla_from_a_second_to_a_day"):
        db.execute("UPDATE pipeline.settings SET sla = %s::interval", (value,))
