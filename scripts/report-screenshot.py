"""Render an example adherence report (made-up but plausible counts: three milestones, the
held-back pairs) and take the README's screenshot of it with headless Chromium.

    .venv/bin/python scripts/report-screenshot.py docs/report.png
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # the report extra (matplotlib) brings Pillow

from pytools.report_html import STATUSES, render_page

AS_OF = date(2026, 12, 1)
# milestone -> (its weeks, the week most of its patients are in now, pairs per week)
MILESTONES = {
    "enrolment": (range(0, 13), 9, 120),
    "surgery": (range(-2, 13), 5, 95),
    "discharge": (range(0, 7), 3, 60),
}


def _counts(week: int, now: int, pairs: int) -> Counter[str]:
    """Weeks long past are mostly done, some late or overdue; weeks to come mostly not open."""
    past = max(0.0, min(1.0, (now - week) / 3))
    shares = {
        "no_window": 0.03,
        "done_in_window": 0.70 * past + 0.05,
        "done_late": 0.08 * past,
        "done_early": 0.03 + 0.02 * (1 - past),
        "done_undated": 0.02,
        "overdue": 0.12 * past,
        "not_yet_open": 0.85 * (1 - past) if week > now else 0.0,
        "open": 0.5 * (1 - past) if week <= now else 0.05,
    }
    total = sum(shares.values())
    return Counter({status: round(pairs * share / total) for status, share in shares.items() if share})


def example() -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    weeks: dict[tuple[str | None, int | None], Counter[str]] = {}
    for milestone, (span, now, pairs) in MILESTONES.items():
        for week in span:
            weeks[milestone, week] = _counts(week, now, pairs)
        weeks[milestone, None] = Counter({"no_window": 6})
    weeks[None, None] = Counter({"held_back": 140, "no_window": 22})
    rows = [
        {"milestone": m, "week": w, "status": s, "pairs": n}
        for (m, w), counts in weeks.items()
        for s, n in counts.items()
        if n
    ]
    tables = {
        "milestone": _group(weeks, lambda key: {"milestone": key[0]}),
        "week": _group(weeks, lambda key: {"week": key[1]}),
    }
    return rows, tables


def _group(weeks: dict[Any, Counter[str]], group: Any) -> list[dict[str, Any]]:
    sums: dict[tuple[Any, ...], Counter[str]] = {}
    for key, counts in weeks.items():
        sums.setdefault(tuple(group(key).items()), Counter()).update(counts)
    ordered = sorted(
        sums.items(), key=lambda item: [(v is None, v if v is not None else 0) for _, v in item[0]]
    )
    return [
        {**dict(key), "status": s, "pairs": counts[s], "share_pct": 100 * counts[s] / counts.total()}
        for key, counts in ordered
        for s in STATUSES
        if counts[s]
    ]


def main(out: Path) -> None:
    rows, tables = example()
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "adherence.html"
        page.write_text(render_page(AS_OF, tables, rows), encoding="utf-8")
        shot = Path(folder) / "shot.png"
        subprocess.run(
            [
                "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                f"--user-data-dir={folder}/profile", "--proxy-server=http://127.0.0.1:9",
                "--window-size=1000,1090", f"--screenshot={shot}", page.as_uri(),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        with Image.open(shot) as image:
            image.convert("RGB").quantize(colors=96).save(out, optimize=True)
    print(f"{out}: {out.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
