"""The adherence report's HTML page (`report --html FILE`), opened in a real browser: Debian's
headless Chromium dumps the DOM it built and takes a screenshot, read with Pillow (which
matplotlib, the report extra, brings along).

Chromium runs behind a proxy on 127.0.0.1 that answers every request with 502, so nothing
leaves the machine, and writes a net log: the requests made for the page are those whose
network isolation key is the page's own (file://) site; the browser's own update and account
checks, made for any page, have another key. A control page proves they are seen."""

from __future__ import annotations

import json
import re
import shutil
import socketserver
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pytools.report_html import COLOURS, STATUSES, render_page
from pytools.text import escape_controls
from tests.helpers.cli import REPO

pytest.importorskip("matplotlib", reason="the report extra is in the dev extra: pip install -e '.[dev]'")

AS_OF = date(2026, 12, 1)
HOSTILE_SLUG = '<script>alert(1)</script> & "q" \u202eevil'
HOSTILE_MILESTONE = "<img src=x onerror=\"document.title='pwned'\"> 5$ $\\frac{"
# (milestone, week) -> status -> pairs: each status but held_back is half of one surgery week
# (a block of the bar a person sees), held_back most of the bar of the pairs with no milestone.
COUNTS: dict[tuple[str | None, int | None], dict[str, int]] = {
    ("surgery", -1): {"no_window": 50, "done_in_window": 50},
    ("surgery", 0): {"done_late": 50, "done_early": 50},
    ("surgery", 1): {"done_undated": 50, "overdue": 50},
    ("surgery", 2): {"not_yet_open": 50, "open": 50},
    ("surgery", None): {"no_window": 4},
    (HOSTILE_MILESTONE, 0): {"open": 30, "overdue": 10},
    (None, None): {"held_back": 17, "no_window": 3},
}


def _weeks() -> list[dict[str, Any]]:
    return [
        {"milestone": milestone, "week": week, "status": status, "pairs": pairs}
        for (milestone, week), counts in COUNTS.items()
        for status, pairs in counts.items()
    ]


def _table(column: str, key: int) -> list[dict[str, Any]]:
    groups: dict[Any, Counter[str]] = {}
    for group, counts in COUNTS.items():
        groups.setdefault(group[key], Counter()).update(counts)
    return [
        {column: value, "status": status, "pairs": n, "share_pct": 100 * n / counts.total()}
        for value, counts in groups.items()
        for status in STATUSES
        if (n := counts[status])
    ]


def _tables() -> dict[str, list[dict[str, Any]]]:
    activity = [
        {"activity_id": 7, "activity_content_slug": HOSTILE_SLUG, "status": "overdue", "pairs": 60},
        {"activity_id": 8, "activity_content_slug": None, "status": "held_back", "pairs": 17},
    ]
    for row in activity:
        row["share_pct"] = 100.0
    return {"milestone": _table("milestone", 0), "activity": activity, "week": _table("week", 1)}


def _charts() -> list[str | None]:
    """The milestones in the order of the page's charts: first appearance, none last."""
    milestones = list(dict.fromkeys(milestone for milestone, _ in COUNTS))
    return sorted(milestones, key=lambda milestone: milestone is None)


def _expected_bars() -> Counter[tuple[int, str]]:
    """(chart, status) -> bars: one for each week of that milestone where the status has pairs."""
    index = {milestone: n for n, milestone in enumerate(_charts())}
    return Counter(
        (index[milestone], status) for (milestone, _), counts in COUNTS.items() for status in counts
    )


class _Page(HTMLParser):
    """The tags of a page and the text of its table cells and captions."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: Counter[str] = Counter()
        self.attributes: list[tuple[str, str | None]] = []
        self.cells: list[str] = []
        self.captions: list[str] = []
        self.title = ""
        self._into: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.attributes += attrs
        if tag in ("td", "figcaption", "title"):
            self._into = {"td": self.cells, "figcaption": self.captions, "title": []}[tag]
            self._into.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "figcaption"):
            self._into = None
        if tag == "title":
            self.title, self._into = (self._into or [""])[-1], None

    def handle_data(self, data: str) -> None:
        if self._into is not None:
            self._into[-1] += data


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


def test_every_value_of_the_report_is_text_on_the_page_never_markup() -> None:
    """Actor: a source application that writes content slugs (threat-model.md): a slug holding
    markup, quotes, ampersands and a right-to-left override is shown as those characters."""
    page = _parse(render_page(AS_OF, _tables(), _weeks()))
    assert set(page.tags) <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "time"} | {
        "dl", "dt", "dd", "figure", "figcaption", "span", "table", "thead", "tbody", "tr", "th", "td",
        "svg", "defs", "g", "path", "text", "use", "clippath", "rect",
    }  # fmt: skip
    assert escape_controls(HOSTILE_SLUG) in page.cells  # the U+202E as a visible \u202e
    assert f"Milestone: {HOSTILE_MILESTONE}" in page.captions
    assert "(none)" in page.cells and "Milestone: (none)" in page.captions
    assert page.title == f"Adherence as of {AS_OF.isoformat()}"


def test_the_page_refers_to_nothing_outside_itself() -> None:
    """No src, no href but to an element of the page, no url() but to one, no @import."""
    text = render_page(AS_OF, _tables(), _weeks())
    page = _parse(text)
    refs = [value for name, value in page.attributes if name in ("src", "href", "xlink:href", "action")]
    assert all(value and value.startswith("#") for value in refs), refs
    assert re.findall(r"url\(\s*([^)]*)\)", text) and all(
        ref.startswith("#") for ref in re.findall(r"url\(\s*([^)]*)\)", text)
    )
    assert "@import" not in text


def test_without_the_report_extra_the_page_raises_one_line_saying_how_to_install_it() -> None:
    """The CLI prints a UserError's message alone: here, the pip command that installs the extra."""
    probe = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from datetime import date\n"
        "from pytools.errors import UserError\n"
        "from pytools.report_html import render_page\n"
        "try:\n"
        "    render_page(date(2026, 12, 1), {}, [])\n"
        "except UserError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "the HTML report needs the report extra: pip install 'patient-journey-pipeline[report]'\n"
    )


# In the browser


class _Refuser(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.rfile.readline(8192)
        self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@dataclass
class Browser:
    """Headless Chromium behind a proxy that refuses every request."""

    folder: Path
    proxy_port: int

    def run(self, url: str, *args: str) -> tuple[str, list[str]]:
        """What Chromium printed, and the URLs it requested for the page."""
        net_log = self.folder / "net-log.json"
        command = [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            f"--user-data-dir={self.folder / 'profile'}",
            f"--log-net-log={net_log}",
            f"--proxy-server=http://127.0.0.1:{self.proxy_port}",
            "--proxy-bypass-list=<-loopback>",  # loopback too goes to the proxy
            *args,
            url,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout, _page_requests(json.loads(net_log.read_text()))


def _page_requests(net_log: dict[str, Any]) -> list[str]:
    """The URLs of the requests made for a file:// page (its top frame's site is file://)."""
    start_job = net_log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        params["url"]
        for event in net_log["events"]
        if event["type"] == start_job
        and "url" in (params := event.get("params", {}))
        and str(params.get("network_isolation_key", "")).startswith("file://")
        and not params["url"].startswith(("file:", "data:"))
    ]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed: bash scripts/install-system.sh installs it")
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Refuser) as proxy:
        proxy.daemon_threads = True
        thread = threading.Thread(target=proxy.serve_forever, daemon=True)
        thread.start()
        try:
            yield Browser(tmp_path_factory.mktemp("chromium"), proxy.server_address[1])
        finally:
            proxy.shutdown()


@dataclass
class Shown:
    dom: str
    screenshot: Path
    page_requests: list[str]


@pytest.fixture(scope="module")
def shown(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Shown:
    """The report page as the browser built it and drew it, and the requests it made."""
    folder = tmp_path_factory.mktemp("report")
    page = folder / "adherence.html"
    page.write_text(render_page(AS_OF, _tables(), _weeks()), encoding="utf-8")
    dom, requested = browser.run(page.as_uri(), "--dump-dom")
    screenshot = folder / "adherence.png"
    _, requested_too = browser.run(page.as_uri(), f"--screenshot={screenshot}", "--window-size=1100,1800")
    return Shown(dom, screenshot, requested + requested_too)


@pytest.mark.slow  # two Chromium runs
def test_the_browser_draws_one_chart_per_milestone_with_a_bar_for_each_status_and_week(shown: Shown) -> None:
    """Bars are SVG groups `c<chart>-<status>-<n>`: the count per chart and status is the number
    of that milestone's weeks where the status has pairs; the pairs with no milestone (the
    held-back ones) have their chart too."""
    page = _parse(shown.dom)
    assert page.captions == [f"Milestone: {'(none)' if m is None else m}" for m in _charts()]
    bars = Counter(
        (int(chart), status) for chart, status in re.findall(r'<g id="c(\d+)-([a-z_]+)-\d+"', shown.dom)
    )
    assert bars == _expected_bars()
    legend_entries = re.findall(r"<text[^>]*>(" + "|".join(STATUSES) + r")</text>", shown.dom)
    assert legend_entries == list(STATUSES) * len(_charts())  # a legend per chart, in the fixed order


@pytest.mark.slow  # two Chromium runs
def test_the_screenshot_shows_a_block_of_every_status_colour(shown: Shown) -> None:
    """As a person sees it: for each status, 24x24 pixels of its colour in one piece somewhere
    (a bar segment; a legend's swatch is smaller), so the charts are drawn, visible and coloured."""
    from PIL import Image, ImageFilter

    with Image.open(shown.screenshot) as image:
        rgb = image.convert("RGB")
    assert rgb.getextrema() != ((255, 255), (255, 255), (255, 255)), "a blank screenshot"
    missing = []
    for status in STATUSES:
        target = tuple(int(COLOURS[status][i : i + 2], 16) for i in (1, 3, 5))
        bands = [
            band.point(lambda value, wanted=wanted: 255 if abs(value - wanted) <= 2 else 0)
            for band, wanted in zip(rgb.split(), target, strict=True)
        ]
        mask = Image.composite(bands[0], Image.new("L", rgb.size, 0), bands[1])
        mask = Image.composite(mask, Image.new("L", rgb.size, 0), bands[2])
        if mask.filter(ImageFilter.MinFilter(25)).getbbox() is None:
            missing.append(status)
    assert not missing, f"no block of the colour of {missing} in {shown.screenshot}"


@pytest.mark.slow  # two Chromium runs
def test_a_hostile_slug_shows_as_text_in_the_browser_and_runs_nothing(shown: Shown) -> None:
    """Actor: a source application that writes content slugs (threat-model.md). The browser's
    DOM has the slug and the milestone as text and no element made from them: no script, no
    image whose onerror would have renamed the page."""
    page = _parse(shown.dom)
    assert escape_controls(HOSTILE_SLUG) in page.cells
    assert f"Milestone: {HOSTILE_MILESTONE}" in page.captions
    assert not {"script", "img", "iframe", "object", "embed", "link"} & set(page.tags)
    assert page.title == f"Adherence as of {AS_OF.isoformat()}"


@pytest.mark.slow  # two Chromium runs
def test_the_page_makes_no_network_request_when_opened(shown: Shown) -> None:
    assert shown.page_requests == []


@pytest.mark.slow  # a Chromium run
def test_the_net_log_shows_the_requests_a_page_makes(browser: Browser, tmp_path: Path) -> None:
    """The control for the test above: a page with a style sheet, an image and a script from
    elsewhere, over http and https."""
    page = tmp_path / "control.html"
    page.write_text(
        '<link rel="stylesheet" href="http://style.invalid/s.css"><img src="http://img.invalid/i.png">'
        '<script src="https://script.invalid/s.js"></script>'
    )
    _, requested = browser.run(page.as_uri(), "--dump-dom")
    assert sorted(requested) == [
        "http://img.invalid/i.png",
        "http://style.invalid/s.css",
        "https://script.invalid/s.js",
    ]
