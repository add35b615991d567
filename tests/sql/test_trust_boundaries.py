"""The run steps, the preview and the source tables' checks against hostile sessions:
each test plays an actor of the threat model against a real server, installed as README
"Roles" says: the source tables belong to a role of their own, pipeline_owner holds SELECT and
TRIGGER on them and runs `migrate`, pipeline_runner gets what `migrate` grants it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.helpers.databases import OWNER_CODE, Install, connect, installed_with_a_tables_owner, with_params
from tests.helpers.pipeline import one_journey, run_in_thread, wait_until_blocked

Conn = psycopg.Connection[dict[str, Any]]

# The runner's bait: a deferred constraint trigger on a temporary table of its own. The event
# it queues fires at the next SET CONSTRAINTS ALL IMMEDIATE, as whoever runs that statement.
RUNNER_BAIT = """
CREATE TEMP TABLE pjp_loot (who text, journeys bigint, candidates_visible boolean);
GRANT ALL ON pg_temp.pjp_loot TO PUBLIC;
CREATE TEMP TABLE pjp_bait (x integer);
CREATE FUNCTION pg_temp.pjp_steal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pg_temp.pjp_loot
    SELECT current_user, (SELECT count(*) FROM public.patient_journey),
           to_regclass('pg_temp.run_candidate') IS NOT NULL;
    UPDATE pipeline.settings SET retention = '1 hour';
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;  -- as the runner itself (at COMMIT) it may do none of this
END;
$$;
CREATE CONSTRAINT TRIGGER pjp_steal AFTER INSERT ON pg_temp.pjp_bait
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pg_temp.pjp_steal();
"""


@pytest.fixture
def install(empty_db_url: str) -> Iterator[Install]:
    with installed_with_a_tables_owner(empty_db_url, OWNER_CODE) as installed:
        yield installed


def retention(admin: Conn) -> str:
    row = admin.execute("SELECT retention::text AS r FROM pipeline.settings").fetchone()
    assert row is not None
    return str(row["r"])


# --- pipeline_runner ------------------------------------------------------------------------


@pytest.mark.parametrize("step", ["_begin_run", "_execute_run"])
def test_the_runners_deferred_trigger_never_fires_inside_a_step_with_the_owners_rights(
    install: Install, step: str
) -> None:
    """Actor: pipeline_runner (must never write a table except through a real run, nor read the
    source tables). It may call _begin_run and _execute_run by hand (migrate grants them). In a
    transaction of its own it first queues an event of a deferred constraint trigger on a temp
    table of its own, then calls the step: the step's SET CONSTRAINTS ALL IMMEDIATE fires the
    runner's trigger function there, as pipeline_owner (PostgreSQL 15 runs a deferred trigger
    as the role current when it fires). Older than issue 9; with issue 9 the function also
    finds the run's candidate views in place."""
    with connect(install.as_role("pipeline_runner")) as runner, connect(install.url) as admin:
        runner.execute(RUNNER_BAIT)
        if step == "_execute_run":
            row = runner.execute("SELECT pipeline._begin_run('manual') AS r").fetchone()
            assert row is not None
            call = ("SELECT pipeline._execute_run(%s, true)", (row["r"],))
        else:
            call = ("SELECT pipeline._begin_run('manual')", ())
        try:
            with runner.transaction():
                runner.execute("INSERT INTO pg_temp.pjp_bait VALUES (1)")
                runner.execute(*call)
        except psycopg.Error:
            pass  # a step that refuses a transaction with the caller's own writes in it
        loot = runner.execute("SELECT who, journeys, candidates_visible FROM pg_temp.pjp_loot").fetchall()
        assert [r for r in loot if r["who"] != "pipeline_runner"] == []
        assert retention(admin) == "30 days"


# --- the source tables' owner ---------------------------------------------------------------


def test_a_preview_never_runs_a_policy_of_the_tables_owner_with_the_previewers_rights(
    install: Install,
) -> None:
    """Actor: the source tables' owner (must never run code with pipeline_owner's rights
    unnoticed). It puts a row-level security policy calling its function on public.schedule.
    A run refuses that table before reading it (_check_source_tables) and reads with
    row_security = off; pipeline.preview_run(), new in issue 9 and PUBLIC, does neither, so
    pipeline_owner previewing (as README "What a run does" suggests a DBA do) runs the owner's
    function with its own rights: here it shortens settings.retention, kept as soon as the
    preview's transaction commits (psql's autocommit does at once)."""
    with connect(install.as_role(install.owner)) as owner:
        owner.execute("ALTER TABLE public.schedule ENABLE ROW LEVEL SECURITY")
        owner.execute("CREATE POLICY everyone ON public.schedule USING (public.owner_code())")
    with connect(install.as_role("pipeline_owner")) as dba, connect(install.url) as admin:
        with contextlib.suppress(psycopg.Error):  # a preview that refuses the table, as a run does
            dba.execute("SELECT pipeline.preview_run()")
        assert admin.execute("SELECT who FROM public.owner_code_ran").fetchall() == []
        assert retention(admin) == "30 days"


# --- anyone who can connect (no grants) -------------------------------------------------------


def test_a_role_that_can_only_connect_sees_no_trace_of_a_runs_views_while_it_runs(
    db: Conn, db_url: str
) -> None:
    """Actor: anyone who can connect (must never read results). pg_class and pg_rewrite are
    readable by every role, and pg_get_viewdef() would hand it the SQL a run built (the
    milestones of pipeline.milestone, which it may not read). It sees none, nor any of the
    unlogged tables a full run works in (in schema pipeline, where parallel workers can read
    them): all are made and dropped inside the run's one transaction, so their catalog rows are
    never committed. Held here after the views are made (step 3 waits for a lock on pipeline.held_back_pair,
    while the run already holds the source tables that only step 2 reads)."""
    one_journey(db, slug="2d-post-op")
    role = f"pjp_nobody_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE ROLE {role} LOGIN")
    holder = psycopg.connect(db_url, autocommit=False)
    try:
        with connect(with_params(db_url, user=role)) as nobody:
            holder.execute("LOCK TABLE pipeline.held_back_pair IN ACCESS EXCLUSIVE MODE")
            outcome: dict[str, Any] = {}
            thread = run_in_thread(with_params(db_url, user="pipeline_runner"), "pjp-viewed", outcome)
            pid = wait_until_blocked(db, "pjp-viewed")
            step_2_ran = db.execute(
                "SELECT count(*) AS n FROM pg_locks "
                "WHERE pid = %s AND relation = 'public.survey_result'::regclass",
                (pid,),
            ).fetchone()
            views = nobody.execute(
                "SELECT c.oid::regclass::text AS name, pg_get_viewdef(c.oid) AS sql "
                "FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace "
                "WHERE n.nspname LIKE 'pg^_temp^_%' ESCAPE '^' OR c.relpersistence <> 'p'"
            ).fetchall()
            # the relations the run had made by then, which no other session can see: it holds
            # them locked (their oids are in pg_locks, not in pg_class)
            made = db.execute(
                "SELECT count(*) AS n FROM pg_locks AS l "
                "WHERE l.pid = %s AND l.locktype = 'relation' "
                "  AND NOT EXISTS (SELECT FROM pg_class AS c WHERE c.oid = l.relation)",
                (pid,),
            ).fetchone()
            holder.rollback()
            thread.join(60)
            assert outcome == {"status": "returned"}
        assert step_2_ran == {"n": 1}
        assert made is not None and made["n"] > 0
        assert views == []
    finally:
        holder.close()
        db.execute(f"DROP ROLE {role}")


def test_a_source_table_swapped_for_a_view_while_a_run_waits_is_never_read_with_the_owners_rights(
    install: Install,
) -> None:
    """Actor: the source tables' owner. _check_source_tables looks at the source relations
    without locking them; the run takes its first lock on one (public.schedule, in
    _parse_schedules) only after. The owner holds public.schedule locked, so the run waits just
    after the check, then swaps public.activity for a view over it that calls its function,
    and lets the run go on: _prepare_candidates reads the view, and the function runs with
    pipeline_owner's rights. Older than issue 9 (the same order of check and reads)."""
    with connect(install.url) as admin, connect(install.as_role(install.owner)) as owner:
        owner.autocommit = False
        owner.execute("LOCK TABLE public.schedule IN ACCESS EXCLUSIVE MODE")
        outcome: dict[str, Any] = {}
        thread = run_in_thread(install.as_role("pipeline_runner"), "pjp-swapped", outcome)
        wait_until_blocked(admin, "pjp-swapped")
        owner.execute("ALTER TABLE public.activity RENAME TO activity_kept")
        owner.execute(
            "CREATE VIEW public.activity AS "
            "SELECT a.* FROM public.activity_kept AS a WHERE public.owner_code()"
        )
        owner.execute("GRANT SELECT ON public.activity TO pipeline_owner")
        owner.commit()
        thread.join(90)
        assert "status" in outcome
        assert admin.execute("SELECT who FROM public.owner_code_ran").fetchall() == []
        assert retention(admin) == "30 days"
