"""Ingestion: validate, score, explain, route and store predictions, all or nothing."""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import record_many
from audit.canonical import canonical_json
from core import bulk
from core.errors import ApplicationError, invalid
from models_registry import explain, scoring
from models_registry.artifacts import class_labels, estimator_for
from models_registry.models import RoutingPolicy
from models_registry.selectors import current_policy
from reviews import hooks, intake, routing
from reviews.models import ActiveLearningDay, Decision, ProtectedAttribute, ReviewTask
from reviews.selectors import blind_routing, task_priority

MAX_BULK = 1000
logger = logging.getLogger(__name__)


@dataclass
class Ingested:
    index: int
    decision: Decision
    created: bool


@dataclass
class _Scored:
    item: intake.Item
    score: scoring.Score
    explanation: dict
    route: routing.Route | None = None


# --- ingestion ---------------------------------------------------------------------------------


def decisions_ingest(*, items: list[Any], actor: User, prefix: str = "items") -> list[Ingested]:
    """Validate, score, explain, route and store predictions, all or nothing.

    Idempotent per (model, external_id): the same body again returns the stored decision;
    a different body under a used external_id is a 409 and nothing is stored.
    """
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BULK:
        raise invalid({prefix or "items": [f"must be a list of 1 to {MAX_BULK} decisions"]})
    parsed, errors = intake.parse(items, actor=actor, prefix=prefix)
    if errors:
        raise invalid(errors)
    unique, aliases = _dedupe(parsed, prefix)
    existing = _existing(unique, prefix)
    scored = _score([item for item in unique if item.key not in existing], prefix)
    for attempt in range(3):
        try:
            with transaction.atomic():
                stored = _store([s for s in scored if s.item.key not in existing], actor)
            break
        except IntegrityError:
            # Another request stored one of these external ids after we looked: look again.
            if attempt == 2:
                raise
            logger.info("ingest raced another request for the same external_id; retrying")
            existing = _existing(unique, prefix)
    by_key = {
        **{k: (d, False) for k, d in existing.items()},
        **{d_key: (d, True) for d_key, d in stored.items()},
    }
    results = [Ingested(item.index, *by_key[item.key]) for item in unique]
    results += [Ingested(index, by_key[key][0], False) for index, key in aliases.items()]
    return sorted(results, key=lambda r: r.index)


def _dedupe(items: list[intake.Item], prefix: str) -> tuple[list[intake.Item], dict[int, tuple]]:
    first: dict[tuple, intake.Item] = {}
    aliases, conflicts = {}, {}
    for item in items:
        seen = first.setdefault(item.key, item)
        if seen is item:
            continue
        if seen.request_sha256 == item.request_sha256:
            aliases[item.index] = item.key
        else:
            conflicts[_at(prefix, item.index, "external_id")] = [
                f"repeats the external_id of item {seen.index} with a different body"
            ]
    if conflicts:
        raise ApplicationError(
            "The same external_id appears twice with different bodies.",
            code="idempotency_conflict",
            fields=conflicts,
        )
    return list(first.values()), aliases


def _at(prefix: str, index: int, field: str) -> str:
    return f"{prefix}.{index}.{field}" if prefix else field


def _existing(items: list[intake.Item], prefix: str) -> dict[tuple, Decision]:
    by_model: dict[int, list[str]] = defaultdict(list)
    for item in items:
        by_model[item.model.pk].append(item.external_id)
    found = {}
    for model_id, external_ids in by_model.items():
        for decision in Decision.objects.filter(model_id=model_id, external_id__in=external_ids):
            found[(model_id, decision.external_id)] = decision
    conflicts = {
        _at(prefix, item.index, "external_id"): [
            f"{item.external_id!r} was already used for decision {found[item.key].pk} with a "
            "different body; use a new external_id for a new prediction"
        ]
        for item in items
        if item.key in found and found[item.key].request_sha256 != item.request_sha256
    }
    if conflicts:
        raise ApplicationError(
            "An external_id was already used with a different body; nothing was stored.",
            code="idempotency_conflict",
            fields=conflicts,
        )
    return found


def _score(items: list[intake.Item], prefix: str) -> list[_Scored]:
    """Score with the chosen version (in one batch per version) or take the client's score."""
    scored = [_client_scored(item) for item in items if item.outcome is not None]
    by_version = defaultdict(list)
    for item in items:
        if item.outcome is None:
            by_version[item.version.pk].append(item)
    for group in by_version.values():
        scored += _score_with_version_or_400(group, prefix)
    return scored


def _score_with_version_or_400(items: list[intake.Item], prefix: str) -> list[_Scored]:
    try:
        return _score_with_version(items)
    except ValueError as exc:
        # An optional feature left out reaches the estimator as NaN. Uploads are checked for
        # this, but a version that predates the check may still refuse it: that is the
        # client's 400 naming what was left out, not a 500.
        missing = _missing_optional(items, prefix, exc)
        if not missing:
            raise
        raise invalid(missing) from exc


def _missing_optional(items: list[intake.Item], prefix: str, exc: Exception) -> dict:
    version, model = items[0].version, items[0].model
    reason = next(iter(str(exc).splitlines()), "")
    message = (
        f"was left out, and version {version.number} of {model.name} cannot score without it "
        f"({reason}); send a value"
    )
    return {
        _at(prefix, item.index, f"features.{name}"): [message]
        for item in items
        for name, value in item.features.items()
        if value is None
    }


def _score_with_version(items: list[intake.Item]) -> list[_Scored]:
    version, model = items[0].version, items[0].model
    estimator = estimator_for(version)
    rows = [item.features for item in items]
    linear = explain.linear_for(version, estimator) if version.explainer == explain.LINEAR else None
    if linear is not None:
        transformed, proba = explain.linear_probabilities(linear, estimator, model.features, rows)
    else:
        transformed, proba = None, scoring.probabilities(estimator, model.features, rows)
    scores = scoring.scores_from(class_labels(estimator), proba)
    explanations = explain.explain(
        estimator=estimator,
        method=version.explainer,
        specs=model.features,
        labels=model.labels,
        favourable=model.favourable_label,
        baseline=version.baseline,
        rows=rows,
        outcomes=[s.outcome for s in scores],
        linear=linear,
        transformed=transformed,
    )
    return [_Scored(i, s, e) for i, s, e in zip(items, scores, explanations, strict=True)]


def _client_scored(item: intake.Item) -> _Scored:
    labels = item.model.labels
    probabilities, margin = {}, None
    if len(labels) == 2:
        other = labels[1] if item.outcome == labels[0] else labels[0]
        probabilities = {item.outcome: item.confidence, other: round(1 - item.confidence, 6)}
        margin = round(abs(2 * item.confidence - 1), 6)
    explanation = {
        "method": "client",
        "contributions": [],
        "counterfactual": None,
        **(item.explanation or {"note": "scored by the client, which sent no explanation"}),
    }
    score = scoring.Score(item.outcome, item.confidence, probabilities, margin)
    return _Scored(item, score, explanation)


def _store(scored: list[_Scored], actor: User) -> dict[tuple, Decision]:
    if not scored:
        return {}
    now = timezone.now()
    policies = {
        m: current_policy(s.item.model) for m, s in {s.item.model.pk: s for s in scored}.items()
    }
    _route(scored, policies, now)
    decisions = [_decision(s, policies[s.item.model.pk], actor, now) for s in scored]
    bulk.insert(decisions)
    bulk.insert(
        [
            ProtectedAttribute(decision=d, name=name, value=value)
            for s, d in zip(scored, decisions, strict=True)
            for name, value in sorted(s.item.groups.items())
        ]
    )
    tasks = _tasks_for(scored, decisions, policies, now)
    record_many(
        [
            _ingest_event(s, d, tasks.get(d.pk, []), actor)
            for s, d in zip(scored, decisions, strict=True)
        ]
    )
    hooks.ingested(decisions)
    return {s.item.key: d for s, d in zip(scored, decisions, strict=True)}


def _route(scored: list[_Scored], policies: dict[int, RoutingPolicy], now: Any) -> None:
    by_model = defaultdict(list)
    for s in scored:
        s.route = routing.evaluate(
            policies[s.item.model.pk],
            model_name=s.item.model.name,
            external_id=s.item.external_id,
            outcome=s.score.outcome,
            confidence=s.score.confidence,
            margin=s.score.margin,
            features=s.item.features,
        )
        by_model[s.item.model.pk].append(s.route)
    for model_id, routes in by_model.items():
        wanted = routing.active_learning_wanted(routes)
        granted = active_learning_take(policy=policies[model_id], day=now.date(), wanted=wanted)
        routing.apply_active_learning(policies[model_id], routes, granted=granted)


def active_learning_take(*, policy: RoutingPolicy, day: date, wanted: int) -> int:
    """Reserve up to `wanted` of the model's active-learning budget for `day`; returns how many
    were granted. The row lock makes concurrent ingests share the budget. Runs in the ingest's
    transaction: its audit is the ingest event, whose reasons say which decisions it bought."""
    if wanted <= 0:
        return 0
    ActiveLearningDay.objects.get_or_create(model_id=policy.model_id, day=day)
    row = ActiveLearningDay.objects.select_for_update().get(model_id=policy.model_id, day=day)
    granted = max(0, min(wanted, policy.active_learning_budget - row.used))
    if granted:
        row.used += granted
        row.save(update_fields=["used"])
    return granted


def _decision(s: _Scored, policy: RoutingPolicy, actor: User, now: Any) -> Decision:
    routed = s.route.routed
    trace = s.route.as_dict(policy.version)
    return Decision(
        model=s.item.model,
        model_version=s.item.version,
        external_id=s.item.external_id,
        subject_ref=s.item.subject_ref,
        features=s.item.features,
        scored_by=Decision.ScoredBy.CLIENT if s.item.outcome else Decision.ScoredBy.OVERSIGHT,
        model_outcome=s.score.outcome,
        confidence=s.score.confidence,
        probabilities=s.score.probabilities,
        margin=s.score.margin,
        explanation=s.explanation,
        policy_version=policy.version,
        routing=trace,
        routed=routed,
        reason_tags=routing.tags(s.route.reasons),
        blind_reason_tags=routing.tags(blind_routing(trace)["reasons"]),
        status=Decision.Status.PENDING_REVIEW if routed else Decision.Status.FINAL,
        final_outcome="" if routed else s.score.outcome,
        finalized_by="" if routed else Decision.FinalizedBy.MODEL,
        finalized_at=None if routed else now,
        request_sha256=s.item.request_sha256,
        ingested_by=actor,
        received_at=now,
    )


def _tasks_for(
    scored: list[_Scored], decisions: list[Decision], policies: dict, now: Any
) -> dict[int, list[ReviewTask]]:
    tasks: dict[int, list[ReviewTask]] = defaultdict(list)
    for s, decision in zip(scored, decisions, strict=True):
        if not s.route.routed:
            continue
        policy = policies[s.item.model.pk]
        kinds = [ReviewTask.Kind.INITIAL]
        if policy.reviewers_required == 2:
            kinds.append(ReviewTask.Kind.SECOND_OPINION)
        for kind in kinds:
            tasks[decision.pk].append(
                ReviewTask(
                    decision=decision,
                    model_id=decision.model_id,
                    kind=kind,
                    blind=policy.blind_review,
                    priority=task_priority(decision.routing, blind=policy.blind_review),
                    due_at=now + timedelta(hours=policy.sla_hours),
                    created_at=now,
                )
            )
    bulk.insert([task for group in tasks.values() for task in group])
    return tasks


def _ingest_event(s: _Scored, decision: Decision, tasks: list[ReviewTask], actor: User) -> dict:
    version = s.item.version
    payload = {
        "model": s.item.model.name,
        "external_id": decision.external_id,
        "subject_ref": decision.subject_ref,
        "version": version.number if version else None,
        "artifact_sha256": version.sha256 if version else None,
        "scored_by": decision.scored_by,
        "model_outcome": decision.model_outcome,
        "confidence": decision.confidence,
        "request_sha256": decision.request_sha256,
        "explanation_sha256": hashlib.sha256(
            canonical_json(decision.explanation).encode()
        ).hexdigest(),
        "policy_version": decision.policy_version,
        "routed": decision.routed,
        "reasons": s.route.reasons,
        "status": decision.status,
        "final_outcome": decision.final_outcome or None,
        "tasks": [{"id": task.pk, "kind": task.kind} for task in tasks],
    }
    return {"action": "decision.ingested", "actor": actor, "obj": decision, "payload": payload}
