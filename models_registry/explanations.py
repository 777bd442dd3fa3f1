"""Checking an explanation that a client sends with its own score.

It must have the shape of Oversight's own explanations (models_registry.explain), because the
reviewer's case page and the audit trail read it the same way: known keys only; contributions
as [{"feature", "value"?, "contribution"}] with schema features and finite numbers; a
counterfactual {"feature", "from", "to", "outcome", "change"?, "alternatives"?} or null, with
values the schema allows and one of the model's labels. Pure functions; errors name the field.
"""

from __future__ import annotations

from typing import Any

from models_registry import schema
from models_registry.explain import BASELINE, LINEAR

Errors = dict[str, list[str]]

KEYS = (
    "method",
    "units",
    "towards",
    "base",
    "log_odds",
    "probability",
    "baseline",
    "contributions",
    "counterfactual",
    "note",
)
CONTRIBUTION_KEYS = ("feature", "value", "contribution")
ALTERNATIVE_KEYS = ("feature", "from", "to", "outcome", "change")
COUNTERFACTUAL_KEYS = (*ALTERNATIVE_KEYS, "alternatives")
TEXT_LIMITS = {"method": 100, "units": 40, "note": 2000}


def check(explanation: Any, specs: list[dict], labels: list[str]) -> Errors:
    """Errors of a client's explanation, keyed "explanation.contributions.0.contribution"."""
    where = "explanation"
    if not isinstance(explanation, dict):
        return {where: ["must be an object with method, contributions and counterfactual"]}
    errors = _unknown(explanation, KEYS, where)
    by_name = {spec["name"]: spec for spec in specs}
    _check_texts(explanation, where, errors)
    _check_numbers(explanation, where, errors)
    if "towards" in explanation and explanation["towards"] not in labels:
        errors[f"{where}.towards"] = [f"must be one of the model's labels ({', '.join(labels)})"]
    if "baseline" in explanation:
        _check_baseline(explanation["baseline"], by_name, f"{where}.baseline", errors)
    _check_contributions(explanation.get("contributions", []), by_name, errors)
    if explanation.get("counterfactual") is not None:
        counterfactual = explanation["counterfactual"]
        _check_counterfactual(counterfactual, by_name, labels, f"{where}.counterfactual", errors)
        if isinstance(counterfactual, dict) and "alternatives" in counterfactual:
            _check_alternatives(counterfactual["alternatives"], by_name, labels, errors)
    return errors


def _unknown(value: dict, keys: tuple[str, ...], where: str) -> Errors:
    message = f"is not a key of this part of an explanation; keys are {', '.join(keys)}"
    return {f"{where}.{key}": [message] for key in sorted(set(value) - set(keys))}


def _check_texts(explanation: dict, where: str, errors: Errors) -> None:
    for key, limit in TEXT_LIMITS.items():
        value = explanation.get(key)
        if key in explanation and (not isinstance(value, str) or len(value) > limit):
            errors[f"{where}.{key}"] = [f"must be a string of at most {limit} characters"]
    if explanation.get("method") in (LINEAR, BASELINE):
        errors[f"{where}.method"] = [
            "names a method of Oversight's own explanations; name the method the client used"
        ]


def _check_numbers(explanation: dict, where: str, errors: Errors) -> None:
    for key in ("base", "log_odds", "probability"):
        if key in explanation and not schema.is_finite_number(explanation[key]):
            errors[f"{where}.{key}"] = [
                f"must be a finite number, got {schema.describe(explanation[key])}"
            ]
    probability = explanation.get("probability")
    if schema.is_finite_number(probability) and not 0 <= probability <= 1:
        errors[f"{where}.probability"] = ["must be a number from 0 to 1"]


def _value_error(spec: dict | None, value: Any) -> str | None:
    """Why `value` is not a value of the feature (null is: not given), or None when it is."""
    if spec is None:
        return "is not a feature of this model"
    return None if value is None else schema.check_value(spec, value)[1]


def _check_baseline(baseline: Any, by_name: dict, where: str, errors: Errors) -> None:
    if not isinstance(baseline, dict):
        errors[where] = ["must be an object mapping features to reference values"]
        return
    for name, value in baseline.items():
        message = _value_error(by_name.get(name), value)
        if message:
            errors[f"{where}.{name}"] = [message]


def _check_contributions(contributions: Any, by_name: dict, errors: Errors) -> None:
    where = "explanation.contributions"
    if not isinstance(contributions, list) or len(contributions) > len(by_name):
        errors[where] = [f"must be a list of at most {len(by_name)} items, one per feature"]
        return
    seen = set()
    for index, item in enumerate(contributions):
        at = f"{where}.{index}"
        feature = _check_contribution(item, by_name, at, errors)
        if feature is not None and feature in seen:
            errors[f"{at}.feature"] = [f"{feature} appears twice"]
        seen.add(feature)


def _check_contribution(item: Any, by_name: dict, at: str, errors: Errors) -> str | None:
    """Check one {"feature", "value"?, "contribution"}; returns its feature if it is one."""
    if not isinstance(item, dict):
        errors[at] = ['must be an object {"feature", "value", "contribution"}']
        return None
    errors.update(_unknown(item, CONTRIBUTION_KEYS, at))
    feature = _check_feature(item, by_name, at, errors)
    message = _value_error(by_name[feature], item.get("value")) if feature else None
    if message:
        errors[f"{at}.value"] = [message]
    if not schema.is_finite_number(item.get("contribution")):
        got = schema.describe(item.get("contribution"))
        errors[f"{at}.contribution"] = [f"must be a finite number, got {got}"]
    return feature


def _check_feature(item: dict, by_name: dict, at: str, errors: Errors) -> str | None:
    feature = item.get("feature")
    if not isinstance(feature, str) or feature not in by_name:
        errors[f"{at}.feature"] = [
            f"must be a feature of this model, got {schema.describe(feature)}"
        ]
        return None
    return feature


def _check_counterfactual(
    counterfactual: Any,
    by_name: dict,
    labels: list[str],
    where: str,
    errors: Errors,
    keys: tuple[str, ...] = COUNTERFACTUAL_KEYS,
) -> None:
    if not isinstance(counterfactual, dict):
        errors[where] = ['must be null or an object {"feature", "from", "to", "outcome"}']
        return
    errors.update(_unknown(counterfactual, keys, where))
    feature = _check_feature(counterfactual, by_name, where, errors)
    for key in ("from", "to") if feature is not None else ():
        value = counterfactual.get(key)
        message = (
            f"is required: a value of {feature}"
            if value is None
            else _value_error(by_name[feature], value)
        )
        if message:
            errors[f"{where}.{key}"] = [message]
    if counterfactual.get("outcome") not in labels:
        errors[f"{where}.outcome"] = [f"must be one of the model's labels ({', '.join(labels)})"]
    if "change" in counterfactual and not schema.is_finite_number(counterfactual["change"]):
        errors[f"{where}.change"] = ["must be a finite number"]


def _check_alternatives(
    alternatives: Any, by_name: dict, labels: list[str], errors: Errors
) -> None:
    where = "explanation.counterfactual.alternatives"
    if not isinstance(alternatives, list) or len(alternatives) > len(by_name):
        errors[where] = [f"must be a list of at most {len(by_name)} counterfactuals"]
        return
    for index, alternative in enumerate(alternatives):
        at = f"{where}.{index}"
        _check_counterfactual(alternative, by_name, labels, at, errors, ALTERNATIVE_KEYS)
