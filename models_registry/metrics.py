"""The metrics a version is uploaded with, and the shape they must have.

{"overall": {name: number}, "by_group": {attribute: {group: {name: number}}}}, both parts
optional; a number is finite, or null where a metric is undefined for a group (no positives).
The model card lays them out as tables (selectors.metric_tables).
"""

from __future__ import annotations

from typing import Any

from models_registry import schema

Errors = dict[str, list[str]]

EXAMPLE = '{"overall": {"auc": 0.91}, "by_group": {"race": {"black": {"auc": 0.88}}}}'
MAX_ENTRIES = 200


def check(metrics: Any) -> Errors:
    """Every way `metrics` departs from the shape, keyed "metrics.by_group.race.black.auc"."""
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        return {"metrics": [f"must be a JSON object like {EXAMPLE}"]}
    errors = {
        f"metrics.{key}": ["is not a part of metrics; the parts are overall and by_group"]
        for key in sorted(set(metrics) - {"overall", "by_group"})
    }
    errors.update(_table_errors(metrics.get("overall", {}), "metrics.overall"))
    by_group = metrics.get("by_group", {})
    for attribute, groups in _entries(by_group, "metrics.by_group", errors, "attribute"):
        where = f"metrics.by_group.{attribute}"
        for group, table in _entries(groups, where, errors, "group"):
            errors.update(_table_errors(table, f"{where}.{group}"))
    return errors


def _table_errors(table: Any, where: str) -> Errors:
    errors: Errors = {}
    for name, value in _entries(table, where, errors, "metric"):
        if value is not None and not schema.is_finite_number(value):
            errors[f"{where}.{name}"] = [
                f"must be a finite number (or null), got {schema.describe(value)}"
            ]
    return errors


def _entries(value: Any, where: str, errors: dict, what: str) -> list[tuple[str, Any]]:
    """The (name, value) pairs of a JSON object of named entries; errors when it is not one."""
    if not isinstance(value, dict):
        errors[where] = [f"must be a JSON object mapping each {what} name to its values"]
        return []
    if len(value) > MAX_ENTRIES:
        errors[where] = [f"has more than {MAX_ENTRIES} entries"]
        return []
    good = [(key, item) for key, item in value.items() if key.strip() and len(key) <= 100]
    if len(good) < len(value):
        errors[where] = [f"each {what} name must be a non-empty string of at most 100 characters"]
    return good
