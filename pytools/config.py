"""Which database to use, and the forms of its URL that other tools need."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg.conninfo

from pytools.errors import ExitCode, UserError

URL_HELP = "postgresql://user:password@host:5432/dbname"


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file; comments, blanks and malformed lines are ignored."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def resolve_database_url(cli_value: str | None, cwd: Path | None = None) -> str:
    """--database-url, else DATABASE_URL in the environment, else DATABASE_URL in ./.env."""
    url = cli_value or os.environ.get("DATABASE_URL")
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
    """The URL's connection parameters; a malformed URL is a user error."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise UserError(
            f"bad database URL {redact(url)!r}: it must start with postgresql:// (form: {URL_HELP})",
            ExitCode.USAGE,
        )
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "unparsable"
        raise UserError(
            f"bad database URL {redact(url)!r}: {scrub(reason)} (form: {URL_HELP})", ExitCode.USAGE
        ) from None
    port = str(params.get("port") or "")
    if port and not all(part.isdigit() for part in port.split(",")):
        raise UserError(
            f"bad database URL {redact(url)!r}: port {port!r} is not a number (form: {URL_HELP})",
            ExitCode.USAGE,
        )
    return {key: str(value) for key, value in params.items() if value is not None}


_PASSWORD_IN_TEXT = re.compile(r"(://[^:/@\s\"']*:)[^@\s\"']*@")


def scrub(text: str) -> str:
    """Any text (e.g. a driver's message quoting the URL) with URL passwords replaced by ***."""
    text = _PASSWORD_IN_TEXT.sub(r"\1***@", text)
    return re.sub(r"(password=)[^&\s\"']*", r"\1***", text)


def redact(url: str) -> str:
    """The URL with any password replaced by ***, safe to print."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    userinfo, at, hostpart = authority.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    redacted = f"{scheme}://{userinfo}{at}{hostpart}{slash}{tail}"
    # A password may also come as a query parameter.
    if "password=" in redacted:
        head, _, query = redacted.partition("?")
        parts = ["password=***" if part.startswith("password=") else part for part in query.split("&")]
        redacted = f"{head}?{'&'.join(parts)}"
    return redacted


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
