"""Registering models and versions, promoting champions, changing routing policies."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import record
from audit.log import Actor
from core.errors import ApplicationError, invalid
from core.lazy import lazy_module
from core.roles import MODEL_OWNER, MODEL_SERVICE, has_role
from models_registry import artifacts, datasets, explain, rules, schema
from models_registry import drift_baseline as drift_shape
from models_registry.metrics import check as check_metrics
from models_registry.models import MLModel, ModelVersion, RoutingPolicy, TrainingData
from models_registry.scoring import frame
from models_registry.selectors import current_policy

np = lazy_module("numpy")

LABEL_RE = re.compile(r"^[^\s].{0,99}$")
CARD_FIELDS = (
    "intended_use",
    "out_of_scope",
    "limitations",
    "training_data",
    "contact",
    "notice_ground",
)


# --- models ------------------------------------------------------------------------------------


def model_register(
    *,
    name: str,
    labels: list[str],
    favourable_label: str,
    features: list[dict],
    actor: Actor,
    task: str = MLModel.Task.BINARY,
    protected_attributes: list[str] | None = None,
    card: dict[str, str] | None = None,
    owner: User | None = None,
    services: list[User] | None = None,
    policy: dict[str, Any] | None = None,
) -> MLModel:
    """Register a model with its schema and card, and its first routing policy.

    A model owner who registers a model owns it. A model service that registers one is granted
    it, and may name its owner (who must hold the model_owner role). `services` may name only
    users with the model_service role."""
    specs, errors = schema.validate_specs(features)
    errors.update(_label_errors(task, labels, favourable_label))
    errors.update(_protected_errors(protected_attributes or [], specs))
    owner = _owner_for(actor, owner, errors)
    errors.update(_services_errors(services or []))
    if errors:
        raise invalid(errors)
    card = card or {}
    with transaction.atomic():
        model = _model_create(
            name=name,
            task=task,
            labels=list(labels),
            favourable_label=favourable_label,
            features=specs,
            protected_attributes=list(protected_attributes or []),
            owner=owner,
            created_by=_user(actor),
            created_at=timezone.now(),
            **{key: card.get(key, "") for key in CARD_FIELDS},
        )
        granted = list(services or [])
        if isinstance(actor, User) and has_role(actor, MODEL_SERVICE):
            granted.append(actor)
        model.services.set(granted)
        record(
            action="model.registered",
            actor=actor,
            obj=model,
            payload={
                "name": name,
                "task": task,
                "labels": list(labels),
                "favourable_label": favourable_label,
                "features": specs,
                "protected_attributes": list(protected_attributes or []),
                "owner": owner.username if owner else None,
                "services": sorted(u.username for u in granted),
            },
        )
        _policy_create(model, {**_DEFAULT_POLICY, **(policy or {})}, actor=actor, note="initial")
    return model


def _model_create(*, name: str, **fields: Any) -> MLModel:
    """Insert the model; the unique name settles two registrations of one name at once."""
    try:
        with transaction.atomic():
            return MLModel.objects.create(name=name, **fields)
    except IntegrityError:
        if not MLModel.objects.filter(name=name).exists():
            raise
        # Whoever asks may not see that model: say only that the name is taken.
        raise ApplicationError(
            f"The name {name!r} is not available; choose another.", code="name_not_available"
        ) from None


def _owner_for(actor: Actor, owner: User | None, errors: dict[str, list[str]]) -> User | None:
    if isinstance(actor, User) and has_role(actor, MODEL_OWNER):
        if owner is not None and owner.pk != actor.pk:
            errors["owner"] = [
                f"a model owner registers models they own: leave owner out, or name "
                f"yourself ({actor.username})"
            ]
        return actor
    if owner is not None and not has_role(owner, MODEL_OWNER):
        errors["owner"] = [f"{owner.username} does not have the model_owner role"]
    return owner


def _services_errors(services: list[User]) -> dict[str, list[str]]:
    return {
        f"services.{index}": [f"{user.username} does not have the model_service role"]
        for index, user in enumerate(services)
        if not has_role(user, MODEL_SERVICE)
    }


def _user(actor: Actor) -> User | None:
    return actor if isinstance(actor, User) else None


def _label_errors(task: str, labels: Any, favourable: Any) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if task not in MLModel.Task.values:
        errors["task"] = [f"must be one of {', '.join(MLModel.Task.values)}"]
    if (
        not isinstance(labels, list)
        or not all(isinstance(label, str) and LABEL_RE.match(label) for label in labels)
        or len(set(labels)) != len(labels)
    ):
        return {**errors, "labels": ["must be a list of distinct, non-empty label strings"]}
    if task == MLModel.Task.BINARY and len(labels) != 2:
        errors["labels"] = ["a binary classification model has exactly two labels"]
    elif len(labels) < 2:
        errors["labels"] = ["a classification model has at least two labels"]
    if favourable not in labels:
        errors["favourable_label"] = [f"must be one of the labels ({', '.join(labels)})"]
    return errors


def _protected_errors(names: Any, specs: list[dict]) -> dict[str, list[str]]:
    if not isinstance(names, list) or not all(
        isinstance(n, str) and schema.NAME_RE.match(n) for n in names
    ):
        return {"protected_attributes": ["must be a list of attribute names"]}
    overlap = sorted(set(names) & {spec["name"] for spec in specs})
    if overlap:
        # Protected attributes are kept apart from features on purpose: a model that takes
        # race or sex as an input is a different conversation.
        return {
            "protected_attributes": [
                f"{', '.join(overlap)} cannot be both a feature and a protected attribute"
            ]
        }
    return {}


# --- versions ---------------------------------------------------------------------------------


def version_upload(
    *,
    model: MLModel,
    artifact: bytes,
    actor: Actor,
    metrics: dict | None = None,
    baseline: dict | None = None,
    drift_baseline: dict | None = None,
    label_count: int | None = None,
    data_window: tuple[datetime, datetime] | None = None,
    notes: str = "",
    training_data: bytes | None = None,
    test_data: bytes | None = None,
    parent: ModelVersion | None = None,
    provenance: dict | None = None,
    training_ranges: dict | None = None,
) -> ModelVersion:
    """Check a skops artifact against the model's contract and register it as a candidate.

    `training_data` and `test_data` are optional Parquet files (checked against the feature
    schema, sha256 stored) from which Oversight can retrain the version; `parent` and
    `provenance` say where a retrained version came from. `drift_baseline` is the training
    distribution in bins (models_registry.drift_baseline), optional. `training_ranges`
    (optional) says what the training data covered, per feature: {"income": [0, 220],
    "history": ["good", "fair"]}."""
    estimator = artifacts.loaded(artifact)
    baseline = _check_baseline(model, baseline)
    ranges = _check_training_ranges(model, training_ranges)
    _check_estimator(model, estimator, baseline)
    errors = check_metrics(metrics)
    errors.update(drift_shape.check(drift_baseline, model.features))
    if errors:
        raise invalid(errors)
    data = {
        split: datasets.check(model, raw, field=f"{split}_data")
        for split, raw in (("training", training_data), ("test", test_data))
        if raw is not None
    }
    digest = artifacts.sha256(artifact)
    linear = explain.linear_cached(
        digest, estimator, model.features, model.favourable_label, baseline
    )
    method = explain.LINEAR if linear is not None else explain.BASELINE
    with transaction.atomic():
        MLModel.objects.select_for_update().get(pk=model.pk)
        last = model.versions.order_by("-number").values_list("number", flat=True).first()
        version = ModelVersion.objects.create(
            model=model,
            number=(last or 0) + 1,
            artifact=artifact,
            sha256=digest,
            size_bytes=len(artifact),
            estimator=_describe_estimator(estimator),
            explainer=method,
            baseline=baseline,
            drift_baseline=drift_baseline or {},
            training_ranges=ranges,
            metrics=metrics or {},
            label_count=label_count,
            data_window_start=data_window[0] if data_window else None,
            data_window_end=data_window[1] if data_window else None,
            notes=notes,
            parent=parent,
            provenance=provenance or {},
            created_by=_user(actor),
            created_at=timezone.now(),
        )
        for split, checked in data.items():
            TrainingData.objects.create(
                version=version,
                split=TrainingData.Split.TRAIN if split == "training" else TrainingData.Split.TEST,
                data=checked.data,
                sha256=checked.sha256,
                size_bytes=len(checked.data),
                rows=checked.rows,
                columns=checked.columns,
                created_at=version.created_at,
            )
        record(
            action="version.registered",
            actor=actor,
            obj=version,
            payload={
                "model": model.name,
                "number": version.number,
                "sha256": digest,
                "size_bytes": len(artifact),
                "estimator": version.estimator,
                "explainer": method,
                "metrics": version.metrics,
                "label_count": label_count,
                "parent": parent.number if parent else None,
                "provenance": version.provenance,
                "data": {
                    f"{split}_data": {"sha256": c.sha256, "rows": c.rows}
                    for split, c in data.items()
                },
                "drift_baseline": bool(version.drift_baseline),
                "training_ranges": ranges,
            },
        )
    return version


def _check_training_ranges(model: MLModel, ranges: dict | None) -> dict:
    """[min, max] per number feature, the values seen per category or boolean feature."""
    if ranges is None:
        return {}
    if not isinstance(ranges, dict):
        raise invalid({"training_ranges": ["must be a JSON object mapping features to ranges"]})
    errors: dict[str, list[str]] = {}
    clean = {}
    for name, value in ranges.items():
        spec = model.feature(name) if isinstance(name, str) else None
        where = f"training_ranges.{name}"
        if spec is None:
            errors[where] = ["is not a feature of this model"]
            continue
        problem = _range_problem(spec, value)
        if problem:
            errors[where] = [problem]
        else:
            clean[name] = list(value)
    if errors:
        raise invalid(errors)
    return clean


def _range_problem(spec: dict, value: Any) -> str | None:
    if spec["type"] in ("number", "integer"):
        ok = (
            isinstance(value, list)
            and len(value) == 2
            and all(schema.is_finite_number(v) for v in value)
            and value[0] <= value[1]
        )
        return None if ok else "must be [min, max]: two finite numbers, min first"
    allowed = spec["choices"] if spec["type"] == "category" else [False, True]
    boolean = spec["type"] == "boolean"
    # True == 1 in Python: a boolean feature's values must be booleans, a category's not.
    if (
        isinstance(value, list)
        and value
        and all(v in allowed and isinstance(v, bool) == boolean for v in value)
    ):
        return None
    return f"must be a non-empty list of the values seen, from {allowed}"


def _check_baseline(model: MLModel, baseline: dict | None) -> dict:
    if baseline is None:
        return explain.default_baseline(model.features)
    if not isinstance(baseline, dict):
        raise invalid({"baseline": ["must be a JSON object mapping features to reference values"]})
    values, errors = schema.check_values(model.features, baseline, prefix="baseline")
    if errors:
        raise invalid(errors)
    return {
        **explain.default_baseline(model.features),
        **{k: v for k, v in values.items() if v is not None},
    }


def _check_estimator(model: MLModel, estimator: Any, baseline: dict) -> None:
    if not hasattr(estimator, "predict_proba") or not hasattr(estimator, "classes_"):
        raise artifacts.artifact_error(
            "must be a fitted classifier with predict_proba and classes_ (e.g. a Pipeline)"
        )
    classes = artifacts.class_labels(estimator)
    if sorted(classes) != sorted(model.labels):
        raise artifacts.artifact_error(
            f"predicts classes {classes}, but the model's labels are {model.labels}"
        )
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None and sorted(map(str, names)) != sorted(model.feature_names):
        raise artifacts.artifact_error(
            f"was fitted on columns {sorted(map(str, names))}, but the schema's features are "
            f"{sorted(model.feature_names)}"
        )
    problem = _trial_score(estimator, model, baseline)
    if problem:
        raise artifacts.artifact_error(
            f"could not score a row of the schema's features ({problem})"
        )
    _check_optional_features(model, estimator, baseline)


def _trial_score(estimator: Any, model: MLModel, row: dict) -> str | None:
    """Why the estimator cannot score this row, or None when it can."""
    try:
        proba = np.asarray(estimator.predict_proba(frame(model.features, [row])))
    except Exception as exc:
        # sklearn's messages run to a paragraph; the first line says what went wrong.
        return f"{type(exc).__name__}: {next(iter(str(exc).splitlines()), '')}"
    if proba.shape != (1, len(model.labels)) or not np.all(np.isfinite(proba)):
        return "predict_proba did not return one probability per label"
    return None


def _check_optional_features(model: MLModel, estimator: Any, baseline: dict) -> None:
    """An optional feature reaches the estimator as a missing value (NaN): refuse an artifact
    that cannot score without one now, not on the first decision that leaves it out."""
    problems = {
        spec["name"]: _trial_score(estimator, model, {**baseline, spec["name"]: None})
        for spec in model.features
        if not spec["required"]
    }
    failing = {name: problem for name, problem in problems.items() if problem}
    if failing:
        names = ", ".join(repr(name) for name in failing)
        kind = "feature" if len(failing) == 1 else "features"
        raise artifacts.artifact_error(
            f"cannot score a row without the optional {kind} {names} "
            f"({next(iter(failing.values()))}): add an imputer to the pipeline, or make "
            f"{'it' if len(failing) == 1 else 'them'} required"
        )


def _describe_estimator(estimator: Any) -> str:
    steps = getattr(estimator, "steps", None)
    if steps:
        return "Pipeline(" + " → ".join(type(step).__name__ for _, step in steps) + ")"
    return type(estimator).__name__


def version_promote(*, version: ModelVersion, actor: Actor) -> ModelVersion:
    """Make a version the model's champion; the previous champion is retired."""
    with transaction.atomic():
        MLModel.objects.select_for_update().get(pk=version.model_id)
        version = ModelVersion.objects.get(pk=version.pk)
        if version.status == ModelVersion.Status.CHAMPION:
            raise ApplicationError(f"Version {version.number} is already the champion.")
        previous = ModelVersion.objects.filter(
            model_id=version.model_id, status=ModelVersion.Status.CHAMPION
        ).first()
        now = timezone.now()
        if previous is not None:
            previous.status, previous.retired_at = ModelVersion.Status.RETIRED, now
            previous.save(update_fields=["status", "retired_at"])
        version.status = ModelVersion.Status.CHAMPION
        version.promoted_by, version.promoted_at = _user(actor), now
        version.save(update_fields=["status", "promoted_by", "promoted_at"])
        record(
            action="version.promoted",
            actor=actor,
            obj=version,
            payload={
                "model": version.model.name,
                "number": version.number,
                "sha256": version.sha256,
                "previous_champion": previous.number if previous else None,
            },
        )
    return version


# --- routing policies ---------------------------------------------------------------------------

_DEFAULT_POLICY = {
    "confidence_threshold": 0.6,
    "high_stakes": [],
    "random_audit_rate": 2.0,
    "active_learning_budget": 0,
    "active_learning_max_margin": 0.2,
    "reviewers_required": 1,
    "blind_review": False,
    "sla_hours": 48,
    "review_all": False,
    "retrain_min_new_labels": 0,
    "appeal_window_days": 180,
}


NOTE_LIMIT = 2000
NOTE_REQUIRED = "say why the policy changes (kept in the audit trail with the change)"


def policy_update(
    *, model: MLModel, changes: dict[str, Any], actor: Actor, note: str
) -> RoutingPolicy:
    """Save a new version of the model's routing policy; the change is audited before/after,
    with its note, which is required: a change of who reviews what says why."""
    unknown = sorted(set(changes) - set(RoutingPolicy.SETTINGS))
    errors = {key: ["is not a routing policy setting"] for key in unknown}
    note = (note or "").strip() if isinstance(note, str) else ""
    if not note:
        errors["note"] = [NOTE_REQUIRED]
    elif len(note) > NOTE_LIMIT:
        errors["note"] = [f"must be at most {NOTE_LIMIT} characters"]
    if unknown:
        raise invalid(errors)
    with transaction.atomic():
        MLModel.objects.select_for_update().get(pk=model.pk)
        before = current_policy(model)
        settings = {**before.as_dict(), **changes}
        if errors:  # the note: named with every bad setting, not alone first
            raise invalid({**policy_errors(model, settings), **errors})
        if settings == before.as_dict():
            return before
        return _policy_create(model, settings, actor=actor, note=note, before=before)


def _policy_create(
    model: MLModel,
    settings: dict[str, Any],
    *,
    actor: Actor,
    note: str,
    before: RoutingPolicy | None = None,
) -> RoutingPolicy:
    errors = policy_errors(model, settings)
    if errors:
        raise invalid(errors)
    policy = RoutingPolicy.objects.create(
        model=model,
        version=(before.version if before else 0) + 1,
        note=note,
        created_by=_user(actor),
        created_at=timezone.now(),
        **settings,
    )
    record(
        action="policy.updated" if before else "policy.created",
        actor=actor,
        obj=model,
        payload={
            "model": model.name,
            "version": policy.version,
            "before": before.as_dict() if before else None,
            "after": policy.as_dict(),
            "note": note,
        },
    )
    return policy


def _number_between(value: Any, lo: float, hi: float) -> bool:
    return schema.is_finite_number(value) and lo <= value <= hi


def _whole_between(value: Any, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def policy_errors(model: MLModel, settings: dict[str, Any]) -> dict[str, list[str]]:
    checks = {
        "confidence_threshold": (
            _number_between(settings["confidence_threshold"], 0, 1),
            "must be a number from 0 to 1 (route when confidence is below it)",
        ),
        "random_audit_rate": (
            _number_between(settings["random_audit_rate"], 0, 100),
            "must be a percentage from 0 to 100",
        ),
        "active_learning_budget": (
            _whole_between(settings["active_learning_budget"], 0, 1_000_000),
            "must be a whole number of decisions per day, 0 or more",
        ),
        "active_learning_max_margin": (
            _number_between(settings["active_learning_max_margin"], 0, 1),
            "must be a number from 0 to 1",
        ),
        "reviewers_required": (
            settings["reviewers_required"] in (1, 2)
            and not isinstance(settings["reviewers_required"], bool),
            "must be 1, or 2 for two independent reviews with adjudication",
        ),
        "blind_review": (isinstance(settings["blind_review"], bool), "must be true or false"),
        "review_all": (isinstance(settings["review_all"], bool), "must be true or false"),
        "sla_hours": (
            _whole_between(settings["sla_hours"], 1, 24 * 365),
            "must be a whole number of hours from 1 to 8760",
        ),
        "retrain_min_new_labels": (
            _whole_between(settings["retrain_min_new_labels"], 0, 10_000_000),
            "must be a whole number of new labels, 0 or more (0: retrain only when asked)",
        ),
        "appeal_window_days": (
            _whole_between(settings["appeal_window_days"], 1, 3650),
            "must be a whole number of days from 1 to 3650 (the DSA asks for at least 180)",
        ),
    }
    errors = {key: [message] for key, (ok, message) in checks.items() if not ok}
    fields = rules.field_types(model.features, model.labels)
    errors.update(rules.validate_rules(settings["high_stakes"], fields, prefix="high_stakes"))
    return errors


# --- which services may use a model -----------------------------------------------------------


def model_services_grant(*, model: MLModel, service: User, actor: Actor) -> bool:
    """Let a model service send decisions for the model and read them back. Only the model's
    owner (or a command run on the server) grants; returns whether anything changed."""
    _check_grantor(model, actor)
    if not has_role(service, MODEL_SERVICE):
        raise invalid({"service": [f"{service.username} does not have the model_service role"]})
    return _services_change(model, service, actor, grant=True)


def model_services_revoke(*, model: MLModel, service: User, actor: Actor) -> bool:
    """Take a model back from a service: it no longer sends nor reads the model's decisions."""
    _check_grantor(model, actor)
    return _services_change(model, service, actor, grant=False)


def _services_change(model: MLModel, service: User, actor: Actor, *, grant: bool) -> bool:
    """Grant or revoke under the model's row lock, audited; whether anything changed."""
    with transaction.atomic():
        MLModel.objects.select_for_update().get(pk=model.pk)
        if model.services.filter(pk=service.pk).exists() == grant:
            return False
        (model.services.add if grant else model.services.remove)(service)
        record(
            action="model.service_granted" if grant else "model.service_revoked",
            actor=actor,
            obj=model,
            payload={"model": model.name, "service": service.username},
        )
    return True


def _check_grantor(model: MLModel, actor: Actor) -> None:
    if isinstance(actor, User) and not (
        model.owner_id == actor.pk and has_role(actor, MODEL_OWNER)
    ):
        raise ApplicationError(
            f"Only the owner of {model.name} grants services its use.", status=403
        )
