"""Install the event triggers that refuse DDL a run could not read safely (README, Trust boundary).

A run locks the source tables in ACCESS SHARE mode, which does not block a new index,
statistics object or child table; pipeline._guard_source_tables refuses those that would run
code of the tables' owner with pipeline_owner's rights, and pipeline._guard_concurrent_index
makes CREATE INDEX CONCURRENTLY wait for a run's reads. Only a superuser may create an event
trigger, so this is the DBA's step, like `schedule`.
"""

from __future__ import annotations

import psycopg

from pytools.db import connect, database_error
from pytools.errors import UserError
from pytools.migrations import require_migrated

# At the end of every DDL command, not of a list of tags: a command that gives a table an index,
# statistics object, constraint or child has several spellings (ALTER FOREIGN TABLE ... INHERIT,
# CREATE SCHEMA ... CREATE TABLE, ...), and one a list missed was planted past it; the function
# looks only at the relations a command touched.
EVENT_TRIGGER = "pipeline_source_guard"
FUNCTION = "pipeline._guard_source_tables()"
# At the start of CREATE INDEX: CONCURRENTLY commits an invalid index long before its end
# (pipeline._guard_concurrent_index says why that must wait for a run's reads).
START_TRIGGER = "pipeline_source_guard_start"
START_FUNCTION = "pipeline._guard_concurrent_index()"


def install_guard(url: str) -> None:
    """Create (or re-create) the two event triggers, enabled ALWAYS, in the URL's database."""
    with connect(url) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user").fetchone()
        if not row or not row[0]:
            raise UserError(
                "guard needs a superuser: only one may create an event trigger; "
                "have the DBA run `python -m pytools guard` with a superuser's URL"
            )
        require_migrated(conn)
        try:
            with conn.transaction():
                for name, event, when, function in (
                    (EVENT_TRIGGER, "ddl_command_end", "", FUNCTION),
                    (START_TRIGGER, "ddl_command_start", " WHEN TAG IN ('CREATE INDEX')", START_FUNCTION),
                ):
                    conn.execute(f"DROP EVENT TRIGGER IF EXISTS {name}")
                    conn.execute(f"CREATE EVENT TRIGGER {name} ON {event}{when} EXECUTE FUNCTION {function}")
                    # ALWAYS: also under session_replication_role = replica, which a superuser may set
                    conn.execute(f"ALTER EVENT TRIGGER {name} ENABLE ALWAYS")
        except psycopg.Error as exc:
            raise database_error("guard", exc) from None
