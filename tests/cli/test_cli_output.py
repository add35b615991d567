"""What the CLI prints is safe for the person reading it: no password from any URL, however
malformed, and no control character from the data that could drive their terminal; and it
reads its results right whatever the session's DateStyle says."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
import unicodedata
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pytools.cluster import free_port
from pytools.config import parse_url
from tests.helpers.cli import assert_ok, clean_env, cli
from tests.helpers.databases import dbname, with_params
from tests.helpers.pipeline import insert, one_journey

PORT = free_port()  # nothing listens there
# Passwords shaped like the leaks found (a '/', an '@' and ':', a bare '%', a space, a quote),
# made of letters no message of the CLI contains, so that any 4 of them in a row are a leak.
HOSTILE = [
    ("slash", f"postgresql://u:Qx7/Zkw9@127.0.0.1:{PORT}/db", ["Qx7/Zkw9"]),
    ("slash, valid port", "postgresql://u:1357/Qx7Zkw9@127.0.0.1/db", ["1357/Qx7Zkw9"]),
    ("at and colon", f"postgresql://u:Qx7@Zk:Vw9j@127.0.0.1:{PORT}/db", ["Qx7@Zk:Vw9j"]),
    ("at twice", f"postgresql://u:Qx7@Zkw9@127.0.0.1:{PORT}/db", ["Qx7@Zkw9"]),
    ("bare percent", f"postgresql://u:50%Qx7Zk!@127.0.0.1:{PORT}/db", ["50%Qx7Zk!"]),
    ("space", f"postgresql://u:Qx7 Zkw9Vj@127.0.0.1:{PORT}/db", ["Qx7 Zkw9Vj"]),
    ("quote, open IPv6", "postgresql://u:Qx7'Zkw9@[::1/app", ["Qx7'Zkw9"]),
    ("key=value", f"host=127.0.0.1 port={PORT} user=u password=Qx7Zkw9 dbname=db", ["Qx7Zkw9"]),
    ("key=value quoted", f"host=127.0.0.1 password='Qx7 Zkw9' port={PORT}", ["Qx7 Zkw9"]),
    ("one slash", "postgresql:/u:Qx7Zkw9@127.0.0.1/db", ["Qx7Zkw9"]),
    ("query", f"postgresql://u@127.0.0.1:{PORT}/db?password=Qx7Zkw9", ["Qx7Zkw9"]),
    ("query and bad port", "postgresql://u@127.0.0.1/db?password=Qx7Zkw9&port=Vw9jXq", ["Qx7Zkw9", "Vw9jXq"]),
    ("query with at", f"postgresql://u@127.0.0.1:{PORT}/db?password=Qx7@Zkw9", ["Qx7@Zkw9"]),
    (
        "percent-encoded",
        f"postgresql://u:Qx7%2FZk%40Vw9j@127.0.0.1:{PORT}/db",
        ["Qx7%2FZk%40Vw9j", "Qx7/Zk@Vw9j"],
    ),
    ("question mark", f"postgresql://u:Qx7?Zkw9@127.0.0.1:{PORT}/db", ["Qx7?Zkw9"]),
    ("colon", f"postgres://u:Qx7:Zkw9@127.0.0.1:{PORT}/db", ["Qx7:Zkw9"]),
    ("port not a number", "postgresql://u:Qx7Zkw9@127.0.0.1:Vw9jXq/db", ["Qx7Zkw9"]),
    ("no host", "postgresql://u:Qx7Zkw9/db", ["Qx7Zkw9"]),
    ("control characters", f"postgresql://u:Qx7%1B%5B2JZkw9@127.0.0.1:{PORT}/db", ["Qx7\x1b[2JZkw9"]),
    ("bad sslmode", f"postgresql://u:Qx7Zkw9@127.0.0.1:{PORT}/db?sslmode=Vw9jXq", ["Qx7Zkw9", "Vw9jXq"]),
    ("bad timeout", f"postgresql://u:Qx7Zkw9@127.0.0.1:{PORT}/db?connect_timeout=Vw9jXq", ["Qx7Zkw9"]),
    ("unknown option", f"postgresql://u:Qx7Zkw9@127.0.0.1:{PORT}/db?Vw9jXq=1", ["Qx7Zkw9", "Vw9jXq"]),
    (
        "sslpassword",
        f"postgresql://u:Qx7Zkw9@127.0.0.1:{PORT}/db?sslpassword=Vw9jXqP",
        ["Qx7Zkw9", "Vw9jXqP"],
    ),
    ("two hosts", f"postgresql://u:Qx7Zkw9@127.0.0.1:{PORT},127.0.0.1:{PORT}/db", ["Qx7Zkw9"]),
]
COMMANDS = [
    ["migrate"],
    ["run-now"],
    ["schedule"],
    ["unschedule"],
    ["status"],
    ["failures"],
    ["generate", "--journeys", "1"],
]


def assert_no_secret(result: subprocess.CompletedProcess[str], secrets: list[str]) -> None:
    """Neither a password nor any 4 characters of it in a row appear in what was printed."""
    printed = result.stdout + result.stderr
    for secret in secrets:
        pieces = {secret[i : i + n] for n in range(4, len(secret) + 1) for i in range(len(secret) - n + 1)}
        shown = sorted(piece for piece in pieces if piece in printed)
        assert not shown, (secret, shown, printed)


def assert_one_line_refusal(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode in (2, 3), (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0], result.stderr
    assert result.stdout == "", result.stdout


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize(("name", "url", "secrets"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_no_command_shows_any_part_of_the_password_of_a_hostile_url(
    command: list[str], name: str, url: str, secrets: list[str], tmp_path: Path
) -> None:
    """A person reading errors and output: whatever is wrong with the URL, one line on stderr,
    exit 2 (the URL is malformed) or 3 (nothing answers), and not 4 characters of a password."""
    result = cli(*command, "--database-url", url, cwd=tmp_path)
    assert_one_line_refusal(result)
    assert_no_secret(result, secrets)


@pytest.mark.parametrize("via", ["env", "dotenv", "argument without --database-url"])
@pytest.mark.parametrize(("name", "url", "secrets"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_url_from_the_environment_or_dotenv_or_misplaced_is_not_shown_either(
    via: str, name: str, url: str, secrets: list[str], tmp_path: Path
) -> None:
    """A person reading errors: the URL may come from DATABASE_URL, ./.env, or be typed where
    argparse does not expect it (it would quote it in "unrecognized arguments")."""
    args, env = ["status"], clean_env()
    if via == "env":
        env["DATABASE_URL"] = url
    elif via == "dotenv":
        (tmp_path / ".env").write_text(f"DATABASE_URL={url}\n")
    else:
        args = ["status", "--database-url", f"postgresql://u@127.0.0.1:{PORT}/db", url]
    result = cli(*args, env=env, cwd=tmp_path)
    assert_one_line_refusal(result)
    assert_no_secret(result, secrets)


def test_a_password_from_pgpassword_or_a_server_refusal_is_never_shown(
    db_url: str, password_role: str, tmp_path: Path
) -> None:
    """A person reading errors: PGPASSWORD (libpq reads it) and a password the server refuses
    stay hidden, and the refusal says what failed, naming the URL without the password."""
    role_url = with_params(db_url, user=password_role, host="127.0.0.1")
    for env in (
        clean_env(role_url, PGPASSWORD="Qx7 Zkw9/@%"),
        clean_env(with_params(role_url, password="Qx7 Zkw9/@%"), PGPASSWORD="Vw9j:Xq/P"),
    ):
        result = cli("failures", env=env, cwd=tmp_path)
        assert result.returncode == 3, result.stderr
        assert "authentication failed" in result.stderr and "Traceback" not in result.stderr
        assert f"{password_role}" in result.stderr and dbname(db_url) in result.stderr
        assert_no_secret(result, ["Qx7 Zkw9/@%", "Vw9j:Xq/P"])


def test_a_refused_url_is_described_by_its_fault_never_quoted(tmp_path: Path) -> None:
    """A person reading errors: the message names what is wrong, in words of its own."""
    cases = {
        "postgresql://u:Qx7/Zkw9@h/db": "'@' after the user part",
        "postgresql://u:50%Qx7Zk!@h/db": "'%' is not followed by two hex digits",
        "postgresql://u:Qx7 Zkw9@h/db": "space",
        "postgresql://u:Qx7'Zkw9@[::1/app": "IPv6",
        "host=h password=Qx7Zkw9": "does not start with postgresql://",
        "postgresql://u:Qx7Zkw9@h:Vw9j/db": "invalid port",
        "postgresql://u:Qx7Zkw9@h/db?Vw9jXq=1": "not a libpq connection option",
        f"postgresql://u:Qx7Zkw9@127.0.0.1:{PORT}/db?sslmode=Vw9jXq": "(sslmode) has a value libpq rejects",
    }
    for url, fault in cases.items():
        result = cli("status", "--database-url", url, cwd=tmp_path)
        assert result.returncode == 2 and fault in result.stderr, (url, result.stderr)
        assert result.stderr.startswith("error: bad database URL: "), result.stderr


def test_a_url_that_parses_is_shown_with_only_user_host_port_and_database(tmp_path: Path) -> None:
    """A person reading errors: the URL shown is rebuilt from libpq's parse; options that can
    hold secrets (sslpassword, options...) are left out."""
    url = f"postgresql://ann:Qx7%2FZk@127.0.0.1:{PORT}/app?sslpassword=Vw9jXq&application_name=Zq8Wv"
    result = cli("status", "--database-url", url, cwd=tmp_path)
    assert result.returncode == 3
    assert f"postgresql://ann:***@127.0.0.1:{PORT}/app " in result.stderr, result.stderr
    assert "Zq8Wv" not in result.stderr


# --- control characters from the data ------------------------------------------------------

# ESC [2J clears the screen, OSC 0 sets the window title, CSI (C1) and U+202E reorder or
# rewrite what follows; \r and \b overwrite what came before.
HOSTILE_SLUG = "4d-2d-\x1b[2J\x1b]0;pwned\x07\r\b\x9b31m\u202e\u2028x"


def raw_output(*args: str, env: dict[str, str], cwd: Path) -> str:
    """What `python -m pytools ARGS` wrote to stdout, exactly (text mode would turn \\r into \\n)."""
    argv = [sys.executable, "-m", "pytools", *args]
    result = subprocess.run(argv, capture_output=True, env=env, cwd=cwd, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode()


def raw_controls(text: str) -> list[str]:
    """The characters that would act on a terminal (newlines between lines apart)."""
    return [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


@pytest.fixture
def hostile_slug_failure(db: psycopg.Connection[Any], db_url: str, tmp_path: Path) -> str:
    """The URL of a database whose latest run failed on HOSTILE_SLUG (schedule_slug and message)."""
    one_journey(db)
    insert(db, "schedule", ["id", "slug"], [(200, HOSTILE_SLUG)])
    insert(db, "activity", ["id", "content_slug", "schedule_id"], [(20, "wound-check", 200)])
    insert(db, "journey_activity", ["journey_id", "activity_id"], [(1, 20)])
    assert_ok(cli("run-now", env=clean_env(db_url), cwd=tmp_path))
    return db_url


def test_failures_shows_control_characters_of_a_slug_as_visible_escapes(
    hostile_slug_failure: str, tmp_path: Path
) -> None:
    """A person reading output: a slug holding ESC [2J, OSC, \\r, \\b, a C1 CSI and U+202E
    reaches the terminal as text (\\x1b[2J...), never as the characters themselves."""
    env = clean_env(hostile_slug_failure)
    table = raw_output("failures", env=env, cwd=tmp_path)
    assert raw_controls(table) == [], table
    assert "4d-2d-\\x1b[2J\\x1b]0;pwned\\x07\\r\\x08\\x9b31m\\u202e\\u2028x" in table
    # json and csv (to a file or a pipe) carry the data exactly, for scripts
    out = raw_output("failures", "--format", "json", env=env, cwd=tmp_path)
    assert raw_controls(out) == [], out
    assert HOSTILE_SLUG in [r["schedule_slug"] for r in json.loads(out)]
    out = raw_output("failures", "--format", "csv", env=env, cwd=tmp_path)
    assert HOSTILE_SLUG in [r["schedule_slug"] for r in csv.DictReader(io.StringIO(out, newline=""))]


def cli_on_a_terminal(*args: str, env: dict[str, str], cwd: Path) -> str:
    """`python -m pytools ARGS` with its stdout a pseudo-terminal; what it wrote there."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytools", *args],
            stdout=follower,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            timeout=120,
            check=False,
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the writer is gone and everything was read
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    assert proc.returncode == 0, proc.stderr
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_csv_to_a_terminal_escapes_control_characters_too(hostile_slug_failure: str, tmp_path: Path) -> None:
    """A person reading output: `failures --format csv` typed at a terminal does not clear it."""
    out = cli_on_a_terminal("failures", "--format", "csv", env=clean_env(hostile_slug_failure), cwd=tmp_path)
    assert raw_controls(out) == [], out
    assert "\\x1b[2J" in out


def test_status_shows_control_characters_of_job_names_and_run_messages_as_escapes(
    db: psycopg.Connection[Any], db_url: str, server: str, tmp_path: Path
) -> None:
    """A person reading output: `status` quotes the job (name from cron.job) and the runs
    (error_message, which quotes data); neither drives the terminal."""
    env = clean_env(db_url)
    job = f"pjp-\x1b[2J\u202e-{uuid.uuid4().hex[:6]}"
    assert_ok(cli("run-now", env=env, cwd=tmp_path))
    # a message as a server error quoting data would leave it
    db.execute("UPDATE pipeline.pipeline_runs SET error_message = %s", (f"bad slug {HOSTILE_SLUG}",))
    try:
        scheduled = raw_output("schedule", "--job-name", job, env=env, cwd=tmp_path)
        assert raw_controls(scheduled) == [], scheduled
        out = raw_output("status", "--job-name", job, env=env, cwd=tmp_path)
        assert raw_controls(out) == [], out
        assert "pjp-\\x1b[2J\\u202e-" in out and "bad slug 4d-2d-\\x1b[2J" in out
        assert "\\r\\x08" in out
        removed = raw_output("unschedule", "--job-name", job, env=env, cwd=tmp_path)
        assert raw_controls(removed) == [], removed
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute("DELETE FROM cron.job WHERE jobname = %s", (job,))


# --- what the session says -----------------------------------------------------------------


def test_every_command_reads_its_results_whatever_datestyle_the_role_or_pgdatestyle_sets(
    db: psycopg.Connection[Any], db_url: str, server: str, tmp_path: Path
) -> None:
    """A person reading output: a German DateStyle from the role's default in this database,
    or from PGDATESTYLE, and a non-default IntervalStyle, give the same ISO output, no traceback."""
    one_journey(db, slug="7d-post-surgery")
    name = dbname(db_url)
    user = parse_url(db_url).get("user", "postgres")
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'ALTER ROLE "{user}" IN DATABASE "{name}" SET DateStyle = \'German, DMY\'')
        conn.execute(f'ALTER ROLE "{user}" IN DATABASE "{name}" SET IntervalStyle = \'iso_8601\'')
    try:
        for env in (clean_env(db_url), clean_env(db_url, PGDATESTYLE="SQL, DMY")):
            for args in (["migrate"], ["run-now"], ["status"], ["failures"], ["failures", "--format", "csv"]):
                out = assert_ok(cli(*args, env=env, cwd=tmp_path))
                assert "Traceback" not in out
            [run] = json.loads(assert_ok(cli("run-now", "--format", "json", env=env, cwd=tmp_path)))
            assert run["started_at"][4] == "-" and run["started_at"][10] == "T", run["started_at"]
        with psycopg.connect(db_url, autocommit=True) as check:
            assert check.execute("SHOW DateStyle").fetchone() == ("German, DMY",)  # the role's, really
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'ALTER ROLE "{user}" IN DATABASE "{name}" RESET ALL')


def test_a_dotenv_file_that_is_not_utf8_is_one_error_line_naming_it(tmp_path: Path) -> None:
    """A .env that is not UTF-8 text (a copy from a Latin-1 editor) is a usage error naming the
    file, never a traceback; nothing of its content is shown."""
    (tmp_path / ".env").write_bytes(b"DATABASE_URL=postgresql://u:S3cr\xe9tXyz@127.0.0.1/db\n")
    result = cli("status", cwd=tmp_path, env=clean_env())
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert "is not UTF-8 text" in line and ".env" in line
    assert "Traceback" not in result.stderr and "Xyz" not in result.stderr + result.stdout


def test_a_very_short_password_is_not_spelt_out_by_masking_every_letter_like_it(tmp_path: Path) -> None:
    """A person reading errors: with the password `e`, masking every `e` of a message would show
    the password by the gaps it leaves. A password under 4 characters is masked only where it
    stands as a password (in a URL, or password=)."""
    port = free_port()
    result = cli("status", cwd=tmp_path, env=clean_env(f"postgresql://someone:e@127.0.0.1:{port}/db"))
    assert result.returncode == 3, result.stderr
    [line] = result.stderr.splitlines()
    assert "th***" not in line and "***rror" not in line
    assert "someone:e@" not in line
