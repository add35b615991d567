"""The approach we replaced, rebuilt as a baseline: read the tables into pandas, join, parse each
slug in Python row by row, append the result with `to_sql`. Kept faithful in cost, not in bugs."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pandas as pd
import sqlalchemy
from psycopg.conninfo import conninfo_to_dict

ALIASES = {
    "op": "operation", "operation": "operation", "appt": "appointment", "appointment": "appointment",
    "inv": "invitation", "invitation": "invitation", "reg": "registration",
    "registration": "registration", "dis": "discharge", "discharge": "discharge", "consent": "consent",
}  # fmt: skip
DATE_COLUMN = {
    "operation": "operation_date", "invitation": "invitation_date",
    "registration": "registration_date", "discharge": "discharge_date", "consent": "consent_date",
}  # fmt: skip
UNIT_DAYS = {"d": 1, "w": 7, "m": 30, "y": 365}
Window = tuple[int | None, int | None, str | None]
FORMS: dict[str, Callable[[list[int], Any], Window]] = {
    "OOPM": lambda o, m: (-o[0], -o[1], m), "OOQM": lambda o, m: (o[0], o[1], m),
    "OPM": lambda o, m: (-o[0], 0, m), "OQM": lambda o, m: (o[0], None, m),
    "OM": lambda o, m: (o[0], None, m),
    "OPOQM": lambda o, m: (-o[0], o[1], m), "OPX": lambda o, m: (-o[0], o[1], "operation"),
    "X": lambda o, m: (o[0], None, "operation"), "MOQM": lambda o, m: (0, o[0], m),
    "OMQM": lambda o, m: (0, o[0], m), "MOPM": lambda o, m: (-o[0], 0, m), "OMPM": lambda o, m: (-o[0], 0, m),
    "PM": lambda o, m: (None, 0, m), "QM": lambda o, m: (0, None, m), "M": lambda o, m: (0, None, m),
    "MD": lambda o, m: (o[0], o[0], m),
}  # fmt: skip


def parse_slug(slug: object) -> Window | None:
    """The grammar in Python; None when the slug does not parse."""
    if not isinstance(slug, str) or not slug.strip():
        return None
    text = slug.strip().lower()
    if text == "always":
        return (None, None, None)
    kinds, offsets, milestones = "", [], []
    for token in text.split("-"):
        if token in ("pre", "post"):
            kinds += "P" if token == "pre" else "Q"
        elif match := re.fullmatch(r"([0-9]+)([dwmy])(po)?", token):
            offsets.append(int(match[1]) * UNIT_DAYS[match[2]])
            kinds += "X" if match[3] else "O"
        elif match := re.fullmatch(r"d([0-9]+)", token):
            offsets.append(int(match[1]))
            kinds += "D"
        elif token in ALIASES:
            milestones.append(ALIASES[token])
            kinds += "M"
        else:
            return None
    if len(set(milestones)) > 1 or any(o > 36500 for o in offsets) or kinds not in FORMS:
        return None
    start, end, milestone = FORMS[kinds](offsets, milestones[0] if milestones else None)
    if start is not None and end is not None and end < start:
        return None
    return start, end, milestone


def add_days(day: Any, offset: Any) -> date | None:
    if offset is None or pd.isna(offset) or day is None or pd.isna(day):
        return None
    try:
        result: date = pd.Timestamp(day).date() + timedelta(days=int(offset))
        return result
    except (OverflowError, ValueError):
        return None


def run_old_pipeline(url: str) -> int:
    # libpq's own parse, so that any URL works (the benchmark cluster's is a socket directory)
    engine = sqlalchemy.create_engine("postgresql+psycopg://", connect_args=conninfo_to_dict(url))
    pj = pd.read_sql("SELECT * FROM public.patient_journey", engine)
    ja = pd.read_sql("SELECT journey_id, activity_id FROM public.journey_activity", engine)
    activity = pd.read_sql("SELECT id AS activity_id, content_slug, schedule_id FROM public.activity", engine)
    schedule = pd.read_sql("SELECT id AS schedule_id, slug AS schedule_slug FROM public.schedule", engine)
    surveys = pd.read_sql("SELECT DISTINCT patient_journey_id, activity_id FROM public.survey_result", engine)

    pairs = pj.rename(columns={"id": "patient_journey_id"}).merge(ja, on="journey_id")[
        ["patient_journey_id", "activity_id"]
    ]
    pairs = pd.concat([pairs, surveys]).drop_duplicates()
    rows = (
        pairs.merge(pj.rename(columns={"id": "patient_journey_id"}), on="patient_journey_id")
        .merge(activity, on="activity_id")
        .merge(schedule, on="schedule_id", how="left")
    )
    parsed = rows["schedule_slug"].apply(parse_slug)  # row by row, as the old script did
    rows = rows[parsed.notna() | rows["schedule_id"].isna()].copy()
    parsed = parsed[rows.index]
    rows["schedule_start_offset_days"] = [p[0] if p else None for p in parsed]
    rows["schedule_end_offset_days"] = [p[1] if p else None for p in parsed]
    rows["schedule_milestone_slug"] = [p[2] if p else None for p in parsed]
    rows["milestone_date"] = None
    for milestone, column in DATE_COLUMN.items():
        chosen = rows["schedule_milestone_slug"] == milestone
        rows.loc[chosen, "milestone_date"] = pd.to_datetime(rows.loc[chosen, column]).dt.date
    rows["window_start_date"] = [
        add_days(d, o)
        for d, o in zip(rows["milestone_date"], rows["schedule_start_offset_days"], strict=True)
    ]
    rows["window_end_date"] = [
        add_days(d, o) for d, o in zip(rows["milestone_date"], rows["schedule_end_offset_days"], strict=True)
    ]
    out = rows[
        ["patient_id", "patient_journey_id", "activity_id", "content_slug", "schedule_id", "schedule_slug",
         "schedule_start_offset_days", "schedule_end_offset_days", "schedule_milestone_slug",
         "milestone_date", "window_start_date", "window_end_date"]
    ].rename(columns={"content_slug": "activity_content_slug"})  # fmt: skip
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS old_pipeline")
    out.to_sql(
        "patient_journey_schedule_window", engine, schema="old_pipeline", if_exists="append",
        index=False, chunksize=10_000,
    )  # fmt: skip
    engine.dispose()
    return len(out)


if __name__ == "__main__":
    import json
    import resource
    import time

    started = time.perf_counter()
    written = run_old_pipeline(sys.argv[1])
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": written, "seconds": seconds, "peak_rss_mib": peak_kib / 1024}))
