"""Charts drawn on the server as inline SVG: bar charts (stacked), sparklines, run strips and histograms.

Why SVG from Python: the console runs no JavaScript and its Content-Security-Policy forbids inline script
and inline ``style=`` attributes, so a chart is plain markup with SVG *presentation attributes*
(``fill``, ``stroke``...), which the CSP does not govern. Every label and title is escaped here (it may be
a source name an operator typed or a day from a crawled posting), colours are checked against a pattern,
numbers are formatted by us, and the number of marks is bounded so a page stays small whatever the data.

Usage::

    bar_chart(["2026-12-01", "2026-12-02"], [Series("postings", [12, 30], ACCENT)], title="Postings per day")
    sparkline([3, 5, 0, 7], title="postings per run")
    run_strip([True, True, False], title="last runs")
    histogram([1.2, 3.4, 14.0], title="job durations", unit="s")
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from markupsafe import Markup, escape

__all__ = [
    "ACCENT",
    "FAIL",
    "OK",
    "SEVERITY_COLORS",
    "Series",
    "bar_chart",
    "fill_days",
    "histogram",
    "run_strip",
    "sparkline",
]

ACCENT = "#1f5fbf"
OK = "#3c8d4f"
FAIL = "#b42318"
MUTED = "#5d6875"
GRID = "#dde2e8"
SEVERITY_COLORS = {"low": "#4a7f3f", "medium": "#b7791f", "high": "#c2410c", "critical": "#a1122a"}
#: At most this many bars or points are drawn (the newest are kept): a chart is a glance, not a table.
MAX_MARKS = 400
_COLOR = re.compile(r"^#[0-9a-fA-F]{3,8}$")


@dataclass(frozen=True)
class Series:
    """One named row of values (one per label), drawn in one colour; several series stack."""

    name: str
    values: Sequence[float]
    color: str = ACCENT


def _e(value: object) -> str:
    """Text or attribute content, XML-escaped (markupsafe escapes & < > " and ')."""
    return str(escape(str(value)))


def _color(value: str, default: str = ACCENT) -> str:
    return value if _COLOR.match(value or "") else default


def _num(value: object) -> float:
    """A drawable value: non-numbers, NaN, infinities and negatives count as 0."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) and number > 0 else 0.0


def _fmt(value: float) -> str:
    """A coordinate: short, locale-free."""
    return f"{value:.1f}".rstrip("0").rstrip(".") or "0"


def _count(value: float) -> str:
    """A value as a reader sees it: 1,234 or 2.5."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _svg(width: int, height: int, title: str, body: list[str], css: str) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{_e(css)}" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{_e(title)}">'
        f"<title>{_e(title)}</title>"
    )
    return Markup(head + "".join(body) + "</svg>")


def bar_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    width: int = 640,
    height: int = 180,
    links: Sequence[str | None] | None = None,
    empty: str = "No data yet.",
) -> Markup:
    """Bars, one per label, the series stacked bottom-up; each bar says its label and counts on hover.

    ``links`` (one per label, or None) make bars clickable (``<a href>`` in SVG needs no script). The first,
    middle and last labels are written under the axis, the largest total beside it, a legend below when
    there is more than one series."""
    labels = [str(x) for x in labels][-MAX_MARKS:]
    n = len(labels)
    rows = [(s.name, [_num(v) for v in list(s.values)[-n:]] if n else [], _color(s.color)) for s in series]
    for _name, values, _c in rows:
        values.extend([0.0] * (n - len(values)))
    link_list = list(links)[-n:] if links is not None else []
    legend = len(rows) > 1
    top, bottom, left, right = 14, 30 + (16 if legend else 0), 44, 8
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for _n, values, _c in rows) for i in range(n)]
    peak = max(totals, default=0.0)
    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="{GRID}"/>',
    ]
    if n == 0 or peak <= 0:
        body.append(
            f'<text x="{width / 2:.0f}" y="{top + plot_h / 2:.0f}" text-anchor="middle" fill="{MUTED}" '
            f'font-size="12">{_e(empty)}</text>'
        )
        return _svg(width, height, title, body, "chart chart-bars chart-empty")
    body.append(
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" fill="{MUTED}" font-size="10">'
        f"{_e(_count(peak))}</text>"
        f'<line x1="{left}" y1="{top}" x2="{width - right}" y2="{top}" stroke="{GRID}" '
        f'stroke-dasharray="2 3"/>'
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" fill="{MUTED}" font-size="10">0</text>'
    )
    slot = plot_w / n
    bar_w = max(1.0, slot * 0.8)
    for i, label in enumerate(labels):
        x = left + i * slot + (slot - bar_w) / 2
        y = float(top + plot_h)
        parts = [f"{label}: " + ", ".join(f"{name} {_count(values[i])}" for name, values, _c in rows)]
        rects = []
        for _name, values, color in rows:
            h = plot_h * values[i] / peak
            if h <= 0:
                continue
            y -= h
            rects.append(
                f'<rect x="{_fmt(x)}" y="{_fmt(y)}" width="{_fmt(bar_w)}" height="{_fmt(h)}" fill="{color}"/>'
            )
        # A transparent full-height rectangle makes the whole slot hoverable and clickable.
        hit = (
            f'<rect x="{_fmt(left + i * slot)}" y="{top}" width="{_fmt(slot)}" height="{plot_h}" '
            f'fill="#ffffff" fill-opacity="0"/>'
        )
        group = f'<g class="bar"><title>{_e(parts[0])}</title>{"".join(rects)}{hit}</g>'
        href = link_list[i] if i < len(link_list) else None
        if href:
            group = f'<a href="{_e(href)}">{group}</a>'
        body.append(group)
    for i in sorted({0, n // 2, n - 1}):
        cx = left + i * slot + slot / 2
        anchor = "start" if i == 0 and n > 1 else ("end" if i == n - 1 and n > 1 else "middle")
        body.append(
            f'<text x="{_fmt(cx)}" y="{top + plot_h + 13}" text-anchor="{anchor}" fill="{MUTED}" '
            f'font-size="10">{_e(labels[i])}</text>'
        )
    if legend:
        x = left
        for name, _values, color in rows:
            body.append(
                f'<rect x="{x}" y="{height - 11}" width="9" height="9" fill="{color}"/>'
                f'<text x="{x + 12}" y="{height - 3}" fill="{MUTED}" font-size="10">{_e(name)}</text>'
            )
            x += 24 + 6 * len(name)
    return _svg(width, height, title, body, "chart chart-bars")


def sparkline(
    values: Sequence[float],
    *,
    title: str,
    width: int = 120,
    height: int = 26,
    color: str = ACCENT,
    marks: Sequence[bool] | None = None,
) -> Markup:
    """A small line of values, oldest first; ``marks`` (one per value) puts a red dot on failed points."""
    points = [_num(v) for v in values][-MAX_MARKS:]
    flags = list(marks)[-len(points) :] if marks is not None and points else []
    pad = 3
    if not points:
        body = [
            f'<line x1="0" y1="{height - pad}" x2="{width}" y2="{height - pad}" stroke="{GRID}" '
            f'stroke-dasharray="2 3"/>'
        ]
        return _svg(width, height, title, body, "chart chart-spark chart-empty")
    peak = max(points) or 1.0
    step = (width - 2 * pad) / max(1, len(points) - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return pad + i * step, height - pad - (height - 2 * pad) * v / peak

    coords = [xy(i, v) for i, v in enumerate(points)]
    if len(coords) == 1:
        coords.append((width - pad, coords[0][1]))
    body = [
        f'<polyline points="{" ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in coords)}" fill="none" '
        f'stroke="{_color(color)}" stroke-width="1.5" stroke-linejoin="round"/>'
    ]
    for i, failed in enumerate(flags):
        if failed:
            x, y = xy(i, points[i])
            body.append(f'<circle cx="{_fmt(x)}" cy="{_fmt(y)}" r="2.5" fill="{FAIL}"/>')
    last_x, last_y = xy(len(points) - 1, points[-1])
    body.append(f'<circle cx="{_fmt(last_x)}" cy="{_fmt(last_y)}" r="2" fill="{_color(color)}"/>')
    return _svg(width, height, title, body, "chart chart-spark")


def run_strip(failed: Sequence[bool], *, title: str, width: int = 120, height: int = 14) -> Markup:
    """One tick per run, oldest first: green when it succeeded, red (and taller) when it failed."""
    flags = [bool(f) for f in failed][-MAX_MARKS:]
    if not flags:
        return _svg(width, height, title, [], "chart chart-strip chart-empty")
    slot = width / max(len(flags), 1)
    tick = max(1.0, slot - 1)
    body = []
    for i, bad in enumerate(flags):
        h = height if bad else height * 0.55
        body.append(
            f'<rect x="{_fmt(i * slot)}" y="{_fmt(height - h)}" width="{_fmt(tick)}" height="{_fmt(h)}" '
            f'fill="{FAIL if bad else OK}"/>'
        )
    return _svg(width, height, title, body, "chart chart-strip")


def histogram(
    values: Sequence[float],
    *,
    title: str,
    bins: int = 12,
    unit: str = "",
    width: int = 640,
    height: int = 160,
    color: str = ACCENT,
) -> Markup:
    """How values spread: equal-width bins from 0 to the largest value, a bar per bin."""
    data = [_num(v) for v in values][-10_000:]
    bins = max(1, min(int(bins), 60))
    peak = max(data, default=0.0)
    if not data or peak <= 0:
        return bar_chart([], [], title=title, width=width, height=height)
    size = peak / bins
    counts = [0] * bins
    for v in data:
        counts[min(bins - 1, int(v / size))] += 1
    labels = [f"{_count(round(i * size, 1))}–{_count(round((i + 1) * size, 1))}{unit}" for i in range(bins)]
    return bar_chart(labels, [Series("runs", counts, color)], title=title, width=width, height=height)


def fill_days(counts: Mapping[str, int], *, max_days: int = 92) -> tuple[list[str], list[int]]:
    """Day counts (``YYYY-MM-DD``) as a gap-free run of days ending at the last one (at most ``max_days``),
    so a histogram's x axis is time; keys that are not dates are ignored."""
    parsed: dict[date, int] = {}
    for key, n in counts.items():
        try:
            day = date.fromisoformat(str(key)[:10])
        except ValueError:
            continue
        parsed[day] = parsed.get(day, 0) + int(_num(n))
    if not parsed:
        return [], []
    last = max(parsed)
    first = max(min(parsed), last - timedelta(days=max_days - 1))
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return [d.isoformat() for d in days], [parsed.get(d, 0) for d in days]
