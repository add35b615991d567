"""The adherence report as one self-contained HTML page: the tables and, for each milestone, a
chart of the share of each status per week relative to the milestone.

The page needs no network to open and runs no script: the charts are SVG drawn by matplotlib
(the `report` extra) and inlined, the styles are inline, and a Content-Security-Policy forbids
anything else. Every value from the database is shown as text: HTML-escaped, with control and
bidi characters (U+202E) written as visible escapes, as in the CLI's tables.
"""

from __future__ import annotations

import html
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from pytools.errors import UserError
from pytools.text import escape_controls

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# The statuses of pipeline.adherence, in the order they are decided (fixed by the spec), each
# with its colour: Paul Tol's "muted" scheme, told apart with any colour vision.
STATUSES = (
    "held_back",
    "no_window",
    "done_in_window",
    "done_late",
    "done_early",
    "done_undated",
    "overdue",
    "not_yet_open",
    "open",
)
COLOURS = {
    "held_back": "#332288",
    "no_window": "#aa4499",
    "done_in_window": "#117733",
    "done_late": "#999933",
    "done_early": "#44aa99",
    "done_undated": "#88ccee",
    "overdue": "#cc6677",
    "not_yet_open": "#dddddd",
    "open": "#ddcc77",
}
MEANINGS = {
    "held_back": "the pipeline holds the pair back (bad slug, missing activity, date out of range)",
    "no_window": "no window can be known (no schedule, or the milestone has no date)",
    "done_in_window": "a result dated inside the window",
    "done_late": "the first result came after the window",
    "done_early": "results only before the window",
    "done_undated": "a result without a date",
    "overdue": "nothing done and the window has closed",
    "not_yet_open": "nothing done and the window has not opened yet",
    "open": "nothing done, due now",
}
# The groupings of the report and the columns that name a group.
GROUPINGS: dict[str, tuple[str, ...]] = {
    "milestone": ("milestone",),
    "activity": ("activity_id", "activity_content_slug"),
    "week": ("week",),
}
NONE = "(none)"
EXTRA_MISSING = "the HTML report needs the report extra: pip install 'patient-journey-pipeline[report]'"

_STYLE = """
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: #111; margin: 1.5em;
  max-width: 72em; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #999; }
.as-of { font-size: 1.1em; margin-top: 0; }
figure { margin: 1em 0; break-inside: avoid; page-break-inside: avoid; }
figcaption { font-weight: bold; margin-bottom: 0.3em; }
figure svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #999; padding: 0.2em 0.6em; text-align: left; unicode-bidi: isolate; }
th { background: #eee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.none { font-style: italic; color: #555; }
dl.statuses { display: grid; grid-template-columns: max-content auto; gap: 0.1em 1em; font-size: 0.9em; }
dl.statuses dt { font-family: "DejaVu Sans Mono", monospace; }
dl.statuses dd { margin: 0; }
@media print {
  body { margin: 0; max-width: none; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; page-break-inside: avoid; }
  h2 { break-after: avoid; page-break-after: avoid; }
}
"""
# Nothing but inline styles: no script, no request of any kind, even if a value slipped through.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


class ReportExtraMissing(UserError):
    """matplotlib, which draws the charts, is not installed."""

    def __init__(self) -> None:
        super().__init__(EXTRA_MISSING)


def render_page(
    as_of: date,
    tables: Mapping[str, Sequence[Mapping[str, Any]]],
    weeks: Sequence[Mapping[str, Any]],
) -> str:
    """The report page.

    `tables`: for each grouping of GROUPINGS shown, its rows: the group's columns, then
    `status`, `pairs` and `share_pct`. `weeks`: rows `{milestone, week, status, pairs}`, one chart
    per milestone, in the order milestones first appear there (no milestone last). A group value
    None is shown as "(none)". Raises ReportExtraMissing when matplotlib is not installed."""
    figure_class = _figure_class()
    charts = [
        _figure(index, milestone, rows, figure_class)
        for index, (milestone, rows) in enumerate(_by_milestone(weeks))
    ]
    sections = [_table_section(name, tables[name]) for name in GROUPINGS if name in tables]
    title = f"Adherence as of {as_of.isoformat()}"
    total = sum(int(row["pairs"]) for row in next(iter(tables.values()), []))
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{_STYLE}</style>",
            "</head>",
            "<body>",
            "<h1>Adherence</h1>",
            f'<p class="as-of">As of <time datetime="{as_of.isoformat()}">{as_of.isoformat()}</time>:'
            f" {total:,} pairs (patient journey, activity), held-back pairs included.</p>",
            _statuses_list(),
            "<h2>Share of each status per week relative to the milestone</h2>",
            *(charts or ["<p>No pairs.</p>"]),
            *sections,
            "</body>",
            "</html>",
            "",
        ]
    )


def _figure_class() -> type[Figure]:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ReportExtraMissing() from exc
    return Figure


def _text(value: Any) -> str:
    """A value as HTML text; None as "(none)"."""
    if value is None:
        return f'<span class="none">{NONE}</span>'
    return html.escape(escape_controls(str(value)), quote=True)


def _label(value: Any) -> str:
    """A value as plain text for a chart (matplotlib escapes it for SVG)."""
    return NONE if value is None else escape_controls(str(value))


def _statuses_list() -> str:
    items = "".join(f"<dt>{status}</dt><dd>{html.escape(MEANINGS[status])}</dd>" for status in STATUSES)
    return f'<dl class="statuses">{items}</dl>'


def _table_section(grouping: str, rows: Sequence[Mapping[str, Any]]) -> str:
    columns = GROUPINGS[grouping]
    head = "".join(f"<th>{name}</th>" for name in (*columns, "status", "pairs", "share (%)"))
    body = "".join(
        "<tr>"
        + "".join(f"<td>{_text(row.get(column))}</td>" for column in (*columns, "status"))
        + f'<td class="num">{int(row["pairs"]):,}</td>'
        + f'<td class="num">{float(row["share_pct"]):.1f}</td>'
        + "</tr>"
        for row in rows
    )
    table = (
        f'<table id="by-{grouping}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        if rows
        else "<p>No pairs.</p>"
    )
    return f"<h2>By {grouping}</h2>\n{table}"


def _by_milestone(
    weeks: Iterable[Mapping[str, Any]],
) -> list[tuple[Any, dict[Any, dict[str, int]]]]:
    """For each milestone (first appearance order, None last): week -> status -> pairs."""
    grouped: dict[Any, dict[Any, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for row in weeks:
        if int(row["pairs"]) <= 0:  # nothing to draw, and a week of no pairs has no shares
            continue
        counts = grouped[row["milestone"]][row["week"]]
        counts[row["status"]] = counts.get(row["status"], 0) + int(row["pairs"])
    return sorted(grouped.items(), key=lambda item: item[0] is None)


def _week_key(week: Any) -> tuple[bool, Any]:
    return (week is None, week if week is not None else 0)


def _figure(
    index: int, milestone: Any, weeks: Mapping[Any, Mapping[str, int]], figure_class: type[Figure]
) -> str:
    caption = f"Milestone: {_text(milestone)}"
    svg = _chart_svg(index, milestone, weeks, figure_class)
    label = html.escape(f"Share of each status per week, milestone {_label(milestone)}", quote=True)
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)
    return f'<figure id="chart-{index}">\n<figcaption>{caption}</figcaption>\n{svg}\n</figure>'


def _chart_svg(
    index: int, milestone: Any, weeks: Mapping[Any, Mapping[str, int]], figure_class: type[Figure]
) -> str:
    """A stacked bar per week, 100% high: the share of each status among that week's pairs.

    The bars are stacked in the reverse of STATUSES, so that the legend, in the order of
    STATUSES, reads like a bar from top to bottom. Each bar's SVG group is `c<index>-<status>-<n>`."""
    import matplotlib
    from matplotlib.patches import Patch

    order = sorted(weeks, key=_week_key)
    totals = [sum(weeks[week].values()) for week in order]
    with matplotlib.rc_context(
        {
            "svg.fonttype": "none",  # text stays text: selectable, searchable, sharp when printed
            "svg.hashsalt": f"adherence-chart-{index}",  # ids unique per chart, output reproducible
            "text.parse_math": False,  # a "$" in a slug is a dollar sign
            "font.family": "sans-serif",
            "font.size": 9,
        }
    ):
        width = min(11.0, max(6.5, 3.0 + 0.45 * len(order)))
        figure = figure_class(figsize=(width, 3.4), layout="constrained")
        axes = figure.add_subplot()
        positions = list(range(len(order)))
        bottoms = [0.0] * len(order)
        for status in reversed(STATUSES):
            shown = [
                (position, 100.0 * weeks[week].get(status, 0) / total)
                for position, (week, total) in enumerate(zip(order, totals, strict=True))
                if weeks[week].get(status, 0) > 0
            ]
            if shown:
                xs = [position for position, _ in shown]
                heights = [share for _, share in shown]
                bars = axes.bar(
                    xs, heights, bottom=[bottoms[x] for x in xs], width=0.8, color=COLOURS[status]
                )
                for n, bar in enumerate(bars):
                    bar.set_gid(f"c{index}-{status}-{n}")
                for x, share in shown:
                    bottoms[x] += share
        axes.set_xticks(
            positions,
            [f"{_label(week)}\nn={total:,}" for week, total in zip(order, totals, strict=True)],
        )
        axes.set_xlim(-0.6, len(order) - 0.4)
        axes.set_ylim(0, 100)
        axes.set_ylabel("share of pairs (%)")
        axes.set_xlabel("week relative to the milestone (start offset // 7); n = pairs that week")
        axes.spines[["top", "right"]].set_visible(False)
        handles = [Patch(facecolor=COLOURS[status], label=status) for status in STATUSES]
        figure.legend(handles=handles, loc="outside right center", frameon=False)
        out = io.StringIO()
        figure.savefig(
            out,
            format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    svg = out.getvalue()
    return svg[svg.index("<svg ") :]  # without the XML declaration and DOCTYPE: HTML inlines it
