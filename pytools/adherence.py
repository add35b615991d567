"""The adherence report: how many pairs have each status, per milestone, activity or week.

It reads pipeline._adherence_counts(date): the pairs pipeline.adherence(date) reports (README,
"Adherence") counted per activity, milestone, start offset and status rank, from the counts the
window table's triggers keep; pipeline_reader's rights are enough.
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

# The statuses in the order pipeline.adherence decides them: the order of the report's rows;
# pipeline._adherence gives each pair's status as its rank in this list (1 = held_back).
STATUSES = (
    "held_back", "no_window", "done_in_window", "done_late", "done_early",
    "done_undated", "overdue", "not_yet_open", "open",
)  # fmt: skip
# Each query sums the counts of pipeline._adherence_counts per status rank and the narrowest
# columns that decide the group (for the week, the start offset: a few hundred groups), then
# names the statuses and computes the weeks over those groups. A
# held-back pair has no offset, so its week is NULL, its own group, as is that of a pair whose
# window has no first day.
# GROUPS: the columns of pipeline._adherence_counts each --by sums by; KEYS: the report's first
# columns, (expression over those counts, name).
WEEK = "floor(g.schedule_start_offset_days::numeric / 7)::integer"
GROUPS = {
    "milestone": ["schedule_milestone_slug"],
    "activity": ["activity_id", "activity_content_slug"],
    "week": ["schedule_start_offset_days"],
}
KEYS = {
    "milestone": [("g.schedule_milestone_slug", "milestone")],
    "activity": [("g.activity_id", "activity_id"), ("g.activity_content_slug", "activity_content_slug")],
    "week": [(WEEK, "week")],
}
BY = tuple(GROUPS)


def _counts(columns: list[str]) -> str:
    """Pairs per status rank and `columns`, summed from pipeline._adherence_counts as of the
    parameter as_of."""
    listed = ", ".join(f"a.{column}" for column in columns)
    return (
        f"SELECT {listed}, a.status_rank, sum(a.pairs) AS pairs "
        f"FROM pipeline._adherence_counts(%(as_of)s) AS a GROUP BY {listed}, a.status_rank"
    )


def as_of_date(text: str) -> date:
    """--as-of: a calendar date, YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def report_query(by: str) -> str:
    """Per group and status: the pairs and their share of the group, in percent; parameters
    as_of (a date or NULL: today) and statuses (STATUSES)."""
    keys = ", ".join(f"{expression} AS {name}" for expression, name in KEYS[by])
    names = ", ".join(name for _, name in KEYS[by])
    return (
        f"SELECT {names}, (%(statuses)s::text[])[t.status_rank] AS status, t.pairs, "
        f"round(100.0 * t.pairs / sum(t.pairs) OVER (PARTITION BY {names}), 1) AS share_pct "
        f"FROM (SELECT {keys}, g.status_rank, sum(g.pairs)::bigint AS pairs "
        f"FROM ({_counts(GROUPS[by])}) AS g "
        f"GROUP BY {', '.join(e for e, _ in KEYS[by])}, g.status_rank) AS t "
        f"ORDER BY {names}, t.status_rank"
    )


# The charts' rows: pairs per milestone, week and status.
WEEKS_QUERY = (
    "SELECT t.milestone, t.week, (%(statuses)s::text[])[t.status_rank] AS status, t.pairs "
    f"FROM (SELECT g.schedule_milestone_slug AS milestone, {WEEK} AS week, g.status_rank, "
    "sum(g.pairs)::bigint AS pairs "
    f"FROM ({_counts(['schedule_milestone_slug', 'schedule_start_offset_days'])}) AS g "
    "GROUP BY 1, 2, 3) AS t ORDER BY 1, 2, 3"
)
TODAY_QUERY = "SELECT (now() AT TIME ZONE s.report_time_zone)::date AS today FROM pipeline.settings AS s"


def adherence_report(target: Target, as_of: date | None, by: str) -> list[dict[str, Any]]:
    """Per group and status: the pairs and their share of the group, in percent."""
    with using(target) as conn:
        require_migrated(conn)
        with conn.transaction():
            _plan_for_a_report(conn)
            return _read(conn, report_query(by), _params(as_of))


def html_report(target: Target, as_of: date | None, path: Path) -> tuple[date, int]:
    """Write the report page (every grouping and the charts) to `path`, all read in one
    snapshot; returns the as-of date it used and how many pairs it counts."""
    with using(target) as conn:
        require_migrated(conn)
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            _plan_for_a_report(conn)
            day = as_of or _read(conn, TODAY_QUERY, ())[0]["today"]
            tables = {by: _read(conn, report_query(by), _params(day)) for by in BY}
            weeks = _read(conn, WEEKS_QUERY, _params(day))
    page = report_html.render_page(day, tables, weeks)
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write the HTML report to {path}: {exc.strerror or exc}") from None
    return day, sum(int(row["pairs"]) for row in tables["milestone"])


def _params(as_of: date | None) -> dict[str, Any]:
    return {"as_of": as_of, "statuses": list(STATUSES)}


def _plan_for_a_report(conn: psycopg.Connection[dict[str, Any]]) -> None:
    """The report is one scan of millions of pairs into a few groups. JIT compiling its
    per-row steps (reading each row's columns, the status) without LLVM's optimisation and
    inlining takes a few milliseconds per process and saves more than that; with them (which
    the report's estimated cost triggers) compiling takes longer than the scan saves."""
    conn.execute("SET LOCAL jit_optimize_above_cost = -1")
    conn.execute("SET LOCAL jit_inline_above_cost = -1")


def _read(
    conn: psycopg.Connection[dict[str, Any]], query: str, params: dict[str, Any] | tuple[Any, ...]
) -> list[dict[str, Any]]:
    try:
        return conn.execute(query, params).fetchall()
    except psycopg.errors.InsufficientPrivilege:
        raise  # the CLI names the grant that fixes it
    except psycopg.Error as exc:
        raise database_error("reading adherence", exc) from None
