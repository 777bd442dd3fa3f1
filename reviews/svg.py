"""One reviewer's trend as a server-rendered SVG: reviews per week as bars, each labelled with
its count and override rate (the table below the chart holds every number)."""

from __future__ import annotations

from html import escape

from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT, TOP, BOTTOM, LEFT = 640, 220, 24, 40, 8
BAR, INK, MUTED = "#1f5fbf", "#1d2330", "#5b6475"


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def trend_chart(weeks: list[dict]) -> SafeString | str:
    """Bars of reviews per week; empty text when there is no week to show."""
    if not weeks:
        return ""
    most = max(week["reviews"] for week in weeks) or 1
    slot = (WIDTH - 2 * LEFT) / len(weeks)
    span = HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart trend" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" aria-labelledby="trend-title trend-desc" '
        f'font-family="system-ui, sans-serif" font-size="11">',
        '<title id="trend-title">Reviews per week</title>',
        '<desc id="trend-desc">Bars: reviews per week (known-answer checks left out), each '
        "labelled with its count and override rate. The table below has every number.</desc>",
    ]
    for i, week in enumerate(weeks):
        height = span * week["reviews"] / most
        x = LEFT + i * slot + slot * 0.15
        y = TOP + span - height
        rate = week["override_rate"]
        label = f"{week['reviews']}" + (f" · {rate * 100:.0f}%" if rate is not None else "")
        parts += [
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{height:.1f}" '
            f'fill="{BAR}"/>',
            f'<text x="{x + slot * 0.35:.1f}" y="{y - 4:.1f}" text-anchor="middle" '
            f'fill="{INK}">{_e(label)}</text>',
            f'<text x="{x + slot * 0.35:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
            f'fill="{MUTED}">{_e(week["week"].strftime("%d %b"))}</text>',
        ]
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every piece of text went through _e
