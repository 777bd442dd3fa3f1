"""Numbers as the report pages show them: rates as percentages, p-values to three figures,
and an em dash for what is not there (suppressed, undefined)."""

from __future__ import annotations

from django import template

register = template.Library()
NONE = "—"


@register.filter
def pct(value: float | None, digits: int = 1) -> str:
    return NONE if value is None else f"{value * 100:.{digits}f}%"


@register.filter
def pval(value: float | None) -> str:
    if value is None:
        return NONE
    return "< 0.0001" if value < 1e-4 else f"{value:.3g}"


@register.filter
def num(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return NONE
    return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}"


@register.filter
def signed_pct(value: float | None) -> str:
    return NONE if value is None else f"{value * 100:+.1f} pts"
