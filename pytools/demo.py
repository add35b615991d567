"""`make demo`: a throwaway local cluster with sample data, the job scheduled, one run shown."""

from __future__ import annotations

import hashlib
import os
import pwd
import stat
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pytools import adherence, cron, guard, migrations, report, runs
from pytools.cluster import (
    SERVER_USER,
    LocalCluster,
    give_to_server_user,
    server_user_can_use,
    socket_dir_fits,
)
from pytools.db import connect
from pytools.errors import ExitCode, UserError
from pytools.sql_files import sample_file

DEMO_DATABASE = "pipeline_demo"
# The roles README "Roles" has a DBA create; migrate grants them their rights.
ROLES = ("pipeline_owner", cron.RUNNER_ROLE, "pipeline_reader")
DEFAULT_PORT = 54329
# The question adherence answers, as the demo suggests asking it (a pipeline_reader member may);
# a test runs it on the demo's data. An open-ended window (6wpo: from 6 weeks after) is never
# overdue, so the example is a survey whose window ends.
OVERDUE_QUERY = (
    "SELECT patient_id, patient_journey_id, window_end_date FROM pipeline.activity_adherence",
    "WHERE schedule_slug = '12d-4w-post-op' AND status = 'overdue' ORDER BY window_end_date;",
)


def create_roles(conn: psycopg.Connection[Any]) -> None:
    """Create the missing ones of ROLES on a throwaway server, with LOGIN (pg_cron connects as
    the runner), as a DBA would."""
    for role in ROLES:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
            conn.execute(f"CREATE ROLE {role} LOGIN")


def demo_datadir(workdir: Path) -> Path:
    """`.pgdata/` in the working directory, or a folder in /tmp that `.pgdata` links to when
    the server user cannot reach the working directory (e.g. a checkout under /root) or its
    path is too long for the server's socket, which lives in the data directory."""
    link = workdir / ".pgdata"
    if link.is_symlink() or link.is_dir():
        return link.resolve()
    if server_user_can_use(workdir) and socket_dir_fits(link):
        return link
    digest = hashlib.sha1(str(workdir).encode()).hexdigest()[:8]
    target = Path("/tmp") / f"patient-journey-pipeline-demo-{digest}"
    claim_private_dir(target)
    link.symlink_to(target)
    return target


def claim_private_dir(path: Path) -> None:
    """Create `path` 0700 for the server user, or accept it only if it already is exactly that:
    a folder that another local account made in /tmp first would be theirs to enter."""
    try:
        path.mkdir(mode=0o700)
        give_to_server_user(path)
        return
    except FileExistsError:
        pass
    info = path.lstat()
    owner = pwd.getpwnam(SERVER_USER).pw_uid if os.geteuid() == 0 else os.geteuid()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != owner or stat.S_IMODE(info.st_mode) & 0o077:
        raise UserError(
            f"{path} exists but is not a private folder of user {pwd.getpwuid(owner).pw_name} "
            "(mode 0700): remove it, or run the demo from a checkout the server user can reach",
            ExitCode.USAGE,
        )


def demo_cluster(workdir: Path, port: int | None = None) -> LocalCluster:
    """The demo's cluster on `port` (the CLI's --port, which reads PIPELINE_DEMO_PORT); a caller
    that gives none (a test, a script) gets PIPELINE_DEMO_PORT, else the default."""
    if port is None:
        text = os.environ.get("PIPELINE_DEMO_PORT", str(DEFAULT_PORT))
        if not text.isdigit():
            raise UserError(f"PIPELINE_DEMO_PORT={text!r} is not a port number", ExitCode.USAGE)
        port = int(text)
    return LocalCluster(demo_datadir(workdir), port)


def run_demo(workdir: Path, port: int | None = None) -> int:
    cluster = demo_cluster(workdir, port)
    print(f"starting a throwaway PostgreSQL with pg_cron in {cluster.datadir} (port {cluster.port})")
    cluster.start()
    with connect(cluster.url("postgres")) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DATABASE,))
        if exists.fetchone() is None:
            conn.execute(f"CREATE DATABASE {DEMO_DATABASE}")
        create_roles(conn)  # so that the job runs as the runner, never as a superuser
    url = cluster.url(DEMO_DATABASE)

    with connect(url) as conn:
        conn.execute(sample_file("source_tables.sql").read_text(encoding="utf-8").encode())
        conn.execute(sample_file("demo_data.sql").read_text(encoding="utf-8").encode())
    print("loaded sample data: 400 patient journeys, 29 schedules (4 broken), a few orphans")

    applied = migrations.migrate(url)
    print(f"migrated: {len(applied.applied)} migration(s) applied, {applied.routines} routines")
    guard.install_guard(url)
    print(
        f"installed event triggers {guard.EVENT_TRIGGER} and {guard.START_TRIGGER} "
        "(python -m pytools guard, README: Trust boundary)"
    )
    job = cron.schedule(url, cron.DEFAULT_CRON, cron.default_job_name(url))
    print(
        f"scheduled pg_cron job {job.jobname!r} ({job.schedule}) in database {job.database}, "
        f"run as role {job.username}"
    )

    run = runs.run_now(url)
    print("\nthe run:")
    print(report.render([run], "table"))
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        sample = cur.execute(
            "SELECT patient_journey_id, activity_id, schedule_slug, schedule_milestone_slug, "
            "milestone_date, window_start_date, window_end_date "
            "FROM pipeline.patient_journey_schedule_window "
            "WHERE patient_journey_id = 7 ORDER BY activity_id LIMIT 8"
        ).fetchall()
    print("\na few window rows (patient journey 7):")
    print(report.render(sample, "table"))
    print("\nwhat is failing now (pipeline.current_failures):")
    failing = runs.failures(url, run_id=None, all_runs=False, limit=20)
    shown = ("stage", "schedule_id", "schedule_slug", "patient_journey_id", "activity_id")
    brief = [
        {**{k: f[k] for k in shown}, "why": f["error_message"], "held_back": f["rows_held_back"]}
        for f in failing
    ]
    print(report.render(brief, "table", 70))
    show_adherence(url, workdir / "adherence.html")
    print(
        f"\nconnect with:  psql -h {cluster.datadir} -p {cluster.port} -U postgres {DEMO_DATABASE}"
        f"\n  or with the CLI: DATABASE_URL='{url}' python -m pytools status"
        "\n  (no password: only root and the account that runs the server can connect; the server"
        "\n   listens on no TCP port, and its socket is in the data directory, mode 0700)"
    )
    print("stop with:     make demo-stop")
    print(
        "\nnext, try (with that DATABASE_URL exported):"
        "\n  python -m pytools status            the job, its executions and the last runs"
        "\n  python -m pytools failures          what is failing now (--all: every retained run)"
        "\n  python -m pytools run-now           a run now: nothing changed, so it writes nothing"
        "\n  python -m pytools report --by week  adherence per week from the milestone (--html FILE)"
        "\n  python -m pytools check             the Nagios / Icinga probe: one line, exit 0 to 3"
        "\n  python -m pytools failures --log failures.log   the failures as log lines, each once"
        "\n  psql: SELECT * FROM pipeline.current_failures;"
        "\n  psql: who is overdue for the survey due 12 days to 4 weeks after the operation?"
        + "".join(f"\n        {line}" for line in OVERDUE_QUERY)
    )
    return 0


def show_adherence(url: str, page: Path) -> None:
    """The adherence summary by milestone, and the HTML report written next to the checkout."""
    print("\nadherence today, by milestone (python -m pytools report):")
    print(report.render(adherence.adherence_report(url, None, "milestone"), "table"))
    try:
        day, pairs = adherence.html_report(url, None, page)
    except UserError as exc:  # the report extra (matplotlib) is missing, or the file cannot be written
        print(f"no HTML report: {exc}")
        return
    print(f"the HTML report ({pairs:,} pairs as of {day.isoformat()}): {page}")


def stop_demo(workdir: Path, port: int | None = None) -> int:
    cluster = demo_cluster(workdir, port)
    if not cluster.initialised:
        print("no demo cluster here; nothing to stop")
    elif cluster.stop():
        print(f"stopped the demo cluster in {cluster.datadir}")
    else:
        print("the demo cluster was not running")
    return 0
