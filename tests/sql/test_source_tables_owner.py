"""Code of the source tables' owner never runs with pipeline_owner's rights during a run
(issue 8): a run reads the source tables as pipeline_owner (its steps are SECURITY DEFINER), so
a row-level security policy, or a view or foreign table standing in for a table, would run the
owner's code with the pipeline's rights. The run reads with row_security = off and refuses,
before it reads anything, a source relation that is not a plain table or whose policies would
apply to it, naming the relation and the fix.

Installed as the README's roles would: the source tables belong to a role of their own (the
application's), pipeline_owner holds SELECT and TRIGGER on them and runs `migrate`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.helpers.databases import (
    OWNER_CODE,
    OWNER_RANGE_TYPE,
    Install,
    connect,
    installed_with_a_tables_owner,
)

Conn = psycopg.Connection[dict[str, Any]]


@pytest.fixture
def install(empty_db_url: str) -> Iterator[Install]:
    with installed_with_a_tables_owner(empty_db_url, OWNER_CODE) as installed:
        yield installed


def run_as_runner(install: Install) -> psycopg.Error | None:
    """A run as pg_cron's role would start it; the error it raised, if any."""
    with connect(install.as_role("pipeline_runner")) as runner:
        try:
            runner.execute("CALL pipeline.run_patient_journey_pipeline()")
        except psycopg.Error as exc:
            return exc
    return None


def untouched(admin: Conn) -> None:
    """Nothing of the owner's code ran, and nothing it tried happened."""
    assert admin.execute("SELECT who FROM public.owner_code_ran").fetchall() == []
    assert admin.execute("SELECT retention::text AS r FROM pipeline.settings").fetchone() == {"r": "30 days"}
    assert admin.execute("SELECT to_regclass('pipeline.planted') AS t").fetchone() == {"t": None}


def last_run(admin: Conn) -> dict[str, Any]:
    row = admin.execute("SELECT * FROM pipeline.pipeline_runs ORDER BY run_id DESC LIMIT 1").fetchone()
    assert row is not None
    return row


def test_a_row_level_security_policy_of_the_tables_owner_never_runs_with_the_pipelines_rights(
    install: Install,
) -> None:
    """The source tables' owner (threat-model.md: must never run code with pipeline_owner's
    rights unnoticed) puts a policy on public.schedule whose function tries to shorten
    settings.retention and plant a table in schema pipeline: the function never runs, the run
    fails naming the table and the two fixes, and each fix lets runs succeed, still without
    running it. A policy for pipeline_owner is no fix: the run reads with row_security = off."""
    with connect(install.as_role(install.owner)) as owner:
        owner.execute("ALTER TABLE public.schedule ENABLE ROW LEVEL SECURITY")
        owner.execute("CREATE POLICY everyone ON public.schedule USING (public.owner_code())")
    with connect(install.url) as admin:
        error = run_as_runner(install)
        assert isinstance(error, psycopg.errors.ExternalRoutineException)
        message = error.diag.message_primary or ""
        assert "public.schedule has row-level security that applies to pipeline_owner" in message
        assert "ALTER ROLE pipeline_owner BYPASSRLS" in message
        assert (
            "ALTER TABLE public.schedule DISABLE ROW LEVEL SECURITY" in message and install.owner in message
        )
        failed = last_run(admin)
        assert failed["status"] == "failed" and "SQLSTATE 42501" in failed["error_message"]
        untouched(admin)

        with connect(install.as_role(install.owner)) as owner:
            owner.execute("CREATE POLICY pipeline_reads ON public.schedule TO pipeline_owner USING (true)")
        assert isinstance(run_as_runner(install), psycopg.errors.ExternalRoutineException)
        untouched(admin)

        admin.execute("ALTER ROLE pipeline_owner BYPASSRLS")  # fix 1, by a superuser
        assert run_as_runner(install) is None
        assert (last_run(admin)["status"], last_run(admin)["rows_inserted"]) == ("succeeded", 1)
        admin.execute("ALTER ROLE pipeline_owner NOBYPASSRLS")
        untouched(admin)

        with connect(install.as_role(install.owner)) as owner:  # fix 2, by the owner
            owner.execute("ALTER TABLE public.schedule DISABLE ROW LEVEL SECURITY")
            # a change to read: a no-op run reads no source table, so it would prove nothing
            owner.execute("UPDATE public.schedule SET slug = '5d-2d-pre-op' WHERE id = 100")
        assert run_as_runner(install) is None
        assert (last_run(admin)["status"], last_run(admin)["mode"]) == ("succeeded", "incremental")
        untouched(admin)


# Code of the owner's that a run's read would run, planted after a run (no guard installed):
# what the owner does before that run, the statements that plant, and what the failed run's
# message names.
PLANTED_AFTER_A_RUN = {
    "policy": (
        [],
        [
            "ALTER TABLE public.patient_journey ENABLE ROW LEVEL SECURITY",
            "CREATE POLICY everyone ON public.patient_journey USING (public.owner_code())",
        ],
        "public.patient_journey has row-level security",
    ),
    "index predicate": (
        [],
        [
            "CREATE FUNCTION public.owner_zero() RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$ "
            "BEGIN PERFORM public.owner_code(); RETURN 0; END $$",
            "CREATE INDEX pj_owner ON public.patient_journey (id) WHERE public.owner_zero() = 0",
        ],
        "index public.pj_owner uses function public.owner_zero()",
    ),
    # estimating the predicate's range clause calls the range's subtype_diff: the read's own
    # clause (id IS NOT NULL) implies the predicate, so the planner costs the index
    "range column in an index predicate": (
        [
            *OWNER_RANGE_TYPE,
            # a column no run reads, filled without a write the change capture would queue
            "ALTER TABLE public.patient_journey ADD COLUMN planted_range public.owner_range "
            "DEFAULT public.owner_range(1, 11)",
            "ANALYZE public.patient_journey",
        ],
        [
            "CREATE INDEX pj_owner ON public.patient_journey (id) "
            "WHERE id IS NOT NULL OR planted_range @> 5::bigint",
        ],
        "index public.pj_owner (column planted_range) uses function public.owner_diff(bigint,bigint)",
    ),
}


@pytest.mark.parametrize("kind", list(PLANTED_AFTER_A_RUN))
def test_code_planted_after_a_run_fails_the_next_run_that_reads_and_never_runs(
    install: Install, kind: str
) -> None:
    """The check runs before a run's first read, not in a no-op run, which reads no source
    table (so plans none): the owner's policy or partial index, put on public.patient_journey
    after a run, lets the next no-op run succeed without its function running, and fails the
    first run that must read, naming it, still without running it."""
    preparation, statements, named = PLANTED_AFTER_A_RUN[kind]
    with connect(install.as_role(install.owner)) as owner:
        for statement in preparation:
            owner.execute(statement)
    assert run_as_runner(install) is None
    with connect(install.as_role(install.owner)) as owner:
        for statement in statements:
            owner.execute(statement)
    with connect(install.url) as admin:
        admin.execute("DELETE FROM public.owner_code_ran")  # the index's build ran it, as the owner
        assert run_as_runner(install) is None
        assert (last_run(admin)["status"], last_run(admin)["mode"]) == ("succeeded", "noop")
        untouched(admin)

        with connect(install.as_role(install.owner)) as owner:
            owner.execute("UPDATE public.patient_journey SET operation_date = '2026-03-11' WHERE id = 1")
        admin.execute("DELETE FROM public.owner_code_ran")  # the UPDATE's index entry ran it, as the owner
        error = run_as_runner(install)
        assert isinstance(error, psycopg.errors.ExternalRoutineException)
        assert named in (error.diag.message_primary or "")
        assert (last_run(admin)["status"], last_run(admin)["mode"]) == ("failed", "incremental")
        untouched(admin)
        # the failed run kept the change queued for the run after the fix
        queued = admin.execute("SELECT count(*) AS n FROM pipeline.change_queue").fetchone()
        assert queued is not None and queued["n"] > 0


def test_row_security_off_keeps_a_policy_from_running_even_where_the_check_misses_it(
    install: Install,
) -> None:
    """The source tables' owner's policy on public.patient_journey, with the run's up-front
    check removed (as a later change to the package might): the run still fails with
    PostgreSQL's own error, and the policy's function never runs."""
    with connect(install.as_role(install.owner)) as owner:
        owner.execute("ALTER TABLE public.patient_journey ENABLE ROW LEVEL SECURITY")
        owner.execute("CREATE POLICY everyone ON public.patient_journey USING (public.owner_code())")
    with connect(install.url) as admin:
        admin.execute(
            "CREATE OR REPLACE FUNCTION pipeline._check_source_tables() RETURNS void LANGUAGE plpgsql "
            "SET search_path = pg_catalog, pipeline, pg_temp AS $$ BEGIN END $$"
        )
        error = run_as_runner(install)
        assert isinstance(error, psycopg.errors.ExternalRoutineException)
        assert "query would be affected by row-level security policy" in (error.diag.message_primary or "")
        untouched(admin)


@pytest.mark.parametrize("kind", ["VIEW", "MATERIALIZED VIEW"])
def test_a_view_standing_in_for_a_source_table_is_refused_by_name(install: Install, kind: str) -> None:
    """The source tables' owner replaces public.activity with a view whose function tries to
    write the pipeline's tables (reading the view would run it as pipeline_owner), or with a
    materialized view (no code runs when it is read, but no trigger can watch it for changes):
    the run refuses the relation by name before reading it, and no code of the owner runs."""
    with connect(install.as_role(install.owner)) as owner:
        owner.execute("ALTER TABLE public.activity RENAME TO activity_rows")
        owner.execute(
            f"CREATE {kind} public.activity AS "
            "SELECT a.* FROM public.activity_rows AS a WHERE public.owner_code()"
        )
        owner.execute("GRANT SELECT ON public.activity TO pipeline_owner")
        owner.execute("DELETE FROM public.owner_code_ran")  # the materialized view ran it as its owner
    with connect(install.url) as admin:
        error = run_as_runner(install)
        assert isinstance(error, psycopg.errors.ExternalRoutineException)
        message = error.diag.message_primary or ""
        what = "view" if kind == "VIEW" else "materialized view"
        assert f"source relation public.activity (read by every run) is a {what}, not a table" in message
        assert install.owner in message
        assert "SQLSTATE 42809" in last_run(admin)["error_message"]
        untouched(admin)


def test_a_foreign_table_attached_as_a_child_of_a_source_table_is_refused_by_name(install: Install) -> None:
    """The source tables' owner attaches a foreign table (whose wrapper would run as the
    reading role) as a child of public.patient_journey, which a read of it includes: the run
    names the child and the table it is part of, and reads neither."""
    with connect(install.url) as admin:
        admin.execute("CREATE FOREIGN DATA WRAPPER pjp_wrapper")
        admin.execute("CREATE SERVER pjp_elsewhere FOREIGN DATA WRAPPER pjp_wrapper")
        admin.execute(f"GRANT USAGE ON FOREIGN SERVER pjp_elsewhere TO {install.owner}")
        with connect(install.as_role(install.owner)) as owner:
            owner.execute(
                "CREATE FOREIGN TABLE public.patient_journey_remote () "
                "INHERITS (public.patient_journey) SERVER pjp_elsewhere"
            )
        error = run_as_runner(install)
        assert isinstance(error, psycopg.errors.ExternalRoutineException)
        assert (
            "source relation public.patient_journey_remote (read as part of public.patient_journey) "
            "is a foreign table" in (error.diag.message_primary or "")
        )
        untouched(admin)


# A type of the tables' owner, with an implicit cast to the built-in type a run reads, that runs
# the owner's code; the column it replaces: (table, column, built-in type).
OWNER_CAST = """
CREATE TYPE public.owner_box AS (v {builtin});
CREATE FUNCTION public.owner_unbox(public.owner_box) RETURNS {builtin} LANGUAGE plpgsql AS $$
BEGIN PERFORM public.owner_code(); RETURN $1.v; END $$;
CREATE CAST (public.owner_box AS {builtin}) WITH FUNCTION public.owner_unbox(public.owner_box) AS IMPLICIT;
ALTER TABLE {table} ALTER COLUMN {column} TYPE public.owner_box USING ROW({column})::public.owner_box;
"""


@pytest.mark.parametrize(
    ("table", "column", "builtin"),
    [
        ("public.schedule", "slug", "text"),
        ("public.schedule", "id", "bigint"),
        ("public.patient_journey", "journey_id", "bigint"),
        ("public.activity", "schedule_id", "bigint"),
    ],
)
def test_a_source_column_of_a_type_with_the_owners_cast_is_refused_and_the_cast_never_runs(
    install: Install, table: str, column: str, builtin: str
) -> None:
    """The source tables' owner: give a column the run reads a type of its own whose implicit
    cast runs its code, so that a run (SECURITY DEFINER) converting it runs that code as
    pipeline_owner. The run refuses the column by name; the cast never runs."""
    with connect(install.as_role(install.owner)) as owner:
        owner.execute(OWNER_CAST.format(table=table, column=column, builtin=builtin))
    refused = run_as_runner(install)
    assert refused is not None
    with connect(install.url) as admin:
        untouched(admin)
        failed = last_run(admin)
        assert failed["status"] == "failed"
        assert f"source column {table}.{column} has type public.owner_box" in failed["error_message"]
        assert "make it bigint, integer or smallint" in failed["error_message"]
        assert refused.diag.message_primary and f"{table}.{column}" in refused.diag.message_primary


def test_change_capture_never_converts_a_key_column_of_the_owners_type(install: Install) -> None:
    """The source tables' owner: make the key column change capture queues a type of its own
    with an implicit cast to bigint, so that any write to the table would run the owner's code
    inside the capture trigger (SECURITY DEFINER), as pipeline_owner. The trigger reads no key
    of such a type: it asks for a full run, and the cast never runs."""
    assert run_as_runner(install) is None
    with connect(install.as_role(install.owner)) as owner:
        owner.execute(OWNER_CAST.format(table="public.schedule", column="id", builtin="bigint"))
        owner.execute("UPDATE public.schedule SET slug = slug")
    with connect(install.url) as admin:
        untouched(admin)
        queued = admin.execute("SELECT kind, keys FROM pipeline.change_queue").fetchall()
        assert queued == [{"kind": "full", "keys": None}]


@pytest.mark.parametrize("isolation", ["repeatable read", "serializable"])
@pytest.mark.parametrize(
    ("retype", "written"),
    [
        (
            OWNER_CAST.format(table="public.schedule", column="id", builtin="bigint"),
            "ROW(555)::public.owner_box",
        ),
        ("ALTER TABLE public.schedule ALTER COLUMN id TYPE text", "'555'"),
    ],
    ids=["owners type", "text"],
)
def test_a_writer_whose_snapshot_predates_its_key_column_retyped_neither_runs_the_owners_cast_nor_fails(
    install: Install, isolation: str, retype: str, written: str
) -> None:
    """The source tables' owner: open a REPEATABLE READ (or SERIALIZABLE) transaction, then in
    another session retype the key column change capture reads, to a type of its own whose
    implicit cast to bigint runs its code, and write in the first. That transaction reads the
    catalog as of its start (the column still bigint), while its rows have the new type: the
    trigger takes the type from the rows, so the cast never runs as pipeline_owner; and a
    column retyped to text no longer fails the application's write. Either asks for a full run."""
    assert run_as_runner(install) is None
    with psycopg.connect(install.as_role(install.owner), autocommit=True) as writer:
        writer.execute(f"BEGIN ISOLATION LEVEL {isolation}")
        writer.execute("SELECT 1")  # the snapshot is taken here, with no lock on the table
        with connect(install.as_role(install.owner)) as owner:
            owner.execute(retype)
        writer.execute(f"INSERT INTO public.schedule (id, slug) VALUES ({written}, 'op')")
        writer.execute("COMMIT")
    with connect(install.url) as admin:
        untouched(admin)
        queued = admin.execute("SELECT kind, keys FROM pipeline.change_queue").fetchall()
        assert queued == [{"kind": "full", "keys": None}]


def test_a_child_table_or_rule_through_which_writes_bypass_capture_makes_runs_full(install: Install) -> None:
    """The source tables' owner: let the application's writes land where no capture trigger
    fires (a rule rerouting inserts into a child table), so that runs stay noop while windows go
    stale. A child table or a rule on a watched table makes every run full, so nothing is missed."""
    assert run_as_runner(install) is None
    with connect(install.as_role(install.owner)) as owner:
        owner.execute(
            "CREATE TABLE public.pj_more () INHERITS (public.patient_journey);"
            "GRANT SELECT ON public.pj_more TO pipeline_owner;"
            "CREATE RULE reroute AS ON INSERT TO public.patient_journey DO INSTEAD "
            "INSERT INTO public.pj_more VALUES (NEW.*);"
            "INSERT INTO public.patient_journey (id, patient_id, journey_id, operation_date) "
            "VALUES (2, 502, 1, '2026-04-10')"
        )
    with connect(install.url) as admin:
        assert admin.execute("SELECT count(*) AS n FROM pipeline.change_queue").fetchone() == {"n": 0}
        assert run_as_runner(install) is None
        assert last_run(admin)["mode"] == "full"
        loaded = admin.execute(
            "SELECT DISTINCT patient_journey_id AS id "
            "FROM pipeline.patient_journey_schedule_window ORDER BY 1"
        ).fetchall()
        assert loaded == [{"id": 1}, {"id": 2}]
        problems = admin.execute("SELECT problem FROM pipeline._change_capture_problems()").fetchall()
        assert any("child tables" in p["problem"] for p in problems)
        assert any("rule reroute" in p["problem"] for p in problems)


# What the planner evaluates while it plans a read of public.patient_journey: each form calls
# an IMMUTABLE function of the tables' owner that runs its code.
PLANNED_FORMS = {
    "index expression": "CREATE INDEX pj_owner ON public.patient_journey ((id + public.owner_zero()))",
    "partial index": "CREATE INDEX pj_owner ON public.patient_journey (id) WHERE public.owner_zero() = 0",
    "statistics": "CREATE STATISTICS pj_owner ON (id + public.owner_zero()), patient_id "
    "FROM public.patient_journey",
    # a domain's CHECK constraints are code its owner may change at any time: the type is named
    "domain in an index expression": "CREATE DOMAIN public.owner_domain AS bigint "
    "CHECK (public.owner_zero() = 0); "
    "CREATE INDEX pj_owner ON public.patient_journey (((id)::public.owner_domain))",
    # the operator's own function is the catalog's; the planner swaps in its commutator, the
    # owner's, to estimate a constant on the left (scalarltsel), on the statistics' values
    "commutator of an operator": "CREATE FUNCTION public.owner_eq(int8, int8) RETURNS boolean "
    "LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM public.owner_code(); RETURN $1 = $2; END $$; "
    "CREATE OPERATOR public.=#= (LEFTARG = int8, RIGHTARG = int8, FUNCTION = public.owner_eq); "
    "CREATE OPERATOR public.=== (LEFTARG = int8, RIGHTARG = int8, FUNCTION = pg_catalog.int8eq, "
    "COMMUTATOR = OPERATOR(public.=#=), RESTRICT = scalarltsel); "
    "CREATE INDEX pj_owner ON public.patient_journey (journey_id) "
    "WHERE (id IS NOT NULL) OR (5::int8 OPERATOR(public.===) journey_id)",
}
# What the failed run's message names, where it is not owner_zero()
PLANNED_FORMS_NAME = {
    "domain in an index expression": "type public.owner_domain",
    "commutator of an operator": "operator public.",
}


@pytest.mark.parametrize("form", list(PLANNED_FORMS))
def test_an_index_or_statistics_expression_of_the_owners_function_is_refused_and_never_planned(
    install: Install, form: str
) -> None:
    """The source tables' owner: put its function in an index expression, a partial index's
    predicate or an extended statistics object, which the planner evaluates while it plans a
    run's read, as pipeline_owner. The run refuses the table, naming the object and function,
    before it plans any read; the function never runs with the pipeline's rights."""
    with connect(install.as_role(install.owner)) as owner:
        owner.execute(
            "CREATE FUNCTION public.owner_zero() RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$ "
            "BEGIN PERFORM public.owner_code(); RETURN 0; END $$"
        )
        owner.execute(PLANNED_FORMS[form])
    refused = run_as_runner(install)
    assert refused is not None
    with connect(install.url) as admin:
        ran_as = admin.execute("SELECT DISTINCT who FROM public.owner_code_ran").fetchall()
        assert {r["who"] for r in ran_as} <= {install.owner}  # its own CREATE ran it as itself
        assert admin.execute("SELECT retention::text AS r FROM pipeline.settings").fetchone() == {
            "r": "30 days"
        }
        assert admin.execute("SELECT to_regclass('pipeline.planted') AS t").fetchone() == {"t": None}
        failed = last_run(admin)
        assert failed["status"] == "failed"
        named = PLANNED_FORMS_NAME.get(form, "function public.owner_zero()")
        assert named in failed["error_message"]
        assert "pj_owner" in failed["error_message"]


def test_a_column_no_run_reads_is_never_copied_so_code_of_its_type_never_runs(install: Install) -> None:
    """The owner adds a column of its own range type to public.patient_journey and repeats an
    id: a full run copies the de-duplicated journeys into a table it ANALYZEs, and ANALYZE of a
    range column calls the type's subtype_diff with the run's rights. The copy holds only the
    columns the run reads, so the function never runs as pipeline_owner."""
    with connect(install.as_role(install.owner)) as owner:
        owner.execute(
            "CREATE FUNCTION public.owner_diff(int4, int4) RETURNS float8 LANGUAGE plpgsql IMMUTABLE AS $$ "
            "BEGIN PERFORM public.owner_code(); RETURN $1 - $2; END $$"
        )
        owner.execute(
            "CREATE TYPE public.owner_range AS RANGE (subtype = int4, subtype_diff = public.owner_diff)"
        )
        owner.execute("ALTER TABLE public.patient_journey ADD COLUMN extra public.owner_range")
        owner.execute(
            "INSERT INTO public.patient_journey (id, patient_id, journey_id, extra) "
            "SELECT id, patient_id, journey_id, '[2,9)' FROM public.patient_journey"
        )
        owner.execute("UPDATE public.patient_journey SET extra = '[1,5)' WHERE extra IS NULL")
    with connect(install.url) as admin:
        admin.execute("DELETE FROM public.owner_code_ran")  # anything the owner's own statements ran
        with connect(install.as_role("pipeline_runner")) as runner:
            runner.execute("CALL pipeline.run_patient_journey_pipeline('test', true)")
        assert (last_run(admin)["status"], last_run(admin)["mode"]) == ("succeeded", "full")
        untouched(admin)
