"""A database at release 0013 migrated to the cheaper change capture (0014, issue 12 target 5):
the changes its application queued in the old queue are kept and processed, the capture
triggers stay trusted (so the next run needs no full run), and what the new trigger queues after
the upgrade brings the windows where a full run would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from pytools.generate import generate
from pytools.migrations import migrate
from pytools.sql_files import sample_file
from tests.helpers.pipeline import quiet, run
from tests.migration.test_drift import REPO, _export, _install_release

RELEASE_0013 = "8a14a5e"  # the last commit with migrations 0001-0013
RESCHEDULE = (
    "UPDATE public.patient_journey SET operation_date = operation_date + {days} * interval '1 day' "
    "WHERE id = {id}"
)


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs the git history")
def test_a_database_at_0013_keeps_its_queued_changes_and_trusted_capture_through_the_upgrade(
    empty_db_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(sample_file("source_tables.sql").read_text().encode())
    _install_release(empty_db_url, _export(RELEASE_0013, tmp_path))
    generate(empty_db_url, 60, progress=quiet)
    with psycopg.connect(empty_db_url, autocommit=True, row_factory=dict_row) as db:
        assert run(db)["mode"] == "full"
        # the application's writes, queued by the release's trigger into its queue
        db.execute(RESCHEDULE.format(days=3, id=5))
        db.execute("DELETE FROM public.survey_result WHERE patient_journey_id = 7")
        before = queue(db)
        assert before == [("patient_journey", [5, 5]), ("patient_journey", [7] * len(before[1][1]))]

        migrate(empty_db_url)

        columns = db.execute(
            "SELECT array_agg(attname::text ORDER BY attnum) AS c FROM pg_attribute "
            "WHERE attrelid = 'pipeline.change_queue'::regclass AND attnum > 0 AND NOT attisdropped"
        ).fetchone()
        assert columns == {"c": ["kind", "keys"]}
        assert queue(db) == before
        assert db.execute("SELECT * FROM pipeline._change_capture_problems()").fetchall() == []
        assert db.execute("SELECT pipeline._change_capture_ready() AS ready").fetchone() == {"ready": True}
        taken = run(db)
        assert (taken["status"], taken["mode"]) == ("succeeded", "incremental")
        assert taken["rows_updated"] > 0

        db.execute(RESCHEDULE.format(days=-2, id=9))
        db.execute("INSERT INTO public.patient_journey (id, patient_id, journey_id, operation_date) "
                   "VALUES (1000, 1000, 1, '2026-02-01')")  # fmt: skip
        assert queue(db) == [("patient_journey", [9, 9]), ("patient_journey", [1000])]
        assert run(db)["mode"] == "incremental"
        full = run(db, full=True)
        assert (full["mode"], full["rows_inserted"], full["rows_updated"]) == ("full", 0, 0)


def queue(db: psycopg.Connection[dict[str, Any]]) -> list[tuple[str, list[int] | None]]:
    rows = db.execute("SELECT kind, keys FROM pipeline.change_queue").fetchall()
    return sorted((r["kind"], r["keys"]) for r in rows)
