"""The event trigger pipeline_source_guard (`python -m pytools guard`, a superuser's step)
closes the gap a run's lock leaves: a run locks the source tables ACCESS SHARE before it checks
them, which keeps out a policy or a swap for a view (ACCESS EXCLUSIVE) until the reads are done,
but not a new index, statistics object or child table. One made between the check and the reads
would be planned with pipeline_owner's rights, and the planner folds the constant parts of its
expressions, running the owner's functions. The guard refuses the command itself, so it never
commits, run or no run.

Installed as README "Roles" says: the source tables belong to a role of their own, which plants."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers.cli import NOT_MIGRATED, USAGE, assert_ok, assert_one_error_line, clean_env, cli
from tests.helpers.databases import (
    OWNER_CODE,
    OWNER_RANGE_TYPE,
    Install,
    connect,
    installed_with_a_tables_owner,
    with_params,
)
from tests.helpers.pipeline import run_in_thread, wait_until_blocked

Conn = psycopg.Connection[dict[str, Any]]

# owner_planned() is what the owner puts in an expression: IMMUTABLE, so the planner folds
# owner_planned(1), running OWNER_CODE's owner_code().
GUARD_OWNER_CODE = (
    OWNER_CODE
    + """
CREATE FUNCTION public.owner_planned(integer) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM public.owner_code();
    RETURN 1;
END;
$$;
"""
)

# Each way to give a source relation code the planner runs without ACCESS EXCLUSIVE: the
# statements the owner runs first (accepted), then the one the guard must refuse.
PLANTS = {
    "index predicate": (
        [],
        "CREATE INDEX planted ON public.patient_journey (id) WHERE public.owner_planned(1) > 0",
    ),
    "index expression": ([], "CREATE INDEX planted ON public.schedule ((public.owner_planned(1) + id))"),
    "statistics object": (
        [],
        "CREATE STATISTICS planted ON (public.owner_planned(1) + id), journey_id FROM public.patient_journey",
    ),
    "child with a CHECK constraint": (
        [],
        "CREATE TABLE public.planted (CHECK (public.owner_planned(1) > 0)) INHERITS (public.survey_result)",
    ),
    "index on a child": (
        ["CREATE TABLE public.planted () INHERITS (public.activity)"],
        "CREATE INDEX planted_index ON public.planted (id) WHERE public.owner_planned(1) > 0",
    ),
    "table with an index made a child": (
        [
            "CREATE TABLE public.planted (LIKE public.schedule)",
            "CREATE INDEX planted_index ON public.planted (id) WHERE public.owner_planned(1) > 0",
        ],
        "ALTER TABLE public.planted INHERIT public.schedule",
    ),
    "domain in an index expression": (
        ["CREATE DOMAIN public.owner_domain AS bigint"],  # no CHECK yet: ALTER DOMAIN may add one at any time
        "CREATE INDEX planted_index ON public.activity (((id)::public.owner_domain))",
    ),
    "partition key of an attached partition": (
        [
            "ALTER TABLE public.schedule RENAME TO schedule_plain",
            "CREATE TABLE public.schedule (id bigint, slug text) PARTITION BY LIST (id)",
            "GRANT SELECT, TRIGGER ON public.schedule TO pipeline_owner",
            "CREATE TABLE public.planted (id bigint, slug text) "
            "PARTITION BY RANGE ((id + public.owner_planned(0)))",
        ],
        "ALTER TABLE public.schedule ATTACH PARTITION public.planted DEFAULT",
    ),
    "commutator of an operator": (
        [
            "CREATE FUNCTION public.owner_eq(int8, int8) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$ "
            "BEGIN PERFORM public.owner_code(); RETURN $1 = $2; END $$",
            "CREATE OPERATOR public.=#= (LEFTARG = int8, RIGHTARG = int8, FUNCTION = public.owner_eq)",
            "CREATE OPERATOR public.=== (LEFTARG = int8, RIGHTARG = int8, FUNCTION = pg_catalog.int8eq, "
            "COMMUTATOR = OPERATOR(public.=#=), RESTRICT = scalarltsel)",
        ],
        "CREATE INDEX planted_index ON public.activity (schedule_id) "
        "WHERE (id IS NOT NULL) OR (5::int8 OPERATOR(public.===) schedule_id)",
    ),
    "range column in an index predicate": (
        [
            *OWNER_RANGE_TYPE,
            # a column no run reads, filled without a write the change capture would queue
            "ALTER TABLE public.patient_journey ADD COLUMN planted_range public.owner_range "
            "DEFAULT public.owner_range(1, 11)",
            "ANALYZE public.patient_journey",
        ],
        "CREATE INDEX planted_index ON public.patient_journey (id) "
        "WHERE id IS NOT NULL OR planted_range @> 5::bigint",
    ),
    "partition key on a range column": (
        [
            *OWNER_RANGE_TYPE,
            "ALTER TABLE public.schedule RENAME TO schedule_plain",
            "CREATE TABLE public.schedule (id bigint, slug text, planted_range public.owner_range) "
            "PARTITION BY LIST (id)",
            "GRANT SELECT, TRIGGER ON public.schedule TO pipeline_owner",
            "CREATE TABLE public.planted (id bigint, slug text, planted_range public.owner_range) "
            "PARTITION BY RANGE (planted_range)",
        ],
        "ALTER TABLE public.schedule ATTACH PARTITION public.planted DEFAULT",
    ),
    "foreign table made a child by ALTER FOREIGN TABLE": (
        [
            "CREATE FOREIGN TABLE public.planted (journey_id bigint, activity_id bigint) "
            "SERVER pjp_guard_server"
        ],
        "ALTER FOREIGN TABLE public.planted INHERIT public.journey_activity",
    ),
    "foreign table as a child": (
        [],
        "CREATE FOREIGN TABLE public.planted () INHERITS (public.journey_activity) SERVER pjp_guard_server",
    ),
}


@pytest.fixture
def install(empty_db_url: str) -> Iterator[Install]:
    with installed_with_a_tables_owner(empty_db_url, GUARD_OWNER_CODE) as installed:
        with connect(installed.url) as admin:  # a server the owner may use, for a foreign table
            admin.execute("CREATE FOREIGN DATA WRAPPER pjp_guard_wrapper")
            admin.execute("CREATE SERVER pjp_guard_server FOREIGN DATA WRAPPER pjp_guard_wrapper")
            admin.execute(f"GRANT USAGE ON FOREIGN SERVER pjp_guard_server TO {installed.owner}")
        try:
            yield installed
        finally:
            with connect(installed.url) as admin:
                admin.execute("DROP SERVER pjp_guard_server CASCADE")
                admin.execute("DROP FOREIGN DATA WRAPPER pjp_guard_wrapper CASCADE")


def guard(install: Install, tmp_path: Path) -> str:
    return assert_ok(cli("guard", cwd=tmp_path, env=clean_env(install.url)))


def ran_as(admin: Conn) -> list[str]:
    return [r["who"] for r in admin.execute("SELECT who FROM public.owner_code_ran").fetchall()]


def full_run(install: Install, lock_timeout: str | None = None) -> dict[str, Any]:
    """A full run as pipeline_runner (waiting at most lock_timeout for a lock, if given): its row."""
    failed = contextlib.suppress(psycopg.errors.ExternalRoutineException)  # its row says why
    with connect(install.as_role("pipeline_runner")) as runner, failed:
        if lock_timeout:
            runner.execute(f"SET lock_timeout = '{lock_timeout}'")
        runner.execute("CALL pipeline.run_patient_journey_pipeline('test', true)")
    with connect(install.url) as admin:
        row = admin.execute("SELECT * FROM pipeline.pipeline_runs ORDER BY run_id DESC LIMIT 1").fetchone()
    assert row is not None
    return row


def assert_a_run_waits_for_it_then_refuses(install: Install, admin: Conn, holder: Conn, index: str) -> None:
    """A full run started while `holder`'s transaction holds the guard's lock waits for it; once
    it commits, the run's check refuses the index it planted by name, and the owner's function
    never ran with pipeline_owner's rights."""
    outcome: dict[str, Any] = {}
    thread = run_in_thread(install.as_role("pipeline_runner"), "pjp_waiting_run", outcome, full=True)
    wait_until_blocked(admin, "pjp_waiting_run")  # on the lock the holder's command took
    holder.execute("COMMIT")
    thread.join(60)
    assert outcome["status"] == "error", outcome
    run = admin.execute("SELECT * FROM pipeline.pipeline_runs ORDER BY run_id DESC LIMIT 1").fetchone()
    assert run is not None and run["status"] == "failed"
    assert f"index {index} uses function public.owner_planned(integer)" in run["error_message"], run
    assert "pipeline_owner" not in ran_as(admin)


@pytest.mark.parametrize("kind", PLANTS)
def test_the_guard_refuses_every_kind_of_planted_code_and_runs_never_meet_it(
    install: Install, tmp_path: Path, kind: str
) -> None:
    """Each plant is refused naming the pipeline (SQLSTATE 42501), leaves nothing behind, and a
    full run that reads every source table afterwards succeeds without running the owner's code."""
    before, plant = PLANTS[kind]
    guard(install, tmp_path)
    with connect(install.as_role(install.owner)) as owner:
        for statement in before:
            owner.execute(statement)
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
            owner.execute(plant)
    message = refused.value.diag.message_primary or ""
    assert message.startswith("refused by the patient-journey pipeline: "), message
    assert any(
        n in message
        for n in (
            "public.owner_planned(integer)",
            "foreign table",
            "public.owner_domain",
            "operator public.",
            # an index predicate's or a partition key's range column
            "(column planted_range) would use function public.owner_diff(bigint,bigint)",
        )
    ), message
    with connect(install.url) as admin:
        # nothing a run reads calls the owner's function, and no planted relation is read
        assert admin.execute("SELECT * FROM pipeline._source_relations_planned_calls()").fetchall() == []
        read = {
            r["t"]
            for r in admin.execute(
                "SELECT 'public.' || c.relname AS t FROM pipeline._source_relations() AS s "
                "JOIN pg_class AS c ON c.oid = s.relation"
            )
        }
        assert read == {
            f"public.{t}"
            for t in ("patient_journey", "journey_activity", "activity", "schedule", "survey_result")
        } | ({"public.planted"} if kind == "index on a child" else set())
        assert full_run(install)["status"] == "succeeded"
        who = set(ran_as(admin))  # the owner's own index builds run it: in the refused command, rolled back
        assert who <= ({install.owner} if before else set()), who
        assert admin.execute("SELECT retention::text AS r FROM pipeline.settings").fetchone() == {
            "r": "30 days"
        }


def test_without_the_guard_a_runs_lock_does_not_keep_a_new_index_out(
    install: Install, tmp_path: Path
) -> None:
    """The gap itself: while a session holds the source table as a run's lock does (ACCESS SHARE),
    the owner's CREATE INDEX with a planted predicate commits; planning a read then runs the
    owner's function as the reading role. With the guard, the same CREATE INDEX is refused."""
    plant = "CREATE INDEX planted_index ON public.patient_journey (id) WHERE public.owner_planned(1) > 0"
    with connect(install.url) as admin, connect(install.as_role(install.owner)) as owner:
        owner.execute("SET lock_timeout = '5s'")
        with admin.transaction():
            admin.execute("LOCK TABLE public.patient_journey IN ACCESS SHARE MODE")
            owner.execute(plant)  # not blocked by the lock
            admin.execute("SELECT count(*) FROM public.patient_journey WHERE id = 1")
        reader = str(admin.execute("SELECT current_user AS u").fetchone()["u"])  # type: ignore[index]
        assert reader in ran_as(admin)  # planning the read ran it, as the reading role
        owner.execute("DROP INDEX public.planted_index")
        admin.execute("DELETE FROM public.owner_code_ran")
        guard(install, tmp_path)
        with admin.transaction():
            admin.execute("LOCK TABLE public.patient_journey IN ACCESS SHARE MODE")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                owner.execute(plant)
            admin.execute("SELECT count(*) FROM public.patient_journey WHERE id = 1")
        assert ran_as(admin) == []


def test_an_index_built_concurrently_stays_invalid_and_every_run_refuses_it(
    install: Install, tmp_path: Path
) -> None:
    """CREATE INDEX CONCURRENTLY commits its index before the guard can refuse it: refused, the
    index stays invalid (the planner never reads one), and each run refuses it by name, so its
    function never runs with pipeline_owner's rights, even after a REINDEX makes it valid."""
    guard(install, tmp_path)
    with connect(install.as_role(install.owner)) as owner:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            owner.execute(
                "CREATE INDEX CONCURRENTLY planted_index ON public.patient_journey (id) "
                "WHERE public.owner_planned(1) > 0"
            )
        with connect(install.url) as admin:
            valid = admin.execute(
                "SELECT indisvalid AS v FROM pg_index WHERE indexrelid = 'public.planted_index'::regclass"
            ).fetchone()
            assert valid == {"v": False}
            owner.execute("REINDEX INDEX public.planted_index")  # no DDL event: now valid
            run = full_run(install)
            assert run["status"] == "failed"
            assert (
                "index public.planted_index uses function public.owner_planned(integer)"
                in run["error_message"]
            )
            assert "pipeline_owner" not in ran_as(admin)  # only the owner's own index builds ran it
            assert admin.execute("SELECT retention::text AS r FROM pipeline.settings").fetchone() == {
                "r": "30 days"
            }


def test_the_guard_lets_every_other_command_through(install: Install, tmp_path: Path) -> None:
    """An index without the owner's functions, and the owner's functions on a table no run reads,
    are accepted; so is unrelated DDL while a source table already holds a planted index from
    before the guard (runs refuse that one by name)."""
    with connect(install.as_role(install.owner)) as owner:
        owner.execute("CREATE INDEX older_plant ON public.activity (id) WHERE public.owner_planned(1) > 0")
        guard(install, tmp_path)
        owner.execute("CREATE INDEX plain_index ON public.patient_journey (journey_id)")
        owner.execute("CREATE TABLE public.app_table (id integer CHECK (public.owner_planned(1) > 0))")
        owner.execute("CREATE INDEX app_index ON public.app_table (id) WHERE public.owner_planned(1) > 0")
        owner.execute("ALTER TABLE public.app_table ADD COLUMN note text")
    with connect(install.url) as admin:
        names = {
            r["i"] for r in admin.execute("SELECT indexrelid::regclass::text AS i FROM pg_index").fetchall()
        }
        assert {"plain_index", "app_index", "older_plant"} <= names
        run = full_run(install)
        assert run["status"] == "failed" and "older_plant" in run["error_message"]


def test_guard_needs_a_superuser_and_a_migrated_database_and_migrate_says_when_it_is_missing(
    install: Install, empty_db_url: str, tmp_path: Path, server: str
) -> None:
    """`guard` as pipeline_owner: one line, exit 2; on a database without the pipeline: exit 4.
    `migrate` notes the missing guard until a superuser installs it; `guard` is safe to repeat."""
    line = assert_one_error_line(
        cli("guard", cwd=tmp_path, env=clean_env(install.as_role("pipeline_owner"))), USAGE
    )
    assert "guard needs a superuser" in line
    unmigrated = with_params(server, dbname="template1")
    assert_one_error_line(cli("guard", cwd=tmp_path, env=clean_env(unmigrated)), NOT_MIGRATED)
    migrate = cli("migrate", cwd=tmp_path, env=clean_env(install.as_role("pipeline_owner")))
    assert (
        "note: event triggers pipeline_source_guard and pipeline_source_guard_start are not both installed"
        in assert_ok(migrate)
    )
    assert "installed event triggers pipeline_source_guard and pipeline_source_guard_start" in guard(
        install, tmp_path
    )
    guard(install, tmp_path)
    migrate = cli("migrate", cwd=tmp_path, env=clean_env(install.as_role("pipeline_owner")))
    assert "pipeline_source_guard" not in assert_ok(migrate)
    with connect(install.url) as admin:
        rows = admin.execute("SELECT evtname, evtenabled FROM pg_event_trigger").fetchall()
    assert sorted(rows, key=lambda r: r["evtname"]) == [
        {"evtname": "pipeline_source_guard", "evtenabled": "A"},
        {"evtname": "pipeline_source_guard_start", "evtenabled": "A"},
    ]


def test_two_commands_that_plant_only_together_make_the_next_run_wait_then_refuse(
    install: Install, tmp_path: Path
) -> None:
    """Neither command sees the other's uncommitted work: an index with the owner's function on
    a grandchild (no run reads it yet), and, from another session, linking its parent under
    public.activity (no bad index it can see). Each passes the guard, but each holds the lock
    a run takes before its check: the run waits for both to commit, then its check sees the
    index and refuses it by name, so the function never runs with pipeline_owner's rights."""
    guard(install, tmp_path)
    owner_url = install.as_role(install.owner)
    with connect(owner_url) as first, connect(owner_url) as second, connect(install.url) as admin:
        first.execute("CREATE TABLE public.parent_table (id bigint, content_slug text, schedule_id bigint)")
        first.execute("CREATE TABLE public.grandchild () INHERITS (public.parent_table)")
        first.execute("BEGIN")
        first.execute(
            "CREATE INDEX planted_index ON public.grandchild (id) WHERE public.owner_planned(1) > 0"
        )
        second.execute("ALTER TABLE public.parent_table INHERIT public.activity")  # commits: sees no index
        assert_a_run_waits_for_it_then_refuses(install, admin, first, "public.planted_index")


def test_a_guarded_command_waits_while_a_run_is_between_its_check_and_its_reads(
    install: Install, tmp_path: Path
) -> None:
    """A session holding the lock as a run does from its check to the end of its reads: the
    owner's CREATE INDEX on a source table waits, and completes once the lock is released;
    a CREATE TABLE in another schema does not wait."""
    guard(install, tmp_path)
    with connect(install.url) as admin, connect(install.as_role(install.owner)) as owner:
        admin.execute("CREATE SCHEMA elsewhere AUTHORIZATION " + install.owner)
        done: dict[str, Any] = {}

        def create_index() -> None:
            try:
                with psycopg.connect(
                    install.as_role(install.owner), autocommit=True, application_name="pjp_ddl"
                ) as c:
                    c.execute("CREATE INDEX plain_index ON public.patient_journey (journey_id)")
                done["ok"] = True
            except psycopg.Error as exc:  # shown by the assertions below
                done["error"] = exc

        with admin.transaction():
            admin.execute("LOCK TABLE pipeline.source_guard_lock IN SHARE MODE")
            owner.execute("CREATE TABLE elsewhere.app_table (id integer)")  # not waiting
            waiter = threading.Thread(target=create_index, daemon=True)
            waiter.start()
            with connect(install.url) as watcher:  # outside the transaction: pg_stat_activity is live
                wait_until_blocked(watcher, "pjp_ddl")
            assert done == {}
        waiter.join(30)
        assert done == {"ok": True}


def test_a_ddl_transaction_held_open_fails_the_run_naming_its_session(
    install: Install, tmp_path: Path
) -> None:
    """A planter (a role that may only create in public, as in older databases): create a table
    of its own there and keep the transaction open. The guard takes its lock for the command,
    so a run that must read waits; it fails at its lock_timeout, and the failure a monitor sees
    names the session (pid, role, application) that held it, not only "lock timeout"."""
    guard(install, tmp_path)
    planter = f"pjp_planter_{install.owner[-8:]}"
    with connect(install.url) as admin:
        admin.execute(f"CREATE ROLE {planter} LOGIN")
        admin.execute(f"GRANT CREATE ON SCHEMA public TO {planter}")
        try:
            with psycopg.connect(
                install.as_role(planter), autocommit=True, application_name="pjp_open_ddl"
            ) as ddl:
                ddl.execute("BEGIN")
                ddl.execute("CREATE TABLE public.planters_table (id integer)")
                run = full_run(install, lock_timeout="2s")
                assert run["status"] == "failed"
                assert (
                    "lock timeout: waited 2s for SHARE on pipeline.source_guard_lock: "
                    f"pid {ddl.info.backend_pid} (role {planter}, application 'pjp_open_ddl'"
                ) in run["error_message"], run["error_message"]
                assert "holds pipeline.source_guard_lock in ROW EXCLUSIVE mode" in run["error_message"]
                ddl.execute("ROLLBACK")
            assert full_run(install)["status"] == "succeeded"
        finally:
            admin.execute(f"DROP OWNED BY {planter}")
            admin.execute(f"DROP ROLE {planter}")


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
def test_a_command_whose_snapshot_predates_a_child_link_still_makes_runs_wait_then_refuse(
    install: Install, tmp_path: Path, isolation: str
) -> None:
    """The owner with a schema of its own: a transaction takes its snapshot, another session
    then makes a table there a child of public.activity, and the first indexes that table with
    its function. The first's catalog reads see its old snapshot, in which the table is no
    child of anything, so the guard cannot refuse the index; it takes the lock anyway, so the
    run waits for that transaction, then its check sees the index and refuses it by name."""
    guard(install, tmp_path)
    owner_url = install.as_role(install.owner)
    with connect(install.url) as admin, connect(owner_url) as first, connect(owner_url) as second:
        admin.execute(f"CREATE SCHEMA owners_own AUTHORIZATION {install.owner}")
        second.execute(
            "CREATE TABLE owners_own.later_child (id bigint, content_slug text, schedule_id bigint)"
        )
        first.execute(f"BEGIN ISOLATION LEVEL {isolation}")
        first.execute("SELECT 1")  # the snapshot
        second.execute("ALTER TABLE owners_own.later_child INHERIT public.activity")
        first.execute(
            "CREATE INDEX planted_index ON owners_own.later_child (id) WHERE public.owner_planned(1) > 0"
        )
        assert_a_run_waits_for_it_then_refuses(install, admin, first, "owners_own.planted_index")


def test_under_repeatable_read_only_temporary_tables_pass_without_the_guards_lock(
    install: Install, tmp_path: Path
) -> None:
    """While a session holds the lock as a run does from its check to the end of its reads, a
    REPEATABLE READ transaction may still create a temporary table (no run reads another
    session's), but a table in a schema of its own waits for the lock, as it would not under
    read committed."""
    guard(install, tmp_path)
    with connect(install.url) as admin, connect(install.as_role(install.owner)) as owner:
        admin.execute(f"CREATE SCHEMA owners_own AUTHORIZATION {install.owner}")
        owner.execute("SET lock_timeout = '1s'")
        with admin.transaction():
            admin.execute("LOCK TABLE pipeline.source_guard_lock IN SHARE MODE")
            owner.execute("CREATE TABLE owners_own.committed_read (id integer)")  # read committed: no wait
            with owner.transaction():
                owner.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                owner.execute("CREATE TEMP TABLE scratch (id integer)")
                owner.execute("CREATE INDEX ON scratch (id)")
            with pytest.raises(psycopg.errors.LockNotAvailable), owner.transaction():
                owner.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                owner.execute("CREATE TABLE owners_own.repeatable_read (id integer)")


def test_ordinary_indexes_on_the_owners_range_and_composite_columns_are_accepted(
    install: Install, tmp_path: Path
) -> None:
    """No false alarm: a range type of the owner's whose subtype_diff is the catalog's (the
    PostgreSQL manual's floatrange), a composite type of its own and a table's row type, each
    a column of a source table with an index (GiST, plain, partial): the guard accepts them,
    the check finds nothing, and a full run succeeds."""
    guard(install, tmp_path)
    with connect(install.as_role(install.owner)) as owner:
        owner.execute("CREATE TYPE public.floatrange AS RANGE (SUBTYPE = float8, SUBTYPE_DIFF = float8mi)")
        owner.execute("CREATE TYPE public.owner_pair AS (a integer, b integer)")
        owner.execute(
            "ALTER TABLE public.activity ADD COLUMN valid public.floatrange, "
            "ADD COLUMN pair public.owner_pair, ADD COLUMN copied public.schedule"
        )
        owner.execute("CREATE INDEX range_index ON public.activity USING gist (valid)")
        owner.execute(
            "CREATE INDEX partial_range ON public.activity (id) WHERE id IS NOT NULL OR valid @> 1.5::float8"
        )
        owner.execute("CREATE INDEX pair_index ON public.activity (pair)")
        owner.execute("CREATE INDEX row_index ON public.activity (copied)")
    with connect(install.url) as admin:
        assert admin.execute("SELECT * FROM pipeline._source_relations_planned_calls()").fetchall() == []
    assert full_run(install)["status"] == "succeeded"


def test_a_role_that_can_only_connect_cannot_delay_runs_through_the_guard(
    install: Install, tmp_path: Path
) -> None:
    """Actor: anyone who can connect, who may create temporary tables. A temporary table made a
    child of another, with an index whose command names CONCURRENTLY in a comment, in a
    transaction held open: no run reads another session's temporary tables, so the guard takes
    no lock for them, and a run does not wait. Nor for a CREATE INDEX CONCURRENTLY on a source
    table in a transaction block, which fires the start trigger before PostgreSQL refuses it: a
    role that cannot own a source table takes no lock there."""
    guard(install, tmp_path)
    nobody = f"pjp_nobody_{install.owner[-8:]}"
    with connect(install.url) as admin:
        admin.execute(f"CREATE ROLE {nobody} LOGIN")
        try:
            with connect(install.as_role(nobody)) as intruder:
                intruder.execute("BEGIN")
                intruder.execute("CREATE TEMP TABLE parent_table (id integer)")
                intruder.execute("CREATE TEMP TABLE child_table () INHERITS (parent_table)")
                intruder.execute("CREATE INDEX ON child_table (id) /* concurrently */")
                assert full_run(install, lock_timeout="2s")["status"] == "succeeded"
                intruder.execute("ROLLBACK")
                # CONCURRENTLY on a source table in a transaction block: refused by PostgreSQL
                # after the start trigger fired, leaving the transaction aborted but open
                intruder.execute("BEGIN")
                with pytest.raises(psycopg.errors.ActiveSqlTransaction):
                    intruder.execute("CREATE INDEX CONCURRENTLY intruders ON public.survey_result (id)")
                assert full_run(install, lock_timeout="2s")["status"] == "succeeded"
                intruder.execute("ROLLBACK")
        finally:
            admin.execute(f"DROP OWNED BY {nobody}")
            admin.execute(f"DROP ROLE {nobody}")


def test_an_index_built_concurrently_during_a_run_waits_for_its_reads_and_is_never_planned(
    install: Install, tmp_path: Path
) -> None:
    """The owner, between a run's check and its reads (held there by a REINDEX of one of its
    indexes): CREATE INDEX CONCURRENTLY with its function in the predicate, cancelled by a
    statement_timeout in its last wait so that no ddl_command_end fires, then REINDEX to make
    it valid (no event trigger). Without the start trigger, the run's planning then ran the
    function as pipeline_owner; with it, the command waits for the run's reads at its start, is
    cancelled before it makes any index, and the run never meets one."""
    guard(install, tmp_path)
    owner_url = install.as_role(install.owner)
    with connect(install.url) as admin, connect(owner_url) as holder, connect(owner_url) as planter:
        holder.execute("BEGIN")
        holder.execute("REINDEX INDEX public.patient_journey_id_idx")  # the run's planning waits on it
        outcome: dict[str, Any] = {}
        thread = run_in_thread(install.as_role("pipeline_runner"), "pjp_held_run", outcome, full=True)
        wait_until_blocked(admin, "pjp_held_run")
        planter.execute("SET statement_timeout = '2s'")
        with pytest.raises(psycopg.errors.QueryCanceled):
            planter.execute(
                "CREATE INDEX CONCURRENTLY planted_index ON public.survey_result (activity_id) "
                "WHERE public.owner_planned(1) > 0"
            )
        with contextlib.suppress(psycopg.errors.UndefinedTable):
            planter.execute("REINDEX INDEX public.planted_index")
        holder.execute("COMMIT")
        thread.join(60)
        assert outcome["status"] == "returned", outcome
        assert "pipeline_owner" not in ran_as(admin)
        assert admin.execute("SELECT to_regclass('public.planted_index') AS i").fetchone() == {"i": None}


def test_a_reindex_held_open_fails_the_run_naming_it(install: Install) -> None:
    """The owner's REINDEX of a source table's index, in a transaction held open: its SHARE lock
    on the table lets the run's own lock through, but planning a read waits for the index. The
    run fails at its lock_timeout naming the session and the index, not only "lock timeout"."""
    with psycopg.connect(
        install.as_role(install.owner), autocommit=True, application_name="pjp_reindexer"
    ) as holder:
        holder.execute("BEGIN")
        holder.execute("REINDEX INDEX public.patient_journey_id_idx")
        run = full_run(install, lock_timeout="1s")
        assert run["status"] == "failed"
        assert (
            "canceling statement due to lock timeout on a source table or an index of one: "
            f"pid {holder.info.backend_pid} (role {install.owner}, application 'pjp_reindexer'"
        ) in run["error_message"], run["error_message"]
        assert "holds public.patient_journey_id_idx in ACCESS EXCLUSIVE mode" in run["error_message"]
        holder.execute("ROLLBACK")


def test_a_child_made_by_create_schema_is_refused(install: Install, tmp_path: Path) -> None:
    """The owner, let create schemas: CREATE SCHEMA with elements fires no event for its CREATE
    TABLE and CREATE INDEX, only its own; the guard covers it, so a child of a source table
    with the owner's CHECK, or an index with its predicate, is refused with the schema."""
    guard(install, tmp_path)
    with connect(install.url) as admin:
        admin.execute(f'GRANT CREATE ON DATABASE "{admin.info.dbname}" TO {install.owner}')
    with connect(install.as_role(install.owner)) as owner:
        for element in (
            "CREATE TABLE c (CHECK (public.owner_planned(1) > 0)) INHERITS (public.survey_result)",
            "CREATE TABLE c () INHERITS (public.survey_result) "
            "CREATE INDEX planted_index ON c (activity_id) WHERE public.owner_planned(1) > 0",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="refused by the patient-journey"):
                owner.execute(f"CREATE SCHEMA planted {element}")
    with connect(install.url) as admin:
        assert admin.execute("SELECT to_regnamespace('planted') AS n").fetchone() == {"n": None}
        assert full_run(install)["status"] == "succeeded"
        assert "pipeline_owner" not in ran_as(admin)


def test_renaming_a_schema_to_public_waits_for_runs_and_is_refused_if_it_plants(
    install: Install, tmp_path: Path
) -> None:
    """The owner, owning schema public (as a database's owner does in PostgreSQL 15) and let
    create schemas: copies of the source tables in a schema of its own, one with an index of its
    function (no run reads them, so the guard lets them be), then that schema renamed to public
    in place of the real one. No table is touched, yet the source tables are now others: the
    guard takes its lock for a schema renamed, checks the tables that are then the source
    tables, and refuses the rename; runs keep reading the real ones."""
    guard(install, tmp_path)
    with connect(install.url) as admin:
        admin.execute(f"ALTER SCHEMA public OWNER TO {install.owner}")
        admin.execute(f'GRANT CREATE ON DATABASE "{admin.info.dbname}" TO {install.owner}')
        try:
            with connect(install.as_role(install.owner)) as owner:
                owner.execute("CREATE SCHEMA stand_in")
                for table in ("patient_journey", "journey_activity", "activity", "schedule", "survey_result"):
                    owner.execute(f"CREATE TABLE stand_in.{table} (LIKE public.{table} INCLUDING ALL)")
                owner.execute(
                    "CREATE INDEX planted_index ON stand_in.activity (id) WHERE public.owner_planned(1) > 0"
                )
                for refused in (
                    "schema public would be one whose tables pipeline_owner may not read",
                    "planted_index",
                ):
                    with (
                        pytest.raises(psycopg.errors.InsufficientPrivilege, match=refused),
                        owner.transaction(),
                    ):
                        owner.execute("ALTER SCHEMA public RENAME TO public_before")
                        owner.execute("ALTER SCHEMA stand_in RENAME TO public")
                    # the second time, granted as README "Roles" has the real ones granted
                    owner.execute("GRANT USAGE ON SCHEMA stand_in TO pipeline_owner")
                    owner.execute("GRANT SELECT, TRIGGER ON ALL TABLES IN SCHEMA stand_in TO pipeline_owner")
            assert admin.execute("SELECT to_regclass('public.activity')::text AS t").fetchone() == {
                "t": "activity"
            }
            assert full_run(install)["status"] == "succeeded"
            assert "pipeline_owner" not in ran_as(admin)
        finally:
            admin.execute("ALTER SCHEMA public OWNER TO pg_database_owner")
