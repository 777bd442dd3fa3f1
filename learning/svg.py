"""Charts as server-rendered SVG: no script, no CDN. Each chart has a title and a description
for screen readers; pages show the table behind it next to it."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

COLORS = ("#1f5fbf", "#c8483f", "#2f8f5b", "#8a5a00", "#6b3fa0")
WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 16, 52


def _nice_max(values: Sequence[float]) -> float:
    top = max([v for v in values if v is not None] or [0])
    if top <= 0:
        return 1.0
    if top <= 1:
        return 1.0
    step = 10 ** (len(str(int(top))) - 1)
    return float(((int(top) // step) + 1) * step)


def _frame(chart_id: str, title: str, description: str, body: list[str]) -> SafeString:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'class="chart" role="img" aria-labelledby="{chart_id}-t {chart_id}-d">'
        f'<title id="{chart_id}-t">{escape(title)}</title>'
        f'<desc id="{chart_id}-d">{escape(description)}</desc>'
    )
    return mark_safe(head + "".join(body) + "</svg>")  # noqa: S308 (every text is escaped)


def _axes(top: float, *, percent: bool, bottom: float = 0.0) -> list[str]:
    out = []
    plot_h = HEIGHT - TOP - BOTTOM
    for i in range(5):
        value = bottom + (top - bottom) * i / 4
        y = TOP + plot_h - plot_h * i / 4
        text = f"{value:.0%}" if percent else f"{value:g}"
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d9dee7"/>'
        )
        out.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#5b6475">{text}</text>'
        )
    return out


def _legend(names: Sequence[str]) -> list[str]:
    out, x = [], LEFT
    for i, name in enumerate(names):
        color = COLORS[i % len(COLORS)]
        out.append(f'<rect x="{x}" y="{HEIGHT - 16}" width="10" height="10" fill="{color}"/>')
        out.append(
            f'<text x="{x + 14}" y="{HEIGHT - 7}" font-size="11" fill="#1d2330">'
            f"{escape(name)}</text>"
        )
        x += 24 + 7 * len(name)
    return out


def line_chart(
    chart_id: str,
    title: str,
    x_labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    percent: bool = False,
    top: float | None = None,
    bottom: float = 0.0,
) -> SafeString:
    """Lines over x positions (gaps where a value is None); every 1/8th x label is drawn. The
    y axis runs from `bottom` (0) to `top` (a round number above the largest value)."""
    values = [v for line in series.values() for v in line if v is not None]
    top = top or _nice_max(values)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(len(x_labels), 2)

    def x(i: int) -> float:
        return LEFT + plot_w * i / (n - 1)

    def y(v: float) -> float:
        return TOP + plot_h - plot_h * (min(max(v, bottom), top) - bottom) / (top - bottom)

    body = _axes(top, percent=percent, bottom=bottom)
    every = max(1, len(x_labels) // 8)
    for i, label in enumerate(x_labels):
        if i % every == 0 or i == len(x_labels) - 1:
            body.append(
                f'<text x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" '
                f'font-size="10" fill="#5b6475">{escape(label)}</text>'
            )
    for k, (name, line) in enumerate(series.items()):
        color = COLORS[k % len(COLORS)]
        points = [(x(i), y(v)) for i, v in enumerate(line) if v is not None]
        if points:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            body.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                f'points="{path}"><title>{escape(name)}</title></polyline>'
            )
            body += [
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{color}"/>' for px, py in points
            ]
    body += _legend(list(series))
    described = "; ".join(
        f"{name}: " + ", ".join("–" if v is None else f"{v:g}" for v in line)
        for name, line in series.items()
    )
    return _frame(chart_id, title, described[:2000], body)


def bar_chart(
    chart_id: str,
    title: str,
    categories: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    percent: bool = True,
) -> SafeString:
    """Grouped bars: one group per category, one bar per series (None: no bar, marked n/a)."""
    values = [v for bars in series.values() for v in bars if v is not None]
    top = 1.0 if percent else _nice_max(values)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(categories), 1)
    bar_w = min(28.0, slot * 0.8 / max(len(series), 1))
    body = _axes(top, percent=percent)
    for c, category in enumerate(categories):
        left = LEFT + slot * c + (slot - bar_w * len(series)) / 2
        for k, (name, bars) in enumerate(series.items()):
            value, bx = bars[c], left + bar_w * k
            if value is None:
                body.append(
                    f'<text x="{bx + bar_w / 2:.1f}" y="{TOP + plot_h - 4}" '
                    'text-anchor="middle" font-size="9" fill="#5b6475">n/a</text>'
                )
                continue
            h = plot_h * min(value, top) / top
            text = f"{value:.1%}" if percent else f"{value:g}"
            body.append(
                f'<rect x="{bx:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w - 2:.1f}" '
                f'height="{h:.1f}" fill="{COLORS[k % len(COLORS)]}">'
                f"<title>{escape(name)}, {escape(category)}: {text}</title></rect>"
            )
        body.append(
            f'<text x="{LEFT + slot * (c + 0.5):.1f}" y="{HEIGHT - BOTTOM + 14}" '
            f'text-anchor="middle" font-size="11" fill="#1d2330">{escape(category)}</text>'
        )
    body += _legend(list(series))
    described = "; ".join(
        f"{name}: "
        + ", ".join(
            f"{c} {'n/a' if v is None else f'{v:g}'}" for c, v in zip(categories, bars, strict=True)
        )
        for name, bars in series.items()
    )
    return _frame(chart_id, title, described[:2000], body)
