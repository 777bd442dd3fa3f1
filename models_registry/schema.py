"""Feature schemas: checking a model's declared features, and checking values against them.

Pure functions over plain data. Errors are {"field path": ["message", ...]} so that the API can
name every bad field at once.
"""

from __future__ import annotations

import math
import re
from typing import Any

FEATURE_TYPES = ("number", "integer", "boolean", "category")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
SPEC_KEYS = {
    "name",
    "type",
    "min",
    "max",
    "choices",
    "required",
    "actionable",
    "description",
    "unit",
}

Errors = dict[str, list[str]]


def _add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    """A real number (not a boolean) that is finite as a float. A huge int (10**400) is not:
    it would overflow the moment the model sees it."""
    if not _is_number(value):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def describe(value: Any) -> str:
    """A short, safe rendering of a bad value for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    kind = {str: "string", dict: "object", list: "array"}.get(type(value))
    text = repr(value) if isinstance(value, str) else str(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"{text} ({kind})" if kind else text


def validate_specs(specs: Any) -> tuple[list[dict], Errors]:
    """Check and normalise a list of feature specs; returns (specs, errors)."""
    errors: Errors = {}
    if not isinstance(specs, list) or not specs:
        return [], {"features": ["must be a non-empty list of feature definitions"]}
    clean, seen = [], set()
    for index, spec in enumerate(specs):
        where = f"features.{index}"
        if not isinstance(spec, dict):
            _add(errors, where, "must be an object with at least name and type")
            continue
        out = _validate_spec(spec, where, errors)
        if out is None:
            continue
        if out["name"] in seen:
            _add(errors, f"{where}.name", f"duplicate feature name {out['name']!r}")
        seen.add(out["name"])
        clean.append(out)
    return clean, errors


def _validate_spec(spec: dict, where: str, errors: Errors) -> dict | None:
    before = len(errors)
    for key in sorted(set(spec) - SPEC_KEYS):
        _add(
            errors,
            f"{where}.{key}",
            f"unknown key; allowed keys are {', '.join(sorted(SPEC_KEYS))}",
        )
    name, kind = spec.get("name"), spec.get("type", "number")
    if not isinstance(name, str) or not NAME_RE.match(name):
        _add(errors, f"{where}.name", "must be a name of letters, digits and _ (max 64)")
    if kind not in FEATURE_TYPES:
        _add(errors, f"{where}.type", f"must be one of {', '.join(FEATURE_TYPES)}")
    out = {
        "name": name,
        "type": kind,
        "required": spec.get("required", True),
        "actionable": spec.get("actionable", False),
        "description": spec.get("description", ""),
        "unit": spec.get("unit", ""),
    }
    for flag in ("required", "actionable"):
        if not isinstance(out[flag], bool):
            _add(errors, f"{where}.{flag}", "must be true or false")
    for text in ("description", "unit"):
        if not isinstance(out[text], str):
            _add(errors, f"{where}.{text}", "must be a string")
    if kind in ("number", "integer"):
        _validate_bounds(spec, out, where, errors)
    elif "min" in spec or "max" in spec:
        _add(
            errors, f"{where}.min", f"min and max apply to number and integer features, not {kind}"
        )
    if kind == "category":
        _validate_choices(spec, out, where, errors)
    elif "choices" in spec:
        _add(errors, f"{where}.choices", f"choices apply to category features, not {kind}")
    return out if len(errors) == before else None


def _validate_bounds(spec: dict, out: dict, where: str, errors: Errors) -> None:
    for bound in ("min", "max"):
        value = spec.get(bound)
        if value is None:
            continue
        if not is_finite_number(value):
            _add(errors, f"{where}.{bound}", "must be a finite number")
            continue
        if out["type"] == "integer" and not float(value).is_integer():
            _add(errors, f"{where}.{bound}", "must be a whole number for an integer feature")
            continue
        out[bound] = value
    if "min" in out and "max" in out and out["min"] > out["max"]:
        _add(errors, f"{where}.max", "must not be less than min")


def _validate_choices(spec: dict, out: dict, where: str, errors: Errors) -> None:
    choices = spec.get("choices")
    valid = (
        isinstance(choices, list)
        and len(choices) >= 1
        and all(isinstance(c, str) and c for c in choices)
        and len(set(choices)) == len(choices)
    )
    if not valid:
        _add(errors, f"{where}.choices", "must be a list of distinct non-empty strings")
        return
    out["choices"] = list(choices)


def check_values(
    specs: list[dict], values: Any, *, prefix: str = "features"
) -> tuple[dict, Errors]:
    """Validate one row of feature values; returns (normalised values, errors).

    Unknown, missing, wrong-typed, non-finite, out-of-range and not-allowed values are each
    reported against the field. Optional features that are absent come back as None.
    """
    if not isinstance(values, dict):
        return {}, {prefix: ["must be an object mapping feature names to values"]}
    errors: Errors = {}
    known = {spec["name"] for spec in specs}
    for name in values:
        if name not in known:
            _add(errors, f"{prefix}.{name}", "is not a feature of this model")
    clean = {}
    for spec in specs:
        name = spec["name"]
        if values.get(name) is None:
            if spec["required"]:
                _add(errors, f"{prefix}.{name}", "is required")
            clean[name] = None
            continue
        value, message = check_value(spec, values[name])
        if message:
            _add(errors, f"{prefix}.{name}", message)
        clean[name] = value
    return clean, errors


def check_value(spec: dict, value: Any) -> tuple[Any, str | None]:
    kind = spec["type"]
    if kind == "boolean":
        if not isinstance(value, bool):
            return None, f"must be true or false, got {describe(value)}"
        return value, None
    if kind == "category":
        if not isinstance(value, str):
            return (
                None,
                f"must be a string, one of {', '.join(spec['choices'])}; got {describe(value)}",
            )
        if value not in spec["choices"]:
            return None, f"must be one of {', '.join(spec['choices'])}; got {value!r}"
        return value, None
    return _check_number(spec, value)


def _check_number(spec: dict, value: Any) -> tuple[Any, str | None]:
    kind = spec["type"]
    if not _is_number(value):
        return (
            None,
            f"must be {'an integer' if kind == 'integer' else 'a number'}, got {describe(value)}",
        )
    if not is_finite_number(value):
        return None, "must be a finite number"
    if kind == "integer":
        if not float(value).is_integer():
            return None, f"must be a whole number, got {value}"
        value = int(value)
    else:
        value = float(value)
    if "min" in spec and value < spec["min"]:
        return None, f"must be at least {spec['min']}, got {value:g}"
    if "max" in spec and value > spec["max"]:
        return None, f"must be at most {spec['max']}, got {value:g}"
    return value, None
