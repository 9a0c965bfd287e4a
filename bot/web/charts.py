"""Charts drawn on the server as SVG: readable without JavaScript, styled by the dashboard's
stylesheet (classes, no inline style), scaled to the screen by their viewBox.

Every label is escaped; every chart has a <title> and the page shows the same numbers as a table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import timedelta

from markupsafe import Markup, escape

from bot.clock import format_duration
from bot.postmortem.trends import Week

WIDTH, HEIGHT = 480, 260
LEFT, RIGHT, TOP, BOTTOM = 58, 10, 16, 44
SEVERITIES = ("P1", "P2", "P3", "P4")


def _nice_max(value: float) -> float:
    """A round top for the axis: 1, 2, 5, 10, 20, 50 ..."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _svg(title: str, body: list[str], *, height: int = HEIGHT, css: str = "chart") -> Markup:
    head = (
        f'<svg class="{css}" viewBox="0 0 {WIDTH} {height}" role="img" preserveAspectRatio="xMidYMid meet" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    )
    return Markup(head + "".join(body) + "</svg>")


# Minutes per grid step: the axis top is four steps, so every label is a round duration.
_TIME_STEPS = (0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 7200, 14400)


def _time_top(minutes: float) -> float:
    for step in _TIME_STEPS:
        if minutes <= 4 * step:
            return 4 * step
    return 4 * math.ceil(minutes / 4)


def _count_top(value: int) -> int:
    """A top for a count axis whose quarter ticks are whole numbers."""
    return max(4, math.ceil(value / 4) * 4)


def _grid(top: float, label: str) -> list[str]:
    """Horizontal grid lines at 0, ¼, ½, ¾ and the top of the axis, with their values."""
    out = []
    plot_h = HEIGHT - TOP - BOTTOM
    for i in range(5):
        y = TOP + plot_h * (1 - i / 4)
        value = top * i / 4
        text = short_minutes(value) if label == "minutes" else f"{value:g}"
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(text)}</text>')
    return out


def short_minutes(minutes: float) -> str:
    """Axis labels: `0`, `45s`, `7m`, `7m 30s`, `2h 30m`, `3d 4h`."""
    seconds = round(minutes * 60)
    if seconds == 0:
        return "0"
    days, rem = divmod(seconds, 86400)
    hours, rem = divmod(rem, 3600)
    mins, secs = divmod(rem, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {mins}m" if mins else f"{hours}h"
    if mins:
        return f"{mins}m {secs}s" if secs else f"{mins}m"
    return f"{secs}s"


def _x_labels(weeks: Sequence[Week], step_x: float) -> list[str]:
    every = max(1, math.ceil(len(weeks) / 6))  # at most 6 labels, readable on a phone
    out = []
    for i, week in enumerate(weeks):
        if i % every:
            continue
        x = LEFT + step_x * (i + 0.5)
        label = week.start.strftime("%d %b")
        out.append(f'<text class="axis" x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">{label}</text>')
    return out


def per_week(weeks: Sequence[Week]) -> Markup:
    """Stacked bars: incidents declared each week, by severity."""
    top = _count_top(max((w.count for w in weeks), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(weeks), 1)
    body = _grid(top, "count")
    for i, week in enumerate(weeks):
        x = LEFT + step * i + step * 0.15
        y = float(TOP + plot_h)
        for severity in SEVERITIES:
            n = week.by_severity.get(severity, 0)
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            tip = f"week of {week.start.isoformat()}: {n} {severity}"
            body.append(
                f'<rect class="sev-{severity}" x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" '
                f'height="{h:.1f}"><title>{escape(tip)}</title></rect>'
            )
    body += _x_labels(weeks, step)
    body.append(_legend([(f"sev-{s}", s) for s in SEVERITIES]))
    return _svg("Incidents declared per week, by severity", body)


def times(weeks: Sequence[Week]) -> Markup:
    """Two lines: the week's median time to acknowledge and to resolve (gaps where none)."""
    values = [w.tta_median for w in weeks] + [w.ttr_median for w in weeks]
    top = _time_top(max((v.total_seconds() / 60 for v in values if v is not None), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(weeks), 1)
    body = _grid(top, "minutes")
    picks: tuple[tuple[str, Callable[[Week], timedelta | None]], ...] = (
        ("tta", lambda w: w.tta_median),
        ("ttr", lambda w: w.ttr_median),
    )
    for css, pick in picks:
        segment: list[str] = []
        segments: list[list[str]] = []
        for i, week in enumerate(weeks):
            value = pick(week)
            if value is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            x = LEFT + step * (i + 0.5)
            y = TOP + plot_h * (1 - value.total_seconds() / 60 / top)
            segment.append(f"{x:.1f},{y:.1f}")
            tip = f"week of {week.start.isoformat()}: median {format_duration(value)}"
            body.append(
                f'<circle class="{css}" cx="{x:.1f}" cy="{y:.1f}" r="3.5"><title>{escape(tip)}</title></circle>'
            )
        if segment:
            segments.append(segment)
        for points in segments:
            if len(points) > 1:
                body.append(f'<polyline class="{css}" points="{" ".join(points)}"/>')
    body += _x_labels(weeks, step)
    body.append(_legend([("tta", "time to acknowledge"), ("ttr", "time to resolve")]))
    return _svg("Median time to acknowledge and to resolve, per week", body)


def by_service(rows: Sequence[tuple[str, int]]) -> Markup:
    """Horizontal bars, most incidents first (the top 12)."""
    rows = list(rows)[:12]
    bar, gap, label_w = 22, 8, 150
    height = max(TOP + len(rows) * (bar + gap) + 8, 60)
    top = max((n for _, n in rows), default=1)
    plot_w = WIDTH - label_w - RIGHT - 40
    body = []
    if not rows:
        body.append(
            f'<text class="axis" x="{WIDTH / 2}" y="36" text-anchor="middle">No incidents in this period</text>'
        )
    for i, (name, n) in enumerate(rows):
        y = TOP + i * (bar + gap)
        w = max(plot_w * n / top, 2)
        short = name if len(name) <= 16 else name[:15] + "…"
        text_y = y + bar * 0.7
        body.append(f'<text class="axis" x="{label_w - 8}" y="{text_y:.1f}" text-anchor="end">{escape(short)}</text>')
        body.append(
            f'<rect class="svc" x="{label_w}" y="{y}" width="{w:.1f}" height="{bar}">'
            f"<title>{escape(name)}: {n}</title></rect>"
        )
        body.append(f'<text class="value" x="{label_w + w + 6:.1f}" y="{y + bar * 0.7:.1f}">{n}</text>')
    return _svg("Incidents by service", body, height=height, css="chart bars")


def _legend(items: list[tuple[str, str]]) -> str:
    out, x = [], LEFT
    y = HEIGHT - 8
    for css, label in items:
        out.append(f'<rect class="{css}" x="{x}" y="{y - 10}" width="12" height="12"/>')
        out.append(f'<text class="legend" x="{x + 16}" y="{y}">{escape(label)}</text>')
        x += 26 + 9 * len(label)
    return "".join(out)
