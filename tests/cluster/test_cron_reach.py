"""`schedule` tells the DBA when pg_cron will not be able to connect as the job's role.

pg_cron opens a libpq connection as the job's role at cron.host, with no password unless the
server's OS account has a .pgpass: a pg_hba.conf that asks it for one fails every execution
with "connection failed" and leaves no run. The suite's cluster lets it in through its private
socket (`local all all trust`); the warnings are shown on a cluster of this module's own whose
cron.host is 127.0.0.1, where its pg_hba.conf asks for scram-sha-256."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pytools.cluster import LocalCluster, throwaway_cluster
from pytools.cron_reach import Facts, HbaRule, check, predict
from pytools.demo import create_roles
from pytools.migrations import migrate
from pytools.sql_files import sample_file
from tests.helpers.cli import assert_ok, clean_env, cli
from tests.helpers.databases import with_params

DB = "clinic"
RUNNER = "pipeline_runner"


# --- the line-matching decisions, on pg_hba_file_rules rows as PostgreSQL 15 shows them ------


def _rule(
    line: int,
    kind: str,
    method: str,
    *,
    db: str = "all",
    user: str = "all",
    address: str = "127.0.0.1",
    netmask: str = "255.255.255.255",
    options: tuple[str, ...] = (),
) -> HbaRule:
    if kind == "local":
        return HbaRule(line, kind, (db,), (user,), auth_method=method, options=options)
    return HbaRule(line, kind, (db,), (user,), address, netmask, method, options)


def _facts(*rules: HbaRule, host: str = "127.0.0.1", **more: object) -> Facts:
    base: dict[str, object] = {
        "role": RUNNER,
        "database": DB,
        "member_of": frozenset({RUNNER, "pipeline_group"}),
        "has_password": False,
        "may_connect": True,
        "cron_host": host,
        "port": 5432,
        "ssl": False,
        "listen_addresses": "localhost",
        "rules": rules,
    }
    return Facts(**{**base, **more})  # type: ignore[arg-type]


SCRAM_V4 = _rule(4, "host", "scram-sha-256")
SCRAM_V6 = _rule(5, "host", "scram-sha-256", address="::1", netmask="ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")


def _kind(*rules: HbaRule, **more: object) -> str | None:
    """What schedule would print for these lines: warning, note, or None (nothing)."""
    found = predict(_facts(*rules, **more))
    return found.kind if found else None


def test_the_first_matching_line_decides_as_the_server_reads_the_file() -> None:
    trust_after = _rule(9, "host", "trust")
    assert _kind(trust_after, SCRAM_V4) == "warning"
    assert _kind(_rule(3, "host", "trust", user="+pipeline_group"), SCRAM_V4) is None
    assert _kind(_rule(3, "host", "trust", db="samerole"), SCRAM_V4) == "warning"
    assert _kind(_rule(3, "host", "trust", db="sameuser"), SCRAM_V4, database=RUNNER) is None
    assert _kind(_rule(3, "host", "trust", db="other"), SCRAM_V4) == "warning"
    assert _kind(_rule(3, "host", "trust", user="other"), SCRAM_V4) == "warning"
    assert _kind(_rule(3, "local", "trust"), SCRAM_V4) == "warning"
    assert _kind(_rule(3, "local", "trust"), SCRAM_V4, host="/run/postgresql") is None


def test_an_address_matches_by_its_netmask_and_samehost_samenet_match_the_loopback() -> None:
    other_net = _rule(3, "host", "trust", address="10.0.0.0", netmask="255.0.0.0")
    loopback_net = _rule(3, "host", "trust", address="127.0.0.0", netmask="255.0.0.0")
    assert _kind(other_net, SCRAM_V4) == "warning"
    assert _kind(loopback_net, SCRAM_V4) is None
    for keyword in ("all", "samehost", "samenet"):
        assert _kind(_rule(3, "host", "trust", address=keyword), SCRAM_V4) is None
    by_name = predict(_facts(_rule(3, "host", "trust", address="db.example"), SCRAM_V4))
    assert by_name is not None and by_name.kind == "note" and "db.example" in by_name.text


def test_localhost_is_checked_on_both_loopback_addresses_the_server_listens_on() -> None:
    v4_only = _rule(3, "host", "trust")
    found = predict(_facts(v4_only, SCRAM_V4, SCRAM_V6, host="localhost"))
    assert found is not None and found.kind == "warning" and "::1/128 trust" in found.text
    assert _kind(v4_only, SCRAM_V6, host="localhost", listen_addresses="127.0.0.1") is None
    nowhere = predict(_facts(v4_only, host="127.0.0.1", listen_addresses=""))
    assert nowhere is not None and nowhere.kind == "warning" and "listen_addresses" in nowhere.text
    elsewhere = predict(_facts(v4_only, host="127.0.0.1", listen_addresses="10.1.2.3"))
    assert elsewhere is not None and elsewhere.kind == "warning"
    assert _kind(v4_only, host="db.example") == "note"


def test_ssl_picks_hostssl_lines_and_a_refusal_over_ssl_is_retried_without() -> None:
    nossl_trust = _rule(3, "hostnossl", "trust")
    ssl_reject = _rule(3, "hostssl", "reject")
    assert _kind(nossl_trust, SCRAM_V4) is None
    assert _kind(nossl_trust, SCRAM_V4, ssl=True) == "warning"
    assert _kind(_rule(3, "hostssl", "trust"), SCRAM_V4, ssl=True) is None
    assert _kind(ssl_reject, _rule(4, "host", "trust"), ssl=True) is None  # sslmode=prefer
    assert _kind(_rule(3, "hostgssenc", "trust"), SCRAM_V4) == "warning"


@pytest.mark.parametrize(
    ("rules", "more", "kind", "words"),
    [
        ((), {}, "warning", "no line of"),
        ((_rule(3, "host", "reject"),), {}, "warning", "rejects"),
        ((SCRAM_V4,), {}, "warning", "has none"),
        ((SCRAM_V4,), {"has_password": True}, "note", ".pgpass line `127.0.0.1:5432:clinic:pipeline_runner:"),
        (
            (_rule(3, "local", "peer"),),
            {"host": "/run/pg"},
            "warning",
            "`local clinic pipeline_runner trust`",
        ),
        ((_rule(3, "local", "peer", options=("map=cron",)),), {"host": "/run/pg"}, "note", "map=cron"),
        ((_rule(3, "host", "ldap"),), {}, "note", "ldap"),
        (
            (_rule(3, "hostssl", "trust", options=("clientcert=verify-ca",)),),
            {"ssl": True},
            "note",
            "clientcert",
        ),
        ((SCRAM_V4,), {"role": "Night Runner"}, "warning", '`host clinic "Night Runner" 127.0.0.1/32 trust`'),
        ((_rule(3, "host", "trust"),), {"may_connect": False}, "warning", "GRANT CONNECT"),
        ((_rule(3, "host", "trust"),), {"hba_changed": True}, "note", "pg_reload_conf()"),
        ((HbaRule(7, None, error="invalid authentication method"),), {}, "note", "line 7"),
    ],
)
def test_each_authentication_outcome_is_one_line_with_what_to_do(
    rules: tuple[HbaRule, ...], more: dict[str, object], kind: str, words: str
) -> None:
    found = predict(_facts(*rules, **more))
    assert found is not None and found.kind == kind and words in found.text
    assert "\n" not in found.line() and found.line().startswith(f"{kind}: ")


# --- the suite's cluster: pg_cron comes in through the private socket --------------------------


def test_on_a_cluster_that_trusts_its_private_socket_the_check_finds_nothing(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        dbname = conn.info.dbname
        assert check(conn, RUNNER, dbname) is None


# --- a cluster whose pg_cron connects over TCP, where pg_hba.conf asks for a password ----------


@pytest.fixture(scope="module")
def tcp_cluster() -> Iterator[LocalCluster]:
    settings = {"cron.host": "'127.0.0.1'", "listen_addresses": "'127.0.0.1'"}
    with throwaway_cluster(settings, prefix="pjp-reach-") as cluster:
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_cron")
            create_roles(conn)
            conn.execute(f"CREATE DATABASE {DB}")
        with psycopg.connect(cluster.url(DB), autocommit=True) as conn:
            conn.execute(sample_file("source_tables.sql").read_text().encode())
        migrate(cluster.url(DB))
        yield cluster


def _schedule(cluster: LocalCluster, tmp_path: Path, *args: str, user: str = "postgres") -> tuple[str, str]:
    url = with_params(cluster.url(DB), user=user)
    result = cli("schedule", "--job-name", "reach-test", *args, env=clean_env(url), cwd=tmp_path)
    return assert_ok(result), result.stderr


@pytest.mark.slow  # a cluster of its own
def test_schedule_warns_that_a_runner_without_a_password_cannot_connect_and_names_the_fix(
    tcp_cluster: LocalCluster, tmp_path: Path
) -> None:
    out, _ = _schedule(tcp_cluster, tmp_path)
    [warning] = [line for line in out.splitlines() if line.startswith("warning:")]
    assert "role pipeline_runner has none" in warning and "connection failed" in warning
    assert f"`host {DB} {RUNNER} 127.0.0.1/32 trust`" in warning and "SELECT pg_reload_conf()" in warning
    out, err = _schedule(tcp_cluster, tmp_path, "--format", "json")  # stdout stays JSON; the warning: stderr
    assert json.loads(out)[0]["username"] == RUNNER
    assert err.startswith("warning:") and "127.0.0.1/32 trust" in err


@pytest.mark.slow
def test_schedule_notes_that_a_runner_with_a_password_needs_a_pgpass_entry(
    tcp_cluster: LocalCluster, tmp_path: Path
) -> None:
    with psycopg.connect(tcp_cluster.url(), autocommit=True) as conn:
        conn.execute(f"ALTER ROLE {RUNNER} PASSWORD 'the-runners'")
        try:
            out, _ = _schedule(tcp_cluster, tmp_path)
        finally:
            conn.execute(f"ALTER ROLE {RUNNER} PASSWORD NULL")
    assert "warning:" not in out
    [note] = [line for line in out.splitlines() if line.startswith("note:")]
    assert f".pgpass line `127.0.0.1:{tcp_cluster.port}:{DB}:{RUNNER}:the-password`" in note
    assert "the-runners" not in out


def _wait_past_the_last_reload(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """pg_stat_file gives whole seconds: write pg_hba.conf a second after the server last read it."""
    loaded = conn.execute("SELECT extract(epoch FROM pg_conf_load_time())").fetchone()[0]  # type: ignore[index]
    time.sleep(max(0.0, float(loaded) + 1.05 - time.time()))  # type: ignore[arg-type]


@pytest.mark.slow
def test_schedule_is_silent_once_a_trust_line_for_the_runner_is_loaded(
    tcp_cluster: LocalCluster, tmp_path: Path
) -> None:
    hba = tcp_cluster.datadir / "pg_hba.conf"
    original = hba.read_text()
    with psycopg.connect(tcp_cluster.url(), autocommit=True) as conn:
        _wait_past_the_last_reload(conn)
        hba.write_text(f"host {DB} {RUNNER} 127.0.0.1/32 trust\n{original}")
        try:
            written, _ = _schedule(tcp_cluster, tmp_path)  # not read by the server yet
            conn.execute("SELECT pg_reload_conf()")
            loaded, _ = _schedule(tcp_cluster, tmp_path)
        finally:
            hba.write_text(original)
            conn.execute("SELECT pg_reload_conf()")
    assert "warning:" not in written and "note:" in written and "pg_reload_conf()" in written
    assert "warning:" not in loaded and "note:" not in loaded
    assert "the job runs as role pipeline_runner" in loaded


@pytest.mark.slow
def test_schedule_by_a_non_superuser_says_in_one_note_that_it_cannot_tell(
    tcp_cluster: LocalCluster, tmp_path: Path
) -> None:
    """The runner schedules its own job (README "Roles": the grants that let it)."""
    grants = [
        "pg_read_all_settings TO {}",
        "USAGE ON SCHEMA cron TO {}",
        "EXECUTE ON FUNCTION cron.schedule_in_database(text, text, text, text, text, boolean) TO {}",
    ]
    with psycopg.connect(tcp_cluster.url(), autocommit=True) as conn:
        for grant in grants:
            conn.execute("GRANT " + grant.format(RUNNER))
        out, err = _schedule(tcp_cluster, tmp_path, user=RUNNER)
    assert "warning:" not in out and "Traceback" not in err
    [note] = [line for line in out.splitlines() if line.startswith("note:")]
    assert "cannot tell" in note and "superuser" in note and "pg_hba_file_rules" in note
