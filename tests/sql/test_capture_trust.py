"""Change capture is trusted only while it can be: a routine run falls back to a full run
whenever changes may have bypassed the queue (a trigger disabled and enabled again, replaced
by one of the same name, a column rewritten by DDL, a subscription the apply worker feeds
past every statement-level trigger), and at least every `settings.full_run_every`.

Here the source tables belong to a role of their own, not to pipeline_owner, which installs
the pipeline with only the grants README "Roles" lists: migrate can create the triggers but
not enable them ALWAYS / REPLICA."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from pytools.config import parse_url
from pytools.migrations import MigrateResult, migrate
from pytools.sql_files import sample_file
from tests.helpers.cli import assert_ok, clean_env, cli
from tests.helpers.databases import SOURCE_TABLES, connect, grant_owner, with_params
from tests.helpers.pipeline import one_journey, run, windows

TABLES_OWNER = "pjp_tables_owner"


@dataclass
class Install:
    url: str  # superuser
    migrated: MigrateResult


@pytest.fixture
def install(empty_db_url: str) -> Install:
    """The app's tables owned by TABLES_OWNER, the DBA's grants, migrate as pipeline_owner."""
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(
            f"DO $$ BEGIN CREATE ROLE {TABLES_OWNER} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        conn.execute(sample_file("source_tables.sql").read_text().encode())
        for table in SOURCE_TABLES:
            conn.execute(f"ALTER TABLE public.{table} OWNER TO {TABLES_OWNER}")
        conn.execute(f"GRANT CREATE ON SCHEMA public TO {TABLES_OWNER}")
        grant_owner(conn, parse_url(empty_db_url)["dbname"])
    migrated = migrate(with_params(empty_db_url, user="pipeline_owner"))
    return Install(empty_db_url, migrated)


@pytest.fixture
def db(install: Install) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(install.url, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture
def owner(install: Install) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """The source tables' owner (not a superuser, not pipeline_owner)."""
    with connect(install.url, TABLES_OWNER) as conn:
        yield conn


def reschedule(conn: psycopg.Connection[Any], day: str) -> None:
    conn.execute("UPDATE public.patient_journey SET operation_date = %s WHERE id = 1", (day,))


def milestone(conn: psycopg.Connection[Any]) -> str:
    return str(windows(conn)[(1, 10)]["milestone_date"])


def test_migrate_as_pipeline_owner_notes_what_only_the_tables_owner_can_enable(install: Install) -> None:
    assert install.migrated.unwatched == []  # runs are incremental: no "runs will be full" warning
    notes = dict(install.migrated.capture_notes)
    assert set(notes) == {f"public.{t}" for t in SOURCE_TABLES}
    assert "session_replication_role = replica" in notes["public.patient_journey"]
    with psycopg.connect(install.url, autocommit=True) as conn:
        triggers = conn.execute(
            "SELECT purpose = 'replica' AS replica, found, as_installed FROM pipeline._capture_triggers()"
        ).fetchall()
    # the row-level trigger only on pipeline_owner's own tables: elsewhere it could not be
    # enabled REPLICA and would only cost every row the application writes
    assert (
        sorted(triggers)
        == [(False, True, True)] * (5 * 4 + 3 * 2) + [(True, False, False)] * 5 + [(True, True, True)] * 3
    )


def test_migrate_says_that_note_once_and_warns_of_no_full_runs(install: Install, tmp_path) -> None:
    env = clean_env(with_params(install.url, user="pipeline_owner"))
    out = assert_ok(cli("migrate", env=env, cwd=tmp_path))
    [note] = [line for line in out.splitlines() if line.startswith("note: change capture on ")]
    assert all(f"public.{t}" in note for t in SOURCE_TABLES)
    assert "runs will be full runs" not in out


def test_a_trigger_the_tables_owner_disabled_and_enabled_again_forces_one_full_run(db, owner) -> None:
    """The source tables' owner: make a change go unnoticed by switching a capture trigger off
    for one write. migrate could leave the triggers only enabled 'O' (not their owner), so the
    enabled state looks the same afterwards; the trigger's pg_trigger row version does not."""
    one_journey(db)
    run(db)
    owner.execute("ALTER TABLE public.patient_journey DISABLE TRIGGER pipeline_capture_update")
    reschedule(owner, "2026-06-01")
    owner.execute("ALTER TABLE public.patient_journey ENABLE TRIGGER pipeline_capture_update")
    result = run(db)
    assert (result["mode"], result["rows_updated"]) == ("full", 1)
    assert milestone(db) == "2026-06-01"
    # That full run recorded the new state: routine runs are routine again.
    assert run(db)["mode"] == "noop"
    reschedule(owner, "2026-06-02")
    assert (run(db)["mode"], milestone(db)) == ("incremental", "2026-06-02")


def test_the_new_trigger_state_is_recorded_only_by_a_succeeded_full_run(db, owner) -> None:
    """A full run that fails records nothing: the run after it is full again."""
    one_journey(db)
    run(db)
    owner.execute("ALTER TABLE public.patient_journey DISABLE TRIGGER pipeline_capture_update")
    reschedule(owner, "2026-06-01")
    owner.execute("ALTER TABLE public.patient_journey ENABLE TRIGGER pipeline_capture_update")
    db.execute(
        "ALTER TABLE pipeline.pipeline_runs ADD CONSTRAINT no_full_success "
        "CHECK (NOT (mode = 'full' AND status = 'succeeded')) NOT VALID"
    )
    with pytest.raises(psycopg.errors.ExternalRoutineException):
        run(db)
    db.execute("ALTER TABLE pipeline.pipeline_runs DROP CONSTRAINT no_full_success")
    result = run(db)
    assert (result["status"], result["mode"], result["rows_updated"]) == ("succeeded", "full", 1)


NO_OP = """
CREATE FUNCTION public.no_op() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE OR REPLACE TRIGGER pipeline_capture_update AFTER UPDATE ON public.patient_journey
    FOR EACH STATEMENT EXECUTE FUNCTION public.no_op();
"""


def test_a_capture_trigger_replaced_by_a_no_op_of_the_same_name_is_not_trusted(install, db, owner) -> None:
    """The source tables' owner: make changes go unnoticed by replacing pipeline_capture_update
    with a trigger of the same name that calls a function of its own."""
    one_journey(db)
    run(db)
    owner.execute(NO_OP)
    for day in ("2026-07-01", "2026-07-02"):  # every run stays full while the no-op is there
        reschedule(owner, day)
        result = run(db)
        assert (result["mode"], result["rows_updated"], milestone(db)) == ("full", 1, day)
    again = migrate(with_params(install.url, user="pipeline_owner"))
    assert again.unwatched == []  # migrate put the real trigger back
    assert run(db)["mode"] == "full"
    reschedule(owner, "2026-07-03")
    assert (run(db)["mode"], milestone(db)) == ("incremental", "2026-07-03")


@pytest.mark.parametrize(
    "replacement",
    [
        # the right function with the wrong arguments: it would queue schedule ids
        "AFTER UPDATE ON public.patient_journey REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION pipeline._capture_changes('schedule', 'id')",
        # once per row, not per statement
        "AFTER UPDATE ON public.patient_journey REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH ROW EXECUTE FUNCTION pipeline._capture_changes('patient_journey', 'id')",
        # never
        "AFTER UPDATE ON public.patient_journey REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT WHEN (false) EXECUTE FUNCTION pipeline._capture_changes('patient_journey', 'id')",
        # on another event
        "AFTER DELETE ON public.patient_journey REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION pipeline._capture_changes('patient_journey', 'id')",
    ],
    ids=["arguments", "level", "when-false", "event"],
)
def test_a_capture_trigger_that_differs_from_what_migrate_installs_makes_runs_full(db, replacement) -> None:
    one_journey(db)
    run(db)
    db.execute(f"CREATE OR REPLACE TRIGGER pipeline_capture_update {replacement}")
    reschedule(db, "2026-07-01")
    assert (run(db)["mode"], milestone(db)) == ("full", "2026-07-01")
    assert run(db)["mode"] == "full"


def test_a_column_rewritten_by_ddl_forces_a_full_run(db, owner) -> None:
    """The source tables' owner: change values with DDL, which fires no trigger."""
    one_journey(db)
    run(db)
    owner.execute(
        "ALTER TABLE public.patient_journey ALTER COLUMN operation_date TYPE timestamp "
        "USING operation_date + interval '7 days'"
    )
    result = run(db)
    assert (result["mode"], result["rows_updated"], milestone(db)) == ("full", 1, "2026-03-17")
    assert run(db)["mode"] == "noop"


def test_readiness_means_the_same_with_standard_conforming_strings_off(install, db) -> None:
    """A trigger missing and a look-alike named pipelineXcaptureXupdate in its place: no
    setting may turn the check's exact names into a pattern that the look-alike matches."""
    one_journey(db)
    run(db)

    def ready(setting: str) -> bool:
        # A session of its own: PL/pgSQL keeps a statement's plan, literals read, per session.
        options = f"-c standard_conforming_strings={setting}"
        with psycopg.connect(install.url, autocommit=True, options=options) as conn:
            conn.execute("SET ROLE pipeline_owner")  # as in a run, which has the owner's rights
            row = conn.execute("SELECT pipeline._change_capture_ready()").fetchone()
        return bool(row and row[0])

    assert ready("on") and ready("off")
    db.execute("DROP TRIGGER pipeline_capture_update ON public.patient_journey")
    db.execute(
        'CREATE TRIGGER "pipelineXcaptureXupdate" AFTER UPDATE ON public.patient_journey '
        "FOR EACH STATEMENT EXECUTE FUNCTION pipeline._capture_changes('full')"
    )
    db.execute('ALTER TABLE public.patient_journey ENABLE ALWAYS TRIGGER "pipelineXcaptureXupdate"')
    assert not ready("on") and not ready("off")


def test_rows_copied_in_and_merged_are_captured(db) -> None:
    one_journey(db)
    run(db)
    with db.cursor().copy(
        "COPY public.patient_journey (id, patient_id, journey_id, operation_date) FROM STDIN"
    ) as copy:
        copy.write_row((2, 502, 1, "2026-04-01"))
    assert (run(db)["mode"], run(db)["mode"]) == ("incremental", "noop")
    assert str(windows(db)[(2, 10)]["milestone_date"]) == "2026-04-01"
    db.execute(
        "MERGE INTO public.patient_journey AS t USING (VALUES (2, '2026-04-02'::date), (3, '2026-04-03')) "
        "AS v (id, day) ON t.id = v.id WHEN MATCHED THEN UPDATE SET operation_date = v.day "
        "WHEN NOT MATCHED THEN INSERT (id, patient_id, journey_id, operation_date) "
        "VALUES (v.id, 503, 1, v.day)"
    )
    result = run(db)
    assert (result["mode"], result["rows_inserted"], result["rows_updated"]) == ("incremental", 1, 1)


# --- settings.full_run_every -----------------------------------------------------------------


def age_last_full_run(conn: psycopg.Connection[Any], by: str) -> None:
    conn.execute(
        "UPDATE pipeline.pipeline_runs SET started_at = started_at - %s::interval "
        "WHERE mode = 'full' AND status = 'succeeded'",
        (by,),
    )


def test_a_routine_run_is_full_once_the_last_full_run_is_older_than_full_run_every(db) -> None:
    one_journey(db)
    assert run(db)["mode"] == "full"
    age_last_full_run(db, "23 hours")
    assert run(db)["mode"] == "noop"  # default 1 day: not yet
    age_last_full_run(db, "2 hours")
    assert run(db)["mode"] == "full"
    assert run(db)["mode"] == "noop"  # counted from that run now
    db.execute("UPDATE pipeline.settings SET full_run_every = '1 hour'")
    age_last_full_run(db, "61 minutes")
    assert run(db)["mode"] == "full"


def test_full_run_every_null_turns_the_safety_net_off(db) -> None:
    one_journey(db)
    run(db)
    db.execute("UPDATE pipeline.settings SET full_run_every = NULL")
    assert (
        run(db)["mode"] == "full"
    )  # a change of settings is one full run (report_time_zone re-dates results)
    age_last_full_run(db, "400 days")
    assert run(db)["mode"] == "noop"


def test_the_safety_net_counts_from_the_last_full_run_even_once_its_row_is_purged(db) -> None:
    one_journey(db)
    run(db)
    db.execute("DELETE FROM pipeline.pipeline_runs")  # as a retention shorter than a day would
    assert run(db)["mode"] == "noop"
    db.execute("UPDATE pipeline.change_capture_state SET recorded_at = recorded_at - interval '25 hours'")
    db.execute("DELETE FROM pipeline.pipeline_runs")
    assert run(db)["mode"] == "full"


@pytest.mark.parametrize("value", ["59 minutes", "367 days", "-1 day"])
def test_full_run_every_refuses_values_outside_an_hour_to_a_year(db, value) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("UPDATE pipeline.settings SET full_run_every = %s::interval", (value,))


def test_migrate_run_again_leaves_the_triggers_alone_so_routine_runs_stay_routine(install, db) -> None:
    one_journey(db)
    run(db)
    owner_url = with_params(install.url, user="pipeline_owner")
    assert migrate(owner_url).unwatched == []
    assert run(db)["mode"] == "noop"
    assert migrate(owner_url).unwatched == []
    assert run(db)["mode"] == "noop"


WRITER = "pjp_capture_writer"


def test_the_application_writer_cannot_switch_change_capture_off(install, db) -> None:
    """The application writer (INSERT, UPDATE, DELETE on the source tables): make a change go
    unnoticed. It may neither disable a capture trigger nor write in replica mode, and a
    change made through every kind of DML statement it may run is captured."""
    db.execute(f"DO $$ BEGIN CREATE ROLE {WRITER} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    tables = ", ".join(f"public.{t}" for t in SOURCE_TABLES)
    db.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {WRITER}")
    one_journey(db)
    run(db)
    with connect(install.url, WRITER) as writer:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            writer.execute("ALTER TABLE public.patient_journey DISABLE TRIGGER pipeline_capture_update")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            writer.execute("SET session_replication_role = replica")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            writer.execute("TRUNCATE public.survey_result")
        with writer.transaction():  # a writable CTE, several statements in one transaction
            writer.execute(
                "WITH moved AS (UPDATE public.patient_journey SET operation_date = '2026-08-01' "
                "WHERE id = 1 RETURNING id) "
                "INSERT INTO public.survey_result (id, patient_journey_id, activity_id) "
                "SELECT 1, id, 10 FROM moved"
            )
            writer.execute(
                "INSERT INTO public.patient_journey (id, patient_id, journey_id, operation_date) "
                "VALUES (2, 502, 1, '2026-08-02') ON CONFLICT DO NOTHING"
            )
    result = run(db)
    assert (result["mode"], result["rows_inserted"], result["rows_updated"]) == ("incremental", 1, 1)
    assert milestone(db) == "2026-08-01"
