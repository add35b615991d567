"""Whether pg_cron will be able to connect as the job's role: read from pg_hba.conf, as the server would.

pg_cron runs a job by opening a libpq connection as the job's role to the job's database, at
cron.host (default `localhost`; a path is a socket directory) and the server's port, with no
password unless the server's OS account has a .pgpass; cron.use_background_workers = on makes
no connection at all. A stock pg_hba.conf asks a TCP connection for a password, so a runner
created without one fails every execution with "connection failed" and leaves no run behind.

`check` gathers what decides it (pg_hba_file_rules, cron.* and listen settings, whether the role
has a password: a superuser's view) and `predict` evaluates the first matching line of
pg_hba.conf the way the server does. The outcome is one line for the DBA, or None when the
connection will be accepted (or none is made). It never raises: what it cannot read is a note.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row, tuple_row

PASSWORD_METHODS = ("md5", "scram-sha-256", "password")
LOOPBACK = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
FAILS = 'every execution of the job will fail with "connection failed", leaving no run'
RELOAD = "then SELECT pg_reload_conf()"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Finding:
    """What schedule tells the DBA: a warning (the job will not connect) or a note (it cannot tell)."""

    kind: Literal["warning", "note"]
    text: str

    def line(self) -> str:
        return f"{self.kind}: {self.text}"


@dataclass(frozen=True)
class HbaRule:
    """One row of pg_hba_file_rules (PostgreSQL 15)."""

    line_number: int
    type: str | None
    database: tuple[str, ...] = ()
    user_name: tuple[str, ...] = ()
    address: str | None = None
    netmask: str | None = None
    auth_method: str | None = None
    options: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Facts:
    """What decides whether the server accepts pg_cron's connection as `role` to `database`."""

    role: str
    database: str
    member_of: frozenset[str]  # the roles `role` is a member of, itself included
    has_password: bool
    may_connect: bool  # CONNECT on the database
    cron_host: str
    port: int
    ssl: bool
    listen_addresses: str
    rules: tuple[HbaRule, ...]
    hba_file: str = "pg_hba.conf"
    hba_changed: bool = False  # pg_hba.conf was written after the server last read it


@dataclass(frozen=True)
class Verdict:
    """How the server answers one connection: the line that decides (None: no line matches)."""

    rule: HbaRule | None
    address: IPAddress | None  # None: the Unix socket
    ssl: bool = False


def _plain(name: str) -> bool:
    return re.fullmatch(r"[a-z_][a-z0-9_$]*", name) is not None


def hba_name(name: str) -> str:
    """A database or role name as a pg_hba.conf line needs it (quoted unless plain)."""
    return (
        name
        if _plain(name) and name not in ("all", "sameuser", "samerole", "replication")
        else ('"' + name.replace('"', '""') + '"')
    )


def sql_name(name: str) -> str:
    """A role or database name as an SQL identifier."""
    return name if _plain(name) else '"' + name.replace('"', '""') + '"'


def _is_socket(host: str) -> bool:
    """libpq reads a host starting with / (or @, abstract) as a socket directory; none: the default one."""
    return host == "" or host.startswith(("/", "@"))


# --- matching one line, as the server's hba.c does -------------------------------------------


def database_matches(rule: HbaRule, facts: Facts) -> bool:
    for name in rule.database:
        if name == "all":
            return True
        if name == "sameuser" and facts.database == facts.role:
            return True
        if name == "samerole" and facts.database in facts.member_of:
            return True
        if name == facts.database and name not in ("sameuser", "samerole", "replication"):
            return True
    return False


def user_matches(rule: HbaRule, facts: Facts) -> bool:
    for name in rule.user_name:
        if name == "all" or name == facts.role:
            return True
        if name.startswith("+") and name[1:] in facts.member_of:
            return True
    return False


def address_matches(rule: HbaRule, address: IPAddress) -> bool | None:
    """Whether the line's address takes a connection from `address`; None: a host name, not resolved here."""
    if rule.address in ("all", "samehost", "samenet"):
        # pg_cron connects to this server, from the address it connects to: the server's own
        # (the loopback interface for localhost), which is samehost and on a net of its own.
        return True
    try:
        network = ipaddress.ip_address(rule.address or "")
        mask = ipaddress.ip_address(rule.netmask or "")
    except ValueError:
        return None
    if network.version != address.version or mask.version != address.version:
        return False
    return int(address) & int(mask) == int(network) & int(mask)


def type_matches(rule: HbaRule, address: IPAddress | None, ssl: bool) -> bool:
    if address is None:
        return rule.type == "local"
    # pg_cron's libpq asks for no GSS encryption (no credentials in the server's account)
    return rule.type in ("host", "hostnogssenc") or rule.type == ("hostssl" if ssl else "hostnossl")


def first_match(facts: Facts, address: IPAddress | None, ssl: bool) -> Verdict | HbaRule:
    """The line that decides the connection; a line met first whose host name decides (HbaRule alone)."""
    for rule in sorted(facts.rules, key=lambda r: r.line_number):
        if not (
            type_matches(rule, address, ssl) and database_matches(rule, facts) and user_matches(rule, facts)
        ):
            continue
        if address is not None:
            matched = address_matches(rule, address)
            if matched is None:
                return rule
            if not matched:
                continue
        return Verdict(rule, address, ssl)
    return Verdict(None, address, ssl)


def _refused_by_server(verdict: Verdict) -> bool:
    """An error the server sends (not a password libpq lacks): sslmode=prefer then retries without SSL."""
    return verdict.rule is None or verdict.rule.auth_method in ("reject", "ident", "cert")


# --- the outcome ---------------------------------------------------------------------------


def _who(facts: Facts, verdict: Verdict) -> str:
    where = (
        f"from {verdict.address}"
        if verdict.address
        else f"through the socket in {facts.cron_host or 'the default directory'}"
    )
    return f"pg_cron's connection as role {facts.role} to database {facts.database} {where}"


def _trust_lines(facts: Facts, verdicts: Sequence[Verdict]) -> str:
    lines = []
    for verdict in verdicts:
        if verdict.address is None:
            lines.append(f"`local {hba_name(facts.database)} {hba_name(facts.role)} trust`")
        else:
            bits = 32 if verdict.address.version == 4 else 128
            who = f"{hba_name(facts.database)} {hba_name(facts.role)}"
            lines.append(f"`host {who} {verdict.address}/{bits} trust`")
    return " and ".join(dict.fromkeys(lines))


def _pgpass(facts: Facts) -> str:
    host = facts.cron_host or "localhost"
    return f"`{host}:{facts.port}:{facts.database}:{facts.role}:the-password`"


def _trust_fix(facts: Facts, verdicts: Sequence[Verdict]) -> str:
    above = sorted({v.rule.line_number for v in verdicts if v.rule is not None})
    where = f" above line {above[0]}" if above else ""
    return f"add {_trust_lines(facts, verdicts)} to it{where}, {RELOAD}"


def _judge(facts: Facts, verdicts: Sequence[Verdict]) -> Finding | None:
    """The outcome of the connection attempts that decide (one per address; the same line, said once)."""
    verdict = verdicts[0]
    rule = verdict.rule
    who = _who(facts, verdict) + (
        f" (and from {', '.join(str(v.address) for v in verdicts[1:])})" if verdicts[1:] else ""
    )
    pgpass_fix = (
        f"or ALTER ROLE {sql_name(facts.role)} PASSWORD '...' and a .pgpass line {_pgpass(facts)} "
        "(mode 0600) in the home of the server's OS account"
    )
    if rule is None:
        return Finding(
            "warning",
            f"no line of {facts.hba_file} matches {who}: {FAILS}; fix: {_trust_fix(facts, verdicts)} "
            "(README, Roles: or a password and .pgpass)",
        )
    numbers = sorted({v.rule.line_number for v in verdicts if v.rule is not None})
    line = f"{facts.hba_file} (line{'s' if numbers[1:] else ''} {', '.join(map(str, numbers))})"
    method = rule.auth_method or "?"
    if method == "reject":
        return Finding("warning", f"{line} rejects {who}: {FAILS}; fix: {_trust_fix(facts, verdicts)}")
    if method == "trust":
        certs = [o for o in rule.options if o.startswith("clientcert=")]
        if certs:  # a client certificate, which pg_cron's libpq finds only in the server account's home
            return Finding(
                "note",
                f"{line} trusts {who} only with a client certificate ({certs[0]}): schedule cannot tell "
                "whether the server's OS account has one in ~/.postgresql/",
            )
        return None
    if method in PASSWORD_METHODS:
        if not facts.has_password:
            return Finding(
                "warning",
                f"{line} asks {who} for a password ({method}) and role {facts.role} has none: {FAILS}; "
                f"fix: {_trust_fix(facts, verdicts)}; {pgpass_fix}",
            )
        return Finding(
            "note",
            f"{line} asks {who} for a password ({method}): it connects only if the server's OS account "
            f"has a .pgpass line {_pgpass(facts)} (mode 0600), which schedule cannot check",
        )
    if method in ("peer", "ident"):
        maps = [o for o in rule.options if o.startswith("map=")]
        if maps:
            return Finding(
                "note",
                f"{line} checks {who} by {method} authentication with {maps[0]}: schedule cannot tell "
                f"whether pg_ident.conf maps the server's OS account to role {facts.role}",
            )
        return Finding(
            "warning",
            f"{line} checks {who} by {method} authentication, which compares the OS account it comes "
            f"from (the server's own, not {facts.role}) with the role: {FAILS}; fix: "
            f"{_trust_fix(facts, verdicts)} (or a map= option mapping the server's OS account to "
            f"{facts.role} in pg_ident.conf)",
        )
    return Finding(
        "note",
        f"{line} checks {who} by {method} authentication: schedule cannot tell whether it will pass",
    )


def _listened(facts: Facts) -> set[IPAddress] | None:
    """The addresses the server listens on; None for all of them (`*`), or when listen_addresses
    names a host (not resolved here: every address is taken as listened on)."""
    entries = [e.strip() for e in facts.listen_addresses.split(",") if e.strip()]
    found: set[IPAddress] = set()
    for entry in entries:
        if entry == "*":
            return None
        if entry == "localhost":
            found.update(LOOPBACK)
            continue
        try:
            found.add(ipaddress.ip_address(entry))
        except ValueError:
            return None
    return found


def _addresses(facts: Facts) -> list[IPAddress | None] | Finding:
    """The addresses pg_cron may connect from (None: the socket), or why that decides already."""
    host = facts.cron_host
    if _is_socket(host):
        return [None]
    if host == "localhost":
        candidates: list[IPAddress] = list(LOOPBACK)
    else:
        try:
            candidates = [ipaddress.ip_address(host)]
        except ValueError:
            return Finding(
                "note",
                f"schedule cannot tell whether pg_cron can connect as role {facts.role}: cron.host "
                f"'{host}' is a host name it does not resolve (an IP address, localhost or a socket "
                "directory it can check)",
            )
    if not facts.listen_addresses.strip():
        return Finding(
            "warning",
            f"pg_cron connects to cron.host '{host}' over TCP but the server listens on no TCP "
            f"address (listen_addresses is empty): {FAILS}; fix: ALTER SYSTEM SET cron.host TO the "
            "socket directory (unix_socket_directories) with a `local` line for the role, or set "
            "listen_addresses = 'localhost', and restart PostgreSQL",
        )
    listened = _listened(facts)
    if listened is None:
        return list(candidates)
    wildcard = {4: ipaddress.ip_address("0.0.0.0"), 6: ipaddress.ip_address("::")}
    reached = [a for a in candidates if a in listened or wildcard[a.version] in listened]
    if not reached:
        return Finding(
            "warning",
            f"pg_cron connects to cron.host '{host}' but the server listens only on "
            f"'{facts.listen_addresses}': {FAILS}; fix: add {host} to listen_addresses and restart "
            "PostgreSQL, or set cron.host to an address it listens on",
        )
    return list(reached)


def _verdict(facts: Facts, address: IPAddress | None) -> Verdict | HbaRule:
    """libpq's sslmode=prefer: over SSL first when the server has it, then without if the server refused."""
    if address is None or not facts.ssl:
        return first_match(facts, address, ssl=False)
    over_ssl = first_match(facts, address, ssl=True)
    if isinstance(over_ssl, Verdict) and _refused_by_server(over_ssl):
        return first_match(facts, address, ssl=False)
    return over_ssl


def _host_name_note(facts: Facts, rule: HbaRule) -> Finding:
    return Finding(
        "note",
        f"schedule cannot tell whether pg_cron can connect as role {facts.role}: line "
        f"{rule.line_number} of {facts.hba_file} names a host ({rule.address}) it does not resolve",
    )


def _severity(finding: Finding | None) -> int:
    return 0 if finding is None else 2 if finding.kind == "warning" else 1


def _worst(facts: Facts, addresses: Sequence[IPAddress | None]) -> Finding | None:
    """Each address's outcome (libpq may take either address of localhost): the worst, with every
    address it holds for in its fix."""
    judged: list[tuple[Finding | None, Verdict | None]] = []
    for address in addresses:
        decided = _verdict(facts, address)
        if isinstance(decided, HbaRule):
            judged.append((_host_name_note(facts, decided), None))
        else:
            judged.append((_judge(facts, [decided]), decided))
    finding, verdict = max(judged, key=lambda pair: _severity(pair[0]))
    if finding is None or verdict is None:
        return finding

    def key(found: Finding | None, decided: Verdict | None) -> tuple[str, str | None] | None:
        if found is None or decided is None:
            return None
        return found.kind, decided.rule.auth_method if decided.rule else None

    alike = [v for f, v in judged if v is not None and key(f, v) == key(finding, verdict)]
    return _judge(facts, alike)


def predict(facts: Facts) -> Finding | None:
    """The one line to tell the DBA about pg_cron's connection as the job's role; None: it is accepted."""
    errors = [r for r in facts.rules if r.error]
    if errors:
        first = errors[0]
        return Finding(
            "note",
            f"schedule cannot tell whether pg_cron can connect as role {facts.role}: line "
            f"{first.line_number} of {facts.hba_file} has an error ({first.error}), so the server "
            "keeps the rules it read last",
        )
    addresses = _addresses(facts)
    finding = addresses if isinstance(addresses, Finding) else _worst(facts, addresses)
    if finding is None and not facts.may_connect:
        return Finding(
            "warning",
            f"role {facts.role} has no CONNECT privilege on database {facts.database}: {FAILS}; "
            f"fix: GRANT CONNECT ON DATABASE {sql_name(facts.database)} TO {sql_name(facts.role)}",
        )
    if facts.hba_changed and not isinstance(addresses, Finding):
        if finding is None:
            return Finding(
                "note",
                f"{facts.hba_file} lets pg_cron's connection as role {facts.role} in only once the "
                "server reads it again (it changed after the server last did): run SELECT pg_reload_conf()",
            )
        return Finding(
            finding.kind,
            f"{finding.text} ({facts.hba_file} as it is now: it changed after the server last read it)",
        )
    return finding


# --- what the server says --------------------------------------------------------------------

_SETTINGS = (
    "cron.host",
    "cron.use_background_workers",
    "listen_addresses",
    "ssl",
    "port",
    "hba_file",
)


def _cannot_tell(role: str, why: str) -> Finding:
    return Finding(
        "note", f"schedule cannot tell whether pg_cron will be able to connect as role {role}: {why}"
    )


def gather(conn: psycopg.Connection[Any], role: str, database: str) -> Facts | None:
    """What decides the connection, read as a superuser; None when pg_cron makes none (background workers)."""
    with conn.cursor(row_factory=dict_row) as cur:
        settings = {
            row["name"]: row["setting"]
            for row in cur.execute(
                "SELECT name, setting FROM pg_catalog.pg_settings WHERE name = ANY(%s)", (list(_SETTINGS),)
            ).fetchall()
        }
        if settings.get("cron.use_background_workers") == "on":
            return None
        rules = cur.execute(
            "SELECT line_number, type, database, user_name, address, netmask, auth_method, options, error "
            "FROM pg_catalog.pg_hba_file_rules ORDER BY line_number"
        ).fetchall()
        me = cur.execute(
            "SELECT a.rolpassword IS NOT NULL AND coalesce(a.rolvaliduntil > now(), true) AS has_password, "
            "  has_database_privilege(a.oid, %s, 'CONNECT') AS may_connect, "
            "  ARRAY(SELECT r.rolname::text FROM pg_catalog.pg_roles AS r "
            "        WHERE pg_catalog.pg_has_role(a.oid, r.oid, 'MEMBER')) AS member_of, "
            "  (pg_catalog.pg_stat_file(current_setting('hba_file'), true)).modification "
            "    > pg_catalog.pg_conf_load_time() AS hba_changed "
            "FROM pg_catalog.pg_authid AS a WHERE a.rolname = %s",
            (database, role),
        ).fetchone()
    if me is None:
        return None
    return Facts(
        role=role,
        database=database,
        member_of=frozenset(me["member_of"]),
        has_password=bool(me["has_password"]),
        may_connect=bool(me["may_connect"]),
        cron_host=settings.get("cron.host", "localhost"),
        port=int(settings.get("port", "5432")),
        ssl=settings.get("ssl") == "on",
        listen_addresses=settings.get("listen_addresses", "localhost"),
        rules=tuple(
            HbaRule(
                line_number=int(row["line_number"]),
                type=row["type"],
                database=tuple(row["database"] or ()),
                user_name=tuple(row["user_name"] or ()),
                address=row["address"],
                netmask=row["netmask"],
                auth_method=row["auth_method"],
                options=tuple(row["options"] or ()),
                error=row["error"],
            )
            for row in rules
        ),
        hba_file=settings.get("hba_file", "pg_hba.conf"),
        hba_changed=bool(me["hba_changed"]),
    )


def check(conn: psycopg.Connection[Any], role: str, database: str) -> Finding | None:
    """predict() on what `conn` reads; a note, never an error, when it may not read it (not a superuser)."""
    try:
        with conn.cursor(row_factory=tuple_row) as cur:
            superuser = cur.execute(
                "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"
            ).fetchone()
        if not (superuser and superuser[0]):
            return _cannot_tell(
                role,
                "only a superuser may read pg_hba_file_rules, pg_authid and pg_cron's settings; "
                "run schedule as one to have it checked (README, Roles: the pg_hba.conf line)",
            )
        facts = gather(conn, role, database)
    except psycopg.Error as exc:
        return _cannot_tell(role, f"reading pg_hba_file_rules failed: {exc.diag.message_primary or exc}")
    return predict(facts) if facts is not None else None
