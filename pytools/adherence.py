"""The adherence report: how many pairs have each status, per milestone, activity or week.

It reads pipeline.adherence(date) (README, "Adherence"), so pipeline_reader's rights are enough.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from pytools import report_html
from pytools.db import Target, database_error, using
from pytools.errors import UserError
from pytools.migrations import require_migrated

# The statuses in the order pipeline.adherence decides them: the order of the report's rows.
STATUSES = (
    "held_back", "no_window", "done_in_window", "done_late", "done_early",
    "done_undated", "overdue", "not_yet_open", "open",
)  # fmt: skip
# What each --by groups on (expression, column name): the report's first columns. A held-back
# pair has no window row of its own (an old one may remain), so it has no week: NULL, its own group.
WEEK = "CASE WHEN a.status <> 'held_back' THEN floor(w.schedule_start_offset_days::numeric / 7)::integer END"
GROUPS = {
    "milestone": [("a.schedule_milestone_slug", "milestone")],
    "activity": [("a.activity_id", "activity_id"), ("a.activity_content_slug", "activity_content_slug")],
    "week": [(WEEK, "week")],
}
BY = tuple(GROUPS)
# Only the week needs the window row's offset: the other groups read adherence alone.
WEEK_JOIN = (
    "LEFT JOIN pipeline.patient_journey_schedule_window AS w "
    "ON w.patient_journey_id = a.patient_journey_id AND w.activity_id = a.activity_id "
)


def as_of_date(text: str) -> date:
    """--as-of: a calendar date, YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def report_query(by: str) -> str:
    columns = ", ".join(f"{expression} AS {name}" for expression, name in GROUPS[by])
    keys = ", ".join(expression for expression, _ in GROUPS[by])
    return (
        f"SELECT {columns}, a.status, count(*) AS pairs, "
        f"round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY {keys}), 1) AS share_pct "
        "FROM pipeline.adherence(%s) AS a "
        f"{WEEK_JOIN if by == 'week' else ''}"
        f"GROUP BY {keys}, a.status "
        f"ORDER BY {keys}, array_position(%s::text[], a.status)"
    )


# The charts' rows: pairs per milestone, week and status.
WEEKS_QUERY = (
    f"SELECT a.schedule_milestone_slug AS milestone, {WEEK} AS week, a.status, count(*) AS pairs "
    f"FROM pipeline.adherence(%s) AS a {WEEK_JOIN}GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
)
TODAY_QUERY = "SELECT (now() AT TIME ZONE s.report_time_zone)::date AS today FROM pipeline.settings AS s"


def adherence_report(target: Target, as_of: date | None, by: str) -> list[dict[str, Any]]:
    """Per group and status: the pairs and their share of the group, in percent."""
    with using(target) as conn:
        require_migrated(conn)
        with conn.transaction():
            _plan_for_a_report(conn)
            return _read(conn, report_query(by), (as_of, list(STATUSES)))


def html_report(target: Target, as_of: date | None, path: Path) -> tuple[date, int]:
    """Write the report page (every grouping and the charts) to `path`, all read in one
    snapshot; returns the as-of date it used and how many pairs it counts."""
    with using(target) as conn:
        require_migrated(conn)
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            _plan_for_a_report(conn)
            day = as_of or _read(conn, TODAY_QUERY, ())[0]["today"]
            tables = {by: _read(conn, report_query(by), (day, list(STATUSES))) for by in BY}
            weeks = _read(conn, WEEKS_QUERY, (day,))
    page = report_html.render_page(day, tables, weeks)
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write the HTML report to {path}: {exc.strerror or exc}") from None
    return day, sum(int(row["pairs"]) for row in tables["milestone"])


def _plan_for_a_report(conn: psycopg.Connection[dict[str, Any]]) -> None:
    """The report is one scan of millions of pairs into a few groups: compiling it (JIT, which
    its estimated cost triggers) takes longer than the scan saves, in every process."""
    conn.execute("SET LOCAL jit = off")


def _read(
    conn: psycopg.Connection[dict[str, Any]], query: str, params: tuple[Any, ...]
) -> list[dict[str, Any]]:
    try:
        return conn.execute(query, params).fetchall()
    except psycopg.errors.InsufficientPrivilege:
        raise  # the CLI names the grant that fixes it
    except psycopg.Error as exc:
        raise database_error("reading adherence", exc) from None
