"""Which database to use, and the forms of its URL that other tools need."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg.conninfo
from dotenv import dotenv_values

from pytools.errors import ExitCode, UserError
from pytools.text import escape_controls

URL_HELP = "postgresql://user:password@host:5432/dbname"


def read_dotenv(path: Path) -> dict[str, str]:
    """The variables a .env file sets, as python-dotenv reads it (quotes, `export`, comments);
    none when there is no such file. A variable without a value (`KEY` alone) is left out, and
    `${...}` is not expanded: a password may hold a `$`."""
    if not path.is_file():
        return {}
    try:
        values = dotenv_values(path, interpolate=False, encoding="utf-8")
    except (UnicodeDecodeError, OSError) as exc:
        reason = "it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror
        raise UserError(f"cannot read {path}: {reason}; fix or remove it", ExitCode.USAGE) from None
    return {key: value for key, value in values.items() if value is not None}


def resolve_database_url(given: str | None, cwd: Path | None = None) -> str:
    """The URL given (by --database-url, else DATABASE_URL in the environment: the CLI reads
    both), else DATABASE_URL in ./.env; checked to be one libpq can parse."""
    url = given
    if not url:
        url = read_dotenv((cwd or Path.cwd()) / ".env").get("DATABASE_URL")
    if not url:
        raise UserError(
            "no database given: pass --database-url, set DATABASE_URL, "
            f"or put DATABASE_URL=... in ./.env (form: {URL_HELP})",
            ExitCode.USAGE,
        )
    parse_url(url)
    return url


def parse_url(url: str) -> dict[str, str]:
    """The URL's connection parameters, as libpq parses them; a malformed URL is a user error.

    The error never quotes the URL nor any part of it: a password with a character that needs
    percent-encoding (`/`, `@`, `:`, `%`, a space) makes libpq read a piece of the password as
    the host, the port or the database name, so no part of a rejected URL is safe to show.
    """
    if not url.startswith(("postgresql://", "postgres://")):
        raise _bad_url("it does not start with postgresql:// (a key=value connection string is not accepted)")
    if _stray_at(url):
        raise _bad_url(
            "it has an '@' after the user part: percent-encode '@' as %40, '/' as %2F and ':' as %3A "
            "in the user name and password"
        )
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise _bad_url(_why_unparsable(str(exc))) from None
    ports = str(params.get("port") or "")
    if ports and not all(_is_port(port) for port in ports.split(",")):
        raise _bad_url(
            "invalid port: a port is a number from 1 to 65535 (percent-encode '/' as %2F and '@' as "
            "%40 in a password)"
        )
    return {key: str(value) for key, value in params.items() if value is not None}


def _bad_url(reason: str) -> UserError:
    return UserError(f"bad database URL: {reason} (form: {URL_HELP})", ExitCode.USAGE)


def _stray_at(url: str) -> bool:
    """Whether an '@' follows the user part: libpq takes the user part up to the first '@' or '/',
    so a second '@' means a password or user name holding an unencoded '@' or '/'."""
    rest = url.partition("://")[2]
    cut = min((i for i in (rest.find("@"), rest.find("/")) if i >= 0), default=-1)
    tail = rest[cut + 1 :] if cut >= 0 and rest[cut] == "@" else rest
    return "@" in tail


# libpq's parse errors quote the offending text; each becomes a reason that quotes nothing.
_UNPARSABLE = (
    ("unexpected spaces", "it holds a space: write a space as %20"),
    ("%00", "it holds %00, which no connection parameter may contain"),
    ("percent-encoded", "a '%' is not followed by two hex digits: write a literal '%' as %25"),
    ("ipv6", "a bracketed IPv6 host address is empty or lacks its closing ']'"),
    ("invalid uri query parameter", "a query parameter is not a libpq connection option"),
    ("key/value separator", "a query parameter is not of the form key=value"),
    ("unexpected character", "an unexpected character follows the host: percent-encode the password"),
)


def _why_unparsable(message: str) -> str:
    lowered = message.lower()
    for needle, reason in _UNPARSABLE:
        if needle in lowered:
            return reason
    return "libpq cannot parse it"


def _is_port(text: str) -> bool:
    return text == "" or (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535)


def shown_url(params: dict[str, str]) -> str:
    """The URL as the CLI shows it: only the user, host, port and database name, with a password
    as ***; control characters escaped. Built from libpq's parse, never from the user's text."""
    user = params.get("user", "")
    password = ":***" if params.get("password") is not None else ""
    credentials = f"{user}{password}@" if user or password else ""
    host = params.get("host", "")
    socket = host.startswith("/")
    port = params.get("port")
    netloc = ("" if socket else host) + (f":{port}" if port else "")
    query = f"?host={host}" if socket else ""
    return escape_controls(f"postgresql://{credentials}{netloc}/{params.get('dbname', '')}{query}")


def redact(url: str) -> str:
    """The URL with only what cannot hold a password, safe to print; never the text as given."""
    try:
        return shown_url(parse_url(url))
    except UserError:
        return "(a malformed URL)"


def secrets_of(url: str | None) -> list[str]:
    """The passwords that a URL (as libpq reads it) and the environment carry, longest first:
    the CLI replaces each by *** in anything it prints, whatever the message."""
    found = [os.environ.get("PGPASSWORD", "")]
    if url:
        try:
            params = psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            params = {}
        found += [str(params.get(key) or "") for key in ("password", "sslpassword")]
    return sorted({s for s in found if s}, key=len, reverse=True)


# A password shorter than this is masked only where it stands as one (in a URL or password=):
# replacing every occurrence of, say, "e" would spell the password out by its gaps.
_SHORTEST_HIDDEN_EVERYWHERE = 4


def hide(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if len(secret) >= _SHORTEST_HIDDEN_EVERYWHERE:
            text = text.replace(secret, "***")
    return scrub(text)


_PASSWORD_IN_TEXT = re.compile(r"(://[^:/@\s\"']*:)[^@\s\"']*@")


def scrub(text: str) -> str:
    """A server's or driver's text with anything URL-password-like replaced by *** (a last net:
    the CLI also replaces the known passwords, see secrets_of)."""
    text = _PASSWORD_IN_TEXT.sub(r"\1***@", text)
    return re.sub(r"(password=)[^&\s\"']*", r"\1***", text)


def build_url(params: dict[str, str], scheme: str = "postgresql") -> str:
    """A URL from connection parameters; a Unix socket directory travels as a query argument."""
    params = dict(params)
    user = quote(params.pop("user", ""), safe="")
    password = params.pop("password", None)
    host = params.pop("host", "")
    port = params.pop("port", None)
    dbname = quote(params.pop("dbname", ""), safe="")
    if host.startswith("/"):
        params["host"] = host
        host = ""
    credentials = user + (":" + quote(password, safe="") if password is not None else "")
    netloc = (credentials + "@" if credentials else "") + host + (f":{port}" if port else "")
    query = f"?{urlencode(params)}" if params else ""
    return f"{scheme}://{netloc}/{dbname}{query}"


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    return build_url({**parse_url(url), "dbname": dbname})


def database_name(url: str) -> str:
    params = parse_url(url)
    return params.get("dbname") or params.get("user") or os.environ.get("USER", "postgres")
