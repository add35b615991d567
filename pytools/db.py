"""Connections with clear errors: every way a connection fails becomes one actionable line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pytools.config import parse_url, redact, scrub
from pytools.errors import ExitCode, UserError

# Appended to the connection's options, so it wins over one a URL gives.
PINNED_SEARCH_PATH = "-c search_path=pg_catalog,pg_temp"
# What the CLI's parsing of results relies on, whatever the role, database or PG* variables
# say: psycopg reads dates in ISO style only and intervals in the postgres style; UTF8 keeps
# every text decodable. TimeZone stays the user's (timestamps carry their offset).
SESSION_SETTINGS = {"DateStyle": "ISO, MDY", "IntervalStyle": "postgres", "client_encoding": "UTF8"}


def connect(url: str, *, autocommit: bool = True) -> psycopg.Connection[tuple[object, ...]]:
    params = parse_url(url)
    params.setdefault("connect_timeout", "10")
    params.setdefault("application_name", "pytools")
    # Whatever search_path the role or database sets, every name this session resolves (the
    # routines' signatures migrate creates, the CLI's own queries) is the catalog's or qualified:
    # a role with CREATE on a schema listed ahead of pg_catalog cannot stand in for either.
    params["options"] = f"{params.get('options', '')} {PINNED_SEARCH_PATH}".strip()
    try:
        conn = psycopg.connect(autocommit=True, **params)  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        message = scrub(str(exc))
        if "invalid" in message.lower() and "value" in message.lower():
            # e.g. sslmode=bogus in the URL: the URL is wrong, not the server
            raise _bad_option(params, message) from None
        raise UserError(describe_connection_error(url, message), ExitCode.CONNECTION) from None
    except psycopg.ProgrammingError as exc:  # psycopg's own checks, e.g. connect_timeout=abc
        raise _bad_option(params, str(exc)) from None
    pin_session(conn)
    conn.autocommit = autocommit
    return conn


def _bad_option(params: dict[str, str], message: str) -> UserError:
    """A connection option's value was refused; name the option, never quote the value."""
    named = [
        key
        for key in params
        if key != "password"
        and (f'"{key}"' in message or f"{key} value" in message or f"for {key}" in message)
    ]
    which = f" ({named[0]})" if named else ""
    return UserError(
        f"bad database URL: a connection option{which} has a value libpq rejects", ExitCode.USAGE
    )


def pin_session(conn: psycopg.Connection[Any]) -> None:
    """SET (after connecting, so that it works through a pooler too) what reading results
    relies on; a role's or PGDATESTYLE's DateStyle = German would otherwise break psycopg."""
    statements = "; ".join(f"SET {name} = '{value}'" for name, value in SESSION_SETTINGS.items())
    try:
        conn.execute(statements.encode())
    except psycopg.Error as exc:
        conn.close()
        raise database_error("setting up the session", exc) from None


def connect_dicts(url: str) -> psycopg.Connection[dict[str, Any]]:
    """An autocommit connection whose rows are dicts, for reports."""
    conn = connect(url)
    conn.row_factory = dict_row  # type: ignore[assignment]
    return conn  # type: ignore[return-value]


Target = str | psycopg.Connection[dict[str, Any]]


@contextmanager
def using(target: Target) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """The connection given (left open: its opener closes it), or a new one to the URL given
    (closed on the way out): a command threads its one connection through the functions it calls."""
    if isinstance(target, str):
        with connect_dicts(target) as conn:
            yield conn
    else:
        yield target


def describe_connection_error(url: str, message: str) -> str:
    shown = redact(url)
    lowered = message.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return f"authentication failed for {shown}: check the user name and password in the URL"
    if "does not exist" in lowered and "database" in lowered:
        return f"database in {shown} does not exist: create it (createdb) or fix the URL"
    if "role" in lowered and "does not exist" in lowered:
        return f"the user in {shown} does not exist on the server: fix the URL or create the role"
    if "no pg_hba.conf entry" in lowered:
        return f"the server refuses {shown} (no pg_hba.conf entry): ask the DBA to allow this host"
    if "could not translate host name" in lowered or "name or service not known" in lowered:
        return f"cannot resolve the host in {shown}: fix the host name"
    if "timeout" in lowered:
        return f"timed out connecting to {shown}: check the host, port and firewall"
    first_line = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return (
        f"cannot reach the database at {shown} ({first_line}): "
        "check that the server is running and the host and port are right"
    )


def database_error(action: str, exc: psycopg.Error) -> UserError:
    """A server error during `action`, as one line with the server's own message."""
    diag = exc.diag
    message = scrub(diag.message_primary or str(exc).splitlines()[0])
    hint = f" ({scrub(diag.message_hint)})" if diag.message_hint else ""
    return UserError(f"{action} failed: {message}{hint}", ExitCode.DATABASE_ERROR)
