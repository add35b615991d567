"""`python -m pytools report`: counts and shares of each adherence status per milestone,
activity or week, held-back pairs included, as pipeline_reader; its formats and its errors."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers.cli import USAGE, assert_ok, assert_one_error_line, clean_env, cli
from tests.helpers.databases import with_params
from tests.helpers.pipeline import insert, run


@pytest.fixture
def reader_env(db: psycopg.Connection[dict[str, Any]], db_url: str) -> dict[str, str]:
    """Four patient journeys operated on 2026-03-10, each with three activities: 1d-7d-post-op
    (journey 1 did it on 2026-03-12), pre-op, and a slug that does not parse (held back); run
    once. The environment of an analyst who is only pipeline_reader."""
    insert(db, "schedule", ["id", "slug"], [(100, "1d-7d-post-op"), (101, "pre-op"), (102, "weekly-ish")])
    insert(
        db,
        "activity",
        ["id", "content_slug", "schedule_id"],
        [(10, "knee", 100), (11, "prep", 101), (12, "x", 102)],
    )
    insert(db, "journey_activity", ["journey_id", "activity_id"], [(1, 10), (1, 11), (1, 12)])
    insert(
        db,
        "patient_journey",
        ["id", "patient_id", "journey_id", "operation_date"],
        [(j, 500 + j, 1, "2026-03-10") for j in range(1, 5)],
    )
    insert(
        db,
        "survey_result",
        ["patient_journey_id", "activity_id", "end_time"],
        [(1, 10, "2026-03-12 09:00+00")],
    )
    run(db)
    return clean_env(with_params(db_url, user="pipeline_reader"))


def report(env: dict[str, str], tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(
        assert_ok(cli("report", "--format", "json", *args, env=env, cwd=tmp_path))
    )
    return rows


def test_the_reader_gets_each_status_per_milestone_held_back_pairs_in_their_own_group(
    reader_env: dict[str, str], tmp_path: Path
) -> None:
    """Actor: pipeline_reader, an analyst who may read the results only."""
    rows = report(reader_env, tmp_path, "--as-of", "2026-04-01")
    assert [(r["milestone"], r["status"], r["pairs"], r["share_pct"]) for r in rows] == [
        ("operation", "done_in_window", 1, 12.5),
        ("operation", "overdue", 7, 87.5),
        (None, "held_back", 4, 100.0),
    ]


def test_the_as_of_date_decides_what_is_open_overdue_or_not_yet_open(
    reader_env: dict[str, str], tmp_path: Path
) -> None:
    rows = report(reader_env, tmp_path, "--as-of", "2026-03-11", "--by", "activity")
    assert [(r["activity_id"], r["activity_content_slug"], r["status"], r["pairs"]) for r in rows] == [
        (10, "knee", "done_in_window", 1),
        (10, "knee", "open", 3),
        (11, "prep", "overdue", 4),
        (12, "x", "held_back", 4),  # held back, named by the activity the source has
    ]
    early = report(reader_env, tmp_path, "--as-of", "2026-03-01", "--by", "activity")
    assert [(r["activity_id"], r["status"], r["pairs"]) for r in early][1:3] == [
        (10, "not_yet_open", 3),
        (11, "open", 4),
    ]


def test_by_week_floors_the_start_offset_and_puts_no_offset_and_held_back_pairs_in_the_null_week(
    reader_env: dict[str, str], tmp_path: Path
) -> None:
    rows = report(reader_env, tmp_path, "--as-of", "2026-04-01", "--by", "week")
    assert [(r["week"], r["status"], r["pairs"], r["share_pct"]) for r in rows] == [
        (0, "done_in_window", 1, 25.0),
        (0, "overdue", 3, 75.0),
        (None, "held_back", 4, 50.0),
        (None, "overdue", 4, 50.0),
    ]


def test_the_report_prints_a_table_or_csv_and_defaults_to_today(
    reader_env: dict[str, str], tmp_path: Path
) -> None:
    table = assert_ok(cli("report", "--as-of", "2026-04-01", env=reader_env, cwd=tmp_path)).splitlines()
    assert table[0].split() == ["milestone", "status", "pairs", "share_pct"]
    assert table[2].split() == ["operation", "done_in_window", "1", "12.5"]
    env = {**reader_env, "PIPELINE_FORMAT": "csv", "PIPELINE_REPORT_BY": "activity"}
    got = list(csv.DictReader(io.StringIO(assert_ok(cli("report", env=env, cwd=tmp_path)))))
    assert sum(int(r["pairs"]) for r in got) == 12  # today: every window of 2026-03 is long past
    assert {r["status"] for r in got} == {"done_in_window", "overdue", "held_back"}


@pytest.mark.parametrize("as_of", ["2026-02-30", "yesterday", "01/04/2026", ""])
def test_a_bad_as_of_date_is_a_usage_error_in_one_line(
    reader_env: dict[str, str], tmp_path: Path, as_of: str
) -> None:
    line = assert_one_error_line(cli("report", "--as-of", as_of, env=reader_env, cwd=tmp_path), USAGE)
    assert "is not a date (YYYY-MM-DD)" in line
    line = assert_one_error_line(
        cli("report", env={**reader_env, "PIPELINE_AS_OF": as_of}, cwd=tmp_path), USAGE
    )
    assert "PIPELINE_AS_OF" in line


def test_a_bad_grouping_is_a_usage_error(reader_env: dict[str, str], tmp_path: Path) -> None:
    assert_one_error_line(cli("report", "--by", "patient", env=reader_env, cwd=tmp_path), USAGE)


def test_the_reader_writes_the_html_page_with_every_grouping_and_a_chart_per_milestone(
    reader_env: dict[str, str], tmp_path: Path
) -> None:
    """Actor: pipeline_reader. The page is what the database says: its tables hold the counts
    the text report prints, and it has one chart for the operation and one for the held-back
    pairs, which have no milestone (the browser's view of such a page: test_report_html.py)."""
    pytest.importorskip("matplotlib", reason="the report extra is in the dev extra: pip install -e '.[dev]'")
    page = tmp_path / "adherence.html"
    out = assert_ok(cli("report", "--as-of", "2026-04-01", "--html", str(page), env=reader_env, cwd=tmp_path))
    assert out.strip() == f"wrote {page}: adherence of 12 pairs as of 2026-04-01"
    text = page.read_text(encoding="utf-8")
    assert text.count("<svg") == 2
    assert "Adherence as of 2026-04-01" in text
    for status, pairs in (("done_in_window", 1), ("overdue", 7), ("held_back", 4)):
        assert re.search(rf"<td>{status}</td>\s*<td[^>]*>{pairs}</td>", text), status


def test_an_html_file_that_cannot_be_written_is_one_error_line(
    reader_env: dict[str, str], tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib", reason="the report extra is in the dev extra: pip install -e '.[dev]'")
    missing = tmp_path / "no such folder" / "adherence.html"
    line = assert_one_error_line(cli("report", "--html", str(missing), env=reader_env, cwd=tmp_path), USAGE)
    assert "cannot write the HTML report to" in line and "No such file or directory" in line
