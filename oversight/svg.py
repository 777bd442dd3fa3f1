"""Charts as server-rendered SVG: no JavaScript, no CDN, no build step.

Each chart is an <svg role="img"> named by its <title> and described by its <desc> (the text
alternative says what the chart shows and points to the table below it, which holds every
number). Nothing is told by colour alone: series differ by marker shape, line dash or fill
pattern too, every bar and point carries its value as text, and suppressed groups are written
out as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from django.utils.safestring import SafeString, mark_safe

INK, MUTED, LINE = "#1d2330", "#5b6475", "#c5ccd8"
# Dark enough for text contrast on white; told apart by shape and dash as well.
PALETTE = ["#1f5fbf", "#b3261e", "#1c7c44", "#8a5a00", "#6a3d9a", "#00666b"]
MARKERS = ["circle", "square", "triangle", "diamond", "cross", "star"]
DASHES = ["", "6 3", "2 3", "8 3 2 3", "1 2", "10 4"]
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def nice_top(value: float) -> float:
    """The top of a rate axis: the first of 5 %, 10 %, 20 %, 40 %, 60 %, 80 %, 100 % at or above
    the largest value, so that the quarter ticks are round numbers."""
    return next((top for top in (0.05, 0.1, 0.2, 0.4, 0.6, 0.8) if value <= top), 1.0)


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def _open(chart_id: str, width: int, height: int, title: str, desc: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{_e(chart_id)}" class="chart" '
        f'role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'style="max-width:{width}px" aria-labelledby="{_e(chart_id)}-title {_e(chart_id)}-desc" '
        f"{FONT}>",
        f'<title id="{_e(chart_id)}-title">{_e(title)}</title>',
        f'<desc id="{_e(chart_id)}-desc">{_e(desc)}</desc>',
    ]


def _done(parts: list[str]) -> SafeString:
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every piece of text went through _e


def marker(shape: str, x: float, y: float, color: str, size: float = 5) -> str:
    s = size
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{s:.1f}" fill="{color}"/>'
    if shape == "square":
        return (
            f'<rect x="{x - s:.1f}" y="{y - s:.1f}" width="{2 * s:.1f}" '
            f'height="{2 * s:.1f}" fill="{color}"/>'
        )
    if shape == "triangle":
        return (
            f'<path d="M{x:.1f},{y - s:.1f} L{x + s:.1f},{y + s:.1f} '
            f'L{x - s:.1f},{y + s:.1f} Z" fill="{color}"/>'
        )
    if shape == "diamond":
        return (
            f'<path d="M{x:.1f},{y - s - 1:.1f} L{x + s + 1:.1f},{y:.1f} L{x:.1f},{y + s + 1:.1f} '
            f'L{x - s - 1:.1f},{y:.1f} Z" fill="{color}"/>'
        )
    if shape == "cross":
        return (
            f'<path d="M{x - s:.1f},{y - s:.1f} L{x + s:.1f},{y + s:.1f} M{x - s:.1f},{y + s:.1f} '
            f'L{x + s:.1f},{y - s:.1f}" stroke="{color}" stroke-width="2.5"/>'
        )
    return (
        f'<path d="M{x:.1f},{y - s - 1:.1f} L{x + 2:.1f},{y - 2:.1f} L{x + s + 1:.1f},{y:.1f} '
        f"L{x + 2:.1f},{y + 2:.1f} L{x:.1f},{y + s + 1:.1f} L{x - 2:.1f},{y + 2:.1f} "
        f'L{x - s - 1:.1f},{y:.1f} L{x - 2:.1f},{y - 2:.1f} Z" fill="{color}"/>'
    )


def _axis(parts: list[str], x0: float, x1: float, y: float, top: float, top_value: float) -> None:
    """A horizontal 0 … top_value axis with percentage ticks and light grid lines."""
    for i in range(5):
        value = top_value * i / 4
        x = x0 + (x1 - x0) * i / 4
        parts.append(
            f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke="{LINE}"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{y + 14:.1f}" text-anchor="middle" fill="{MUTED}">'
            f"{_e(percent(value, 0))}</text>"
        )


@dataclass
class Interval:
    label: str
    value: float | None
    low: float | None
    high: float | None
    note: str = ""  # shown instead of the value (e.g. "suppressed: fewer than 10 reviewed")
    reference: bool = False


def interval_chart(
    chart_id: str, title: str, desc: str, rows: Sequence[Interval], *, reference: float | None
) -> SafeString:
    """One row per group: the rate as a dot (a diamond for the reference group) with its
    interval as whiskers, and a dashed vertical line at the reference group's rate."""
    left, row_h = 170, 30
    width, height = 760, 40 + row_h * max(len(rows), 1) + 30
    x0, x1 = left, width - 200
    top = nice_top(max([0.0, *[r.high or r.value or 0 for r in rows], reference or 0]))

    def sx(v: float) -> float:
        return x0 + (x1 - x0) * min(v, top) / top

    axis_y = 30 + row_h * max(len(rows), 1)
    parts = _open(chart_id, width, height, title, desc)
    _axis(parts, x0, x1, axis_y, 20, top)
    if reference is not None:
        x = sx(reference)
        parts.append(
            f'<line x1="{x:.1f}" y1="16" x2="{x:.1f}" y2="{axis_y:.1f}" stroke="{INK}" '
            f'stroke-dasharray="5 4" stroke-width="1.5"/>'
            f'<text x="{x + 4:.1f}" y="14" fill="{INK}">reference {_e(percent(reference))}</text>'
        )
    for i, row in enumerate(rows):
        y = 30 + row_h * i + row_h / 2
        name = f"{row.label} (reference)" if row.reference else row.label
        parts.append(
            f'<text x="{left - 10}" y="{y + 4:.1f}" text-anchor="end" fill="{INK}">'
            f"{_e(name)}</text>"
        )
        if row.value is None:
            parts.append(
                f'<text x="{x0 + 4}" y="{y + 4:.1f}" fill="{MUTED}" font-style="italic">'
                f"{_e(row.note or 'no data')}</text>"
            )
            continue
        if row.low is not None and row.high is not None:
            lo, hi = sx(row.low), sx(row.high)
            parts.append(
                f'<line x1="{lo:.1f}" y1="{y:.1f}" x2="{hi:.1f}" y2="{y:.1f}" stroke="{INK}" '
                f'stroke-width="1.5"/><line x1="{lo:.1f}" y1="{y - 6:.1f}" x2="{lo:.1f}" '
                f'y2="{y + 6:.1f}" stroke="{INK}" stroke-width="1.5"/><line x1="{hi:.1f}" '
                f'y1="{y - 6:.1f}" x2="{hi:.1f}" y2="{y + 6:.1f}" stroke="{INK}" '
                'stroke-width="1.5"/>'
            )
        shape = "diamond" if row.reference else "circle"
        parts.append(marker(shape, sx(row.value), y, PALETTE[0] if not row.reference else INK))
        text = f"{percent(row.value)} ({percent(row.low)}–{percent(row.high)})"
        parts.append(f'<text x="{x1 + 10:.1f}" y="{y + 4:.1f}" fill="{INK}">{_e(text)}</text>')
    return _done(parts)


def _patterns(parts: list[str], chart_id: str) -> None:
    parts.append(
        "<defs>"
        f'<pattern id="{_e(chart_id)}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)">'
        '<rect width="6" height="6" fill="#ffffff"/>'
        f'<rect width="3" height="6" fill="{PALETTE[1]}"/>'
        "</pattern></defs>"
    )


def paired_bars(
    chart_id: str,
    title: str,
    desc: str,
    rows: Sequence[tuple[str, float | None, float | None]],
    series: tuple[str, str],
) -> SafeString:
    """Two bars per group (e.g. selection rate by the model's outcome and after review): the
    first solid, the second hatched, each with its value written beside it, and a legend."""
    left, bar_h, gap = 170, 14, 14
    width = 760
    x0, x1 = left, width - 110
    height = 50 + (2 * bar_h + gap) * max(len(rows), 1) + 24
    parts = _open(chart_id, width, height, title, desc)
    _patterns(parts, chart_id)
    fills = [PALETTE[0], f"url(#{_e(chart_id)}-hatch)"]
    for i, name in enumerate(series):
        x = left + i * 220
        parts.append(
            f'<rect x="{x}" y="6" width="16" height="12" fill="{fills[i]}" stroke="{INK}" '
            f'stroke-width="0.5"/><text x="{x + 22}" y="16" fill="{INK}">{_e(name)}</text>'
        )
    axis_y = 36 + (2 * bar_h + gap) * max(len(rows), 1)
    _axis(parts, x0, x1, axis_y, 28, 1.0)
    for i, (label, first, second) in enumerate(rows):
        y = 36 + (2 * bar_h + gap) * i
        parts.append(
            f'<text x="{left - 10}" y="{y + bar_h + 4:.1f}" text-anchor="end" fill="{INK}">'
            f"{_e(label)}</text>"
        )
        for j, value in enumerate((first, second)):
            yy = y + j * bar_h
            if value is None:
                parts.append(
                    f'<text x="{x0 + 4}" y="{yy + 11:.1f}" fill="{MUTED}" font-style="italic">'
                    f"{_e(series[j])}: no rate</text>"
                )
                continue
            w = (x1 - x0) * value
            parts.append(
                f'<rect x="{x0}" y="{yy:.1f}" width="{w:.1f}" height="{bar_h - 2}" '
                f'fill="{fills[j]}" stroke="{INK}" stroke-width="0.5"/>'
                f'<text x="{x0 + w + 6:.1f}" y="{yy + 11:.1f}" fill="{INK}">'
                f"{_e(percent(value))}</text>"
            )
    return _done(parts)


def line_chart(
    chart_id: str,
    title: str,
    desc: str,
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
) -> SafeString:
    """Rates over time, one line per series with its own marker shape and dash; a gap where a
    value is missing (suppressed)."""
    width, height = 760, 300 + 18 * ((len(series) + 2) // 3)
    x0, x1, y0, y1 = 60, width - 30, 40, 250
    parts = _open(chart_id, width, height, title, desc)
    values = [v for _, vs in series for v in vs if v is not None]
    top = nice_top(max(values, default=0))
    for i in range(5):
        value = top * i / 4
        y = y1 - (y1 - y0) * i / 4
        parts.append(
            f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="{LINE}"/>'
            f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}">'
            f"{_e(percent(value, 0))}</text>"
        )
    n = max(len(x_labels), 1)

    def sx(i: int) -> float:
        return x0 + (x1 - x0) * (i + 0.5) / n

    step = max(1, n // 8)
    for i, text in enumerate(x_labels):
        if i % step == 0:
            parts.append(
                f'<text x="{sx(i):.1f}" y="{y1 + 16}" text-anchor="middle" fill="{MUTED}">'
                f"{_e(text)}</text>"
            )
    for k, (name, points) in enumerate(series):
        color, shape, dash = (
            PALETTE[k % len(PALETTE)],
            MARKERS[k % len(MARKERS)],
            DASHES[k % len(DASHES)],
        )
        segment: list[str] = []
        for i, value in enumerate(points):
            if value is None:
                _segment(parts, segment, color, dash)
                segment = []
                continue
            x, y = sx(i), y1 - (y1 - y0) * min(value, top) / top
            segment.append(f"{x:.1f},{y:.1f}")
            parts.append(marker(shape, x, y, color, 4))
        _segment(parts, segment, color, dash)
        lx, ly = x0 + 230 * (k % 3), y1 + 40 + 18 * (k // 3)
        parts.append(
            f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 30}" y2="{ly - 4}" stroke="{color}" '
            f'stroke-width="2" stroke-dasharray="{dash}"/>'
            + marker(shape, lx + 15, ly - 4, color, 4)
            + f'<text x="{lx + 38}" y="{ly}" fill="{INK}">{_e(name)}</text>'
        )
    return _done(parts)


def _segment(parts: list[str], points: list[str], color: str, dash: str) -> None:
    if len(points) > 1:
        parts.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="{color}" '
            f'stroke-width="2" stroke-dasharray="{dash}"/>'
        )


def bar_chart(
    chart_id: str,
    title: str,
    desc: str,
    rows: Sequence[tuple[str, float | None]],
    *,
    thresholds: Sequence[tuple[float, str]] = (),
    as_percent: bool = True,
) -> SafeString:
    """One bar per row with its value written beside it; dashed lines at the thresholds."""
    left, bar_h, gap = 170, 16, 10
    width = 760
    x0, x1 = left, width - 110
    values = [v for _, v in rows if v is not None] + [t for t, _ in thresholds]
    largest = max(values, default=0.0)
    top = nice_top(largest) if as_percent else (largest * 1.15 or 1.0)
    height = 40 + (bar_h + gap) * max(len(rows), 1) + 30

    def fmt(value: float) -> str:
        return percent(value) if as_percent else f"{value:.3f}"

    parts = _open(chart_id, width, height, title, desc)
    axis_y = 24 + (bar_h + gap) * max(len(rows), 1)
    for i in range(5):
        v = top * i / 4
        x = x0 + (x1 - x0) * i / 4
        parts.append(
            f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{axis_y}" stroke="{LINE}"/>'
            f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle" fill="{MUTED}">'
            f"{_e(fmt(v) if as_percent else f'{v:.2f}')}</text>"
        )
    for value, name in thresholds:
        x = x0 + (x1 - x0) * min(value / top, 1)
        parts.append(
            f'<line x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{axis_y}" stroke="{INK}" '
            f'stroke-dasharray="5 4"/><text x="{x + 3:.1f}" y="12" fill="{INK}">{_e(name)}</text>'
        )
    for i, (label, value) in enumerate(rows):
        y = 24 + (bar_h + gap) * i
        parts.append(
            f'<text x="{left - 10}" y="{y + 12}" text-anchor="end" fill="{INK}">{_e(label)}</text>'
        )
        if value is None:
            parts.append(
                f'<text x="{x0 + 4}" y="{y + 12}" fill="{MUTED}" font-style="italic">'
                "no value</text>"
            )
            continue
        w = (x1 - x0) * min(value / top, 1) if top else 0
        parts.append(
            f'<rect x="{x0}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{PALETTE[0]}"/>'
            f'<text x="{x0 + w + 6:.1f}" y="{y + 12}" fill="{INK}">{_e(fmt(value))}</text>'
        )
    return _done(parts)
