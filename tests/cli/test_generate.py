"""The data generator: realistic shape, deterministic, and safe against a database with data."""

from __future__ import annotations

import subprocess
import sys

from pytools.generate import ACTIVITIES_PER_JOURNEY, SCHEDULE_SLUGS, SOURCE_INDEXES, generate
from tests.helpers.pipeline import quiet, run


def test_generated_data_has_the_promised_shape_and_loads(db, db_url):
    counts = generate(db_url, 2_000, progress=quiet)
    assert counts["patient_journey"] == 2_000
    assert counts["schedule"] == len(SCHEDULE_SLUGS)
    per_journey = db.execute(
        "SELECT min(n) AS lo, max(n) AS hi FROM (SELECT journey_id, count(*) AS n "
        "FROM public.journey_activity WHERE journey_id > 1 GROUP BY 1) AS j"
    ).fetchone()
    assert per_journey["lo"] == per_journey["hi"] == ACTIVITIES_PER_JOURNEY
    spread = db.execute(
        "SELECT count(DISTINCT extract(year FROM operation_date)) AS years, "
        "count(*) FILTER (WHERE operation_date IS NULL) AS unbooked FROM public.patient_journey"
    ).fetchone()
    assert spread["years"] >= 8 and 0 < spread["unbooked"] < 2_000 * 0.1
    indexes = {
        r["indexname"] for r in db.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
    }
    assert set(SOURCE_INDEXES) <= indexes  # dropped for the load, built again after

    result = run(db)
    assert result["status"] == "succeeded"
    # ~40 pairs per journey, less what the broken slugs and orphans hold back
    assert 30 * 2_000 < result["rows_inserted"] < 41 * 2_000
    stages = {
        (r["stage"], r["schedule_slug"])
        for r in db.execute("SELECT stage, schedule_slug FROM pipeline.current_failures")
    }
    assert {("parse", "7d-post-surgery"), ("parse", "3q-pre-op"), ("parse", "reg-10d-post-op")} <= stages
    assert ("match", None) in stages  # the orphans


def test_generation_is_deterministic(db, db_url):
    digest = "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) AS h FROM public.survey_result AS t"
    generate(db_url, 300, progress=quiet)
    first = db.execute(digest).fetchone()["h"]
    generate(db_url, 300, progress=quiet)
    assert db.execute(digest).fetchone()["h"] == first


def test_cli_refuses_to_replace_existing_data_without_force(db_url, tmp_path):
    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "pytools", "generate", "--database-url", db_url, *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )

    first = cli("--journeys", "50")
    assert first.returncode == 0, first.stderr
    assert "50/50" in first.stdout  # progress
    refused = cli("--journeys", "60")
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "--force" in refused.stderr
    assert cli("--journeys", "60", "--force").returncode == 0
