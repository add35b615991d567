"""Vocabularies and identities declared once: the reasons a pair is held back are the enum type
pipeline.held_back_reason, which the tables, the partial index and the routines use; the
advisory lock keys are each written in one place."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest

from pytools.sql_files import sql_root
from tests.helpers.pipeline import hostile_rows, load, run

Conn = psycopg.Connection[dict[str, Any]]
REPO = sql_root().parent


def held_back_reasons(conn: Conn) -> list[str]:
    """The declared vocabulary, in the order a run tests the reasons."""
    rows = conn.execute("SELECT unnest(enum_range(NULL::pipeline.held_back_reason))::text AS reason")
    return [str(r["reason"]) for r in rows]


def test_a_run_holds_pairs_back_for_every_declared_reason_and_for_no_other(db: Conn) -> None:
    """Every hostile kind of row, and a milestone whose date column is not a date: the reasons
    the run gives are exactly the seven the type declares."""
    load(db, hostile_rows(duplicated_patient_journeys=False))
    db.execute(
        "UPDATE pipeline.milestone SET date_column = 'patient_id' WHERE milestone_slug = 'registration'"
    )
    assert run(db, full=True)["status"] == "succeeded"
    given = db.execute("SELECT DISTINCT held_back::text AS reason FROM pipeline.held_back_pair").fetchall()
    assert sorted(str(r["reason"]) for r in given) == sorted(held_back_reasons(db))
    assert len(held_back_reasons(db)) == 7


MISSPELT = {
    "held_back_pair": "INSERT INTO pipeline.held_back_pair (patient_journey_id, activity_id, held_back) "
    "VALUES (1, 1, 'missing activty')",
    "held_back_group": "INSERT INTO pipeline.held_back_group (held_back, pairs) "
    "VALUES ('missing activty', 1)",
}


@pytest.mark.parametrize("table", list(MISSPELT))
def test_a_reason_outside_the_vocabulary_is_refused_where_it_is_stored(db: Conn, table: str) -> None:
    """A misspelt reason used to be stored (and counted nowhere): the type refuses it."""
    with pytest.raises(psycopg.errors.InvalidTextRepresentation, match="held_back_reason"):
        db.execute(MISSPELT[table])


def test_the_pair_by_pair_index_is_on_declared_reasons(db: Conn) -> None:
    row = db.execute(
        "SELECT pg_get_expr(i.indpred, i.indrelid) AS predicate FROM pg_index AS i "
        "WHERE i.indexrelid = 'pipeline.held_back_pair_pair_problem_idx'::regclass"
    ).fetchone()
    assert row is not None
    quoted = re.findall(r"'([^']+)'::pipeline\.held_back_reason", str(row["predicate"]))
    assert quoted == ["milestone date is infinite", "window date out of range"]
    assert set(quoted) <= set(held_back_reasons(db))


def test_the_routines_name_reasons_only_as_the_declared_type() -> None:
    """Wherever a routine produces a reason it casts it to pipeline.held_back_reason, so a
    misspelt one fails the statement when it is planned; none is a bare text value."""
    source = (sql_root() / "procedures" / "_prepare_candidates.sql").read_text(encoding="utf-8")
    produced = re.findall(r"THEN '([a-z_ ]+)'(::pipeline\.held_back_reason)?", source)
    assert len(produced) == 7
    assert all(cast for _, cast in produced), produced


def test_each_advisory_lock_key_is_written_once() -> None:
    """The run's lock classes are declared by pipeline._advisory_lock_classes() and migrate's
    routine lock by pytools/migrations.py: no other file of the package repeats a key."""
    sources = [*(sql_root() / "procedures").glob("*.sql"), *(REPO / "pytools").glob("*.py")]
    for key in ("485739402", "485739403", "4857394022"):
        holders = [p.name for p in sources if re.search(rf"\b{key}\b", p.read_text(encoding="utf-8"))]
        assert len(holders) == 1, (key, holders)


def test_the_run_lock_keys_use_the_declared_classes(db: Conn) -> None:
    row = db.execute(
        "SELECT c.run_lock, c.execution_lock, k.run_key1, k.execution_key1 "
        "FROM pipeline._advisory_lock_classes() AS c, pipeline._run_lock_keys(1) AS k"
    ).fetchone()
    assert row is not None
    assert (row["run_key1"], row["execution_key1"]) == (row["run_lock"], row["execution_lock"])
    assert row["run_lock"] != row["execution_lock"]
