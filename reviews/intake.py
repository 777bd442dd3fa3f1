"""Checking prediction items before anything is stored.

Each item is validated against its model's feature schema and labels; errors are collected for
every item and field so that a client can fix a whole batch in one go.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.contrib.auth.models import User

from audit.canonical import canonical_json
from models_registry import explanations, schema
from models_registry.models import MLModel, ModelVersion
from reviews import selectors

ITEM_KEYS = {
    "model",
    "version",
    "external_id",
    "subject_ref",
    "features",
    "groups",
    "outcome",
    "confidence",
    "explanation",
}
MAX_TEXT = 200
_CONTROL = re.compile("[\x00-\x1f]")  # what `ord(ch) < 32` refuses, in one C scan
MAX_EXPLANATION_CHARS = 20_000

Errors = dict[str, list[str]]


@dataclass
class Item:
    index: int
    model: MLModel
    version: ModelVersion | None
    external_id: str
    subject_ref: str
    features: dict[str, Any]
    groups: dict[str, str]
    outcome: str | None
    confidence: float | None
    explanation: dict | None
    request_sha256: str

    @property
    def key(self) -> tuple[int, str]:
        return (self.model.pk, self.external_id)


def parse(raw_items: list[Any], *, actor: User, prefix: str = "items") -> tuple[list[Item], Errors]:
    models = _models_for(raw_items, actor)
    # Each model's versions, listed once for the whole batch (they were prefetched).
    versions = {model.pk: list(model.versions.all()) for model in models.values()}
    items, errors = [], {}
    for index, raw in enumerate(raw_items):
        where = f"{prefix}.{index}" if prefix else ""
        item, item_errors = _parse_one(index, raw, models, versions)
        for field, messages in item_errors.items():
            # "" is the item as a whole.
            errors[".".join(part for part in (where, field) if part) or "non_field_errors"] = (
                messages
            )
        if item is not None:
            items.append(item)
    return items, errors


def _models_for(raw_items: list[Any], actor: User) -> dict[str, MLModel]:
    # Only strings: a list or an object as "model" is the item's 400, not a TypeError here.
    names = {
        raw["model"]
        for raw in raw_items
        if isinstance(raw, dict) and isinstance(raw.get("model"), str)
    }
    models = selectors.models_for_ingest(actor).filter(name__in=names)
    return {model.name: model for model in models.prefetch_related("versions")}


def _text(raw: dict, key: str, errors: Errors) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        errors[key] = ["is required: a non-empty string"]
        return ""
    if len(value) > MAX_TEXT or _CONTROL.search(value):
        errors[key] = [f"must be at most {MAX_TEXT} printable characters"]
    return value


def _parse_one(
    index: int, raw: Any, models: dict[str, MLModel], versions: dict[int, list[ModelVersion]]
) -> tuple[Item | None, Errors]:
    if not isinstance(raw, dict):
        return None, {"": ["must be an object"]}
    size = _json_size(raw)
    if size > settings.MAX_ITEM_BYTES:
        return None, {
            "": [
                f"is {size:,} bytes as JSON; a decision is at most {settings.MAX_ITEM_BYTES:,} "
                "bytes (MAX_ITEM_BYTES)"
            ]
        }
    errors: Errors = {key: ["is not a field of a decision"] for key in sorted(set(raw) - ITEM_KEYS)}
    model = models.get(raw.get("model")) if isinstance(raw.get("model"), str) else None
    if model is None:
        name = raw.get("model")
        errors["model"] = (
            [f"no model {name!r} for this client: not found or not granted"]
            if isinstance(name, str)
            else ["must be the name of a registered model (a string)"]
        )
    external_id = _text(raw, "external_id", errors)
    subject_ref = _text(raw, "subject_ref", errors)
    if model is None:
        return None, errors
    features, feature_errors = schema.check_values(model.features, raw.get("features"))
    errors.update(feature_errors)
    groups = _groups(model, raw.get("groups"), errors)
    outcome, confidence, explanation = _client_score(model, raw, errors)
    version = _version(
        model, versions[model.pk], raw.get("version"), scoring=outcome is None, errors=errors
    )
    if errors:
        return None, errors
    body = {
        "model": model.name,
        "version": raw.get("version"),
        "external_id": external_id,
        "subject_ref": subject_ref,
        "features": features,
        "groups": groups,
        "outcome": outcome,
        "confidence": confidence,
        "explanation": explanation,
    }
    digest = hashlib.sha256(canonical_json(body).encode()).hexdigest()
    item = Item(index, model, version, external_id, subject_ref, features, groups, outcome,
                confidence, explanation, digest)  # fmt: skip
    return item, errors


def _json_size(raw: dict) -> int:
    try:
        return len(orjson.dumps(raw))
    except TypeError:  # an integer beyond 64 bits (refused later, by field, as out of range)
        return len(json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode())


def _groups(model: MLModel, raw: Any, errors: Errors) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors["groups"] = ["must be an object mapping protected attributes to values"]
        return {}
    groups = {}
    for name, value in raw.items():
        if name not in model.protected_attributes:
            allowed = ", ".join(model.protected_attributes) or "none"
            errors[f"groups.{name}"] = [f"is not a protected attribute of this model ({allowed})"]
        elif not isinstance(value, str) or not value.strip() or len(value) > 100:
            errors[f"groups.{name}"] = ["must be a non-empty string of at most 100 characters"]
        else:
            groups[name] = value
    return groups


def _client_score(
    model: MLModel, raw: dict, errors: Errors
) -> tuple[str | None, float | None, dict | None]:
    outcome, confidence, explanation = (
        raw.get("outcome"),
        raw.get("confidence"),
        raw.get("explanation"),
    )
    if outcome is None and confidence is None:
        if explanation is not None:
            errors["explanation"] = [
                "can only be sent with the client's own outcome and confidence"
            ]
        return None, None, None
    if outcome is None or confidence is None:
        missing = "outcome" if outcome is None else "confidence"
        errors[missing] = ["is required when the client scores the decision itself"]
        return None, None, None
    if outcome not in model.labels:
        labels = ", ".join(model.labels)
        errors["outcome"] = [f"must be one of {labels}; got {schema.describe(outcome)}"]
    _check_confidence(model, outcome, confidence, errors)
    if explanation is not None:
        errors.update(_explanation_errors(model, explanation))
    return outcome, float(confidence) if schema.is_finite_number(confidence) else None, explanation


def _check_confidence(model: MLModel, outcome: Any, confidence: Any, errors: Errors) -> None:
    """Confidence is the probability of the outcome given, and the outcome is the most likely
    label: so it is at least 1/len(labels) (one half for a binary model) and at most 1."""
    if not schema.is_finite_number(confidence) or not 0 <= confidence <= 1:
        errors["confidence"] = [f"must be a number from 0 to 1, got {schema.describe(confidence)}"]
        return
    least = 1 / len(model.labels)
    # Scores are rounded (Oversight's to 6 places), so a tie may come in a hair under 1/n.
    if confidence < least - 1e-6:
        errors["confidence"] = [
            f"is the probability of the outcome {outcome}, the most likely of "
            f"{len(model.labels)} labels, so it is at least {least:.4g}; got {confidence:g}"
        ]


def _explanation_errors(model: MLModel, explanation: Any) -> Errors:
    errors = explanations.check(explanation, model.features, model.labels)
    if not errors and len(canonical_json(explanation)) > MAX_EXPLANATION_CHARS:
        errors["explanation"] = [f"must be at most {MAX_EXPLANATION_CHARS} characters as JSON"]
    return errors


def _version(
    model: MLModel,
    versions: list[ModelVersion],
    number: Any,
    *,
    scoring: bool,
    errors: Errors,
) -> ModelVersion | None:
    if number is not None:
        if not isinstance(number, int) or isinstance(number, bool):
            errors["version"] = ["must be a version number"]
            return None
        version = next((v for v in versions if v.number == number), None)
        if version is None:
            errors["version"] = [f"model {model.name} has no version {number}"]
        elif scoring and version.status == ModelVersion.Status.RETIRED:
            errors["version"] = [
                f"version {number} is retired; Oversight scores only with live versions"
            ]
        return version
    if not scoring:
        return None  # the client scored it with a model of its own
    champion = next((v for v in versions if v.status == ModelVersion.Status.CHAMPION), None)
    if champion is None:
        errors["model"] = [
            f"model {model.name} has no champion version to score with: promote one, or send "
            "outcome and confidence"
        ]
    return champion
