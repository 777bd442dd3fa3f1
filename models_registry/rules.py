"""High-stakes rules: declarative conditions on a decision's outcome, confidence and features.

A rule is {"name": ..., "when": <condition>}; a condition is either a comparison
{"field": ..., "op": ..., "value": ...} or a group {"all": [...]} / {"any": [...]}. Rules are
validated against the model's schema when a policy is saved and evaluated by plain comparisons:
there is no `eval` anywhere.
"""

from __future__ import annotations

import math
from typing import Any

from models_registry.schema import Errors, _add, _is_number

ORDER_OPS = ("lt", "le", "gt", "ge")
OPS = ("eq", "ne", *ORDER_OPS, "in")
MAX_DEPTH = 6
MAX_CONDITIONS = 100

_COMPARE = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "in": lambda a, b: a in b,
}


def field_types(features: list[dict], labels: list[str]) -> dict[str, dict]:
    """What a rule may refer to: the outcome, the confidence, and every feature."""
    fields = {spec["name"]: spec for spec in features}
    fields["outcome"] = {"name": "outcome", "type": "category", "choices": list(labels)}
    fields["confidence"] = {"name": "confidence", "type": "number", "min": 0, "max": 1}
    return fields


def validate_rules(rules: Any, fields: dict[str, dict], *, prefix: str) -> Errors:
    errors: Errors = {}
    if not isinstance(rules, list):
        return {prefix: ["must be a list of rules, each {name, when}"]}
    names = set()
    for index, rule in enumerate(rules):
        where = f"{prefix}.{index}"
        if not isinstance(rule, dict) or set(rule) - {"name", "when", "description"}:
            _add(errors, where, "must be an object with name, when and optional description")
            continue
        name = rule.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 80:
            _add(errors, f"{where}.name", "must be a non-empty name (max 80 characters)")
        elif name in names:
            _add(errors, f"{where}.name", f"duplicate rule name {name!r}")
        else:
            names.add(name)  # only valid names: a bad one may be unhashable (a list, an object)
        counter = [0]
        _validate_condition(rule.get("when"), fields, f"{where}.when", errors, 1, counter)
    return errors


def _validate_condition(
    cond: Any, fields: dict, where: str, errors: Errors, depth: int, counter: list[int]
) -> None:
    counter[0] += 1
    if depth > MAX_DEPTH or counter[0] > MAX_CONDITIONS:
        _add(
            errors,
            where,
            f"is too deep or too long (max depth {MAX_DEPTH}, {MAX_CONDITIONS} conditions)",
        )
        return
    if isinstance(cond, dict) and len(cond) == 1 and next(iter(cond)) in ("all", "any"):
        key = next(iter(cond))
        parts = cond[key]
        if not isinstance(parts, list) or not parts:
            _add(errors, f"{where}.{key}", "must be a non-empty list of conditions")
            return
        for index, part in enumerate(parts):
            _validate_condition(part, fields, f"{where}.{key}.{index}", errors, depth + 1, counter)
        return
    if not isinstance(cond, dict) or set(cond) != {"field", "op", "value"}:
        _add(errors, where, 'must be {"field", "op", "value"} or {"all": [...]} or {"any": [...]}')
        return
    _validate_comparison(cond, fields, where, errors)


def _validate_comparison(cond: dict, fields: dict, where: str, errors: Errors) -> None:
    field, op, value = cond["field"], cond["op"], cond["value"]
    spec = fields.get(field) if isinstance(field, str) else None
    if spec is None:
        _add(errors, f"{where}.field", f"must be outcome, confidence or a feature; got {field!r}")
        return
    if op not in OPS:
        _add(errors, f"{where}.op", f"must be one of {', '.join(OPS)}")
        return
    if op in ORDER_OPS and spec["type"] not in ("number", "integer"):
        _add(
            errors,
            f"{where}.op",
            f"{op} needs a number or integer field; {field} is {spec['type']}",
        )
        return
    values = value if op == "in" else [value]
    if op == "in" and (not isinstance(value, list) or not value):
        _add(errors, f"{where}.value", "must be a non-empty list for op 'in'")
        return
    for item in values:
        problem = _value_problem(spec, item)
        if problem:
            _add(errors, f"{where}.value", f"{problem} (field {field})")


def _value_problem(spec: dict, value: Any) -> str | None:
    kind = spec["type"]
    if kind in ("number", "integer"):
        # Only floats can be infinite or NaN; math.isfinite would overflow on a huge int.
        if not _is_number(value) or (isinstance(value, float) and not math.isfinite(value)):
            return f"must be a finite number, got {value!r}"
    elif kind == "boolean":
        if not isinstance(value, bool):
            return f"must be true or false, got {value!r}"
    elif value not in spec.get("choices", []):
        return f"must be one of {', '.join(spec.get('choices', []))}; got {value!r}"
    return None


def evaluate(cond: dict, context: dict[str, Any], trace: list[dict] | None = None) -> bool:
    """Evaluate a validated condition; every comparison's result is appended to `trace`.

    Groups evaluate all their parts (no short-circuit) so that the trace is complete.
    A comparison on a missing (None) value is false.
    """
    if "all" in cond:
        return all([evaluate(part, context, trace) for part in cond["all"]])
    if "any" in cond:
        return any([evaluate(part, context, trace) for part in cond["any"]])
    actual = context.get(cond["field"])
    result = actual is not None and _COMPARE[cond["op"]](actual, cond["value"])
    if trace is not None:
        trace.append({**cond, "actual": actual, "result": result})
    return result


def describe_condition(cond: dict) -> str:
    """The condition in words, for model cards and the reviewer's screen."""
    if "all" in cond or "any" in cond:
        key = "all" if "all" in cond else "any"
        joiner = " and " if key == "all" else " or "
        parts = [describe_condition(part) for part in cond[key]]
        return "(" + joiner.join(parts) + ")" if len(parts) > 1 else parts[0]
    words = {
        "eq": "is",
        "ne": "is not",
        "lt": "<",
        "le": "≤",
        "gt": ">",
        "ge": "≥",
        "in": "is one of",
    }
    value = cond["value"]
    shown = ", ".join(map(str, value)) if isinstance(value, list) else value
    return f"{cond['field']} {words[cond['op']]} {shown}"
