"""Ingestion: validate, score, explain, route and store predictions, all or nothing."""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import orjson
from django.contrib.auth.models import User
from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone

from audit import actor_label, stage_rows
from audit.canonical import canonical_json
from core import bulk
from core.errors import ApplicationError, invalid
from models_registry import explain, scoring
from models_registry.artifacts import class_labels, estimator_for
from models_registry.models import RoutingPolicy
from models_registry.selectors import current_policy
from reviews import hooks, intake, routing
from reviews.fields import CanonicalJSON
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
    duplicates = budget_races = 0
    while True:
        try:
            with transaction.atomic():
                stored = _store(
                    [s for s in scored if s.item.key not in existing],
                    actor,
                    lock_budget=budget_races >= 2,
                )
            break
        except IntegrityError:
            # Another request stored one of these external ids after we looked: look again.
            duplicates += 1
            if duplicates == 3:
                raise
            logger.info("ingest raced another request for the same external_id; retrying")
            existing = _existing(unique, prefix)
        except _BudgetRaced:
            # Another ingest spent the active-learning budget first: plan again (after two
            # such races, with the budget row locked from the start).
            budget_races += 1
            logger.info("ingest raced another for the active-learning budget; retrying")
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
        ids = _stored_ids(model_id, external_ids)
        for decision in Decision.objects.filter(pk__in=ids) if ids else ():
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


# One probe of the (model, external_id) unique index per external_id, whatever the planner
# believes about the table: `external_id IN (…1,000 values…)` was planned, on statistics that
# lag a fast-growing table (a model believed to have 200 decisions had 58,000), as a scan of
# every decision of the model (130 ms, against 1 ms). The LIMIT keeps the subquery from being
# flattened into a join the planner could plan the same way.
_STORED_IDS_SQL = (
    "SELECT d.id FROM unnest(%s::text[]) AS e(external_id) CROSS JOIN LATERAL "
    "(SELECT id FROM reviews_decision WHERE model_id = %s AND external_id = e.external_id "
    "LIMIT 1) AS d"
)


def _stored_ids(model_id: int, external_ids: list[str]) -> list[int]:
    """Ids of the model's decisions stored under any of these external ids."""
    connection = connections[router.db_for_read(Decision)]
    if connection.vendor != "postgresql":
        rows = Decision.objects.filter(model_id=model_id, external_id__in=external_ids)
        return list(rows.values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(_STORED_IDS_SQL, [external_ids, model_id])
        return [row[0] for row in cursor.fetchall()]


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


class _BudgetRaced(Exception):
    """Another ingest spent the active-learning budget this one counted on: start again."""


@dataclass
class _Grant:
    model_id: int
    day: date
    granted: int
    budget: int


def _store(scored: list[_Scored], actor: User, *, lock_budget: bool = False) -> dict:
    """Write the decisions, their protected attributes, tasks and ingest events.

    Every row is built once, as the tuple COPY sends (PostgreSQL), with ids drawn beforehand
    from the sequences in one round trip, so rows refer to each other without RETURNING; each
    explanation is encoded once to canonical JSON, hashed for the event and stored as that text.
    The active-learning budget (a hot row shared by every ingest of the model) is taken by the
    transaction's last statement, so its lock is held only until the commit that follows; the
    grant is planned from an unlocked read and, if another ingest spent the budget meanwhile,
    the attempt is rolled back and started again (_BudgetRaced). With lock_budget the row is
    locked first instead, as a last resort that cannot race."""
    if not scored:
        return {}
    now = timezone.now()
    policies = {
        m: current_policy(s.item.model) for m, s in {s.item.model.pk: s for s in scored}.items()
    }
    grants = _route(scored, policies, now, lock=lock_budget)
    kinds = {m: _task_kinds(p) for m, p in policies.items()}
    copy = bulk.copies(Decision)
    task_count = sum(len(kinds[s.item.model.pk]) for s in scored if s.route.routed)
    ids = bulk.reserve_ids({Decision: len(scored), ReviewTask: task_count}) if copy else {}
    decision_ids = iter(ids.get(Decision, []))
    task_ids = iter(ids.get(ReviewTask, []))
    actor_id, label = actor.pk, actor_label(actor)

    decisions, rows, explanations = [], [], []
    for s in scored:
        text = CanonicalJSON.of(s.explanation)
        values = _decision_values(
            s, policies[s.item.model.pk], actor_id, now, next(decision_ids, None)
        )
        decisions.append(Decision(*values))
        explanations.append(text)
        if copy:
            rows.append(_copy_row(values, text))
    if copy:
        bulk.insert_tuples(Decision, DECISION_COLUMNS, rows)
        for decision in decisions:
            decision._state.adding = False
            decision._state.db = router.db_for_write(Decision)
    else:
        Decision.objects.bulk_create(decisions)

    bulk.insert_tuples(
        ProtectedAttribute,
        ("decision_id", "name", "value"),
        [
            (d.pk, name, value)
            for s, d in zip(scored, decisions, strict=True)
            for name, value in sorted(s.item.groups.items())
        ],
    )
    tasks = _tasks_for(scored, decisions, policies, kinds, now, task_ids if copy else None)
    stage_rows(
        [
            (label, "decision.ingested", "decision", str(d.pk), _ingest_payload(s, d, t, e))
            for s, d, t, e in zip(scored, decisions, tasks, explanations, strict=True)
        ]
    )
    hooks.ingested(decisions)
    _spend(grants)  # last: the budget row stays locked only until the commit
    return {s.item.key: d for s, d in zip(scored, decisions, strict=True)}


def _route(
    scored: list[_Scored], policies: dict[int, RoutingPolicy], now: Any, *, lock: bool
) -> list[_Grant]:
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
    grants = []
    for model_id in sorted(by_model):
        routes, policy = by_model[model_id], policies[model_id]
        wanted = routing.active_learning_wanted(routes)
        if lock:
            granted = active_learning_take(policy=policy, day=now.date(), wanted=wanted)
        else:
            granted = _budget_left(policy, now.date(), wanted)
            if granted:
                grants.append(_Grant(model_id, now.date(), granted, policy.active_learning_budget))
        routing.apply_active_learning(policy, routes, granted=granted)
    return grants


def _budget_left(policy: RoutingPolicy, day: date, wanted: int) -> int:
    """How much of `wanted` the day's budget has left, read without a lock (_spend checks)."""
    if wanted <= 0 or policy.active_learning_budget <= 0:
        return 0
    used = (
        ActiveLearningDay.objects.filter(model_id=policy.model_id, day=day)
        .values_list("used", flat=True)
        .first()
    )
    return max(0, min(wanted, policy.active_learning_budget - (used or 0)))


_SPEND_SQL = (
    "INSERT INTO reviews_activelearningday AS al (model_id, day, used) VALUES (%s, %s, %s) "
    "ON CONFLICT (model_id, day) DO UPDATE SET used = al.used + excluded.used "
    "WHERE al.used + excluded.used <= %s RETURNING used"
)


def _spend(grants: list[_Grant]) -> None:
    """Spend the planned grants, each in one statement that creates the day's row or adds to it
    only while the budget allows; if it no longer does, the whole ingest starts again."""
    for grant in grants:
        with transaction.get_connection().cursor() as cursor:
            cursor.execute(_SPEND_SQL, [grant.model_id, grant.day, grant.granted, grant.budget])
            if cursor.fetchone() is None:
                raise _BudgetRaced


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


# Decision's columns in model order: Decision(*values) takes them positionally, and COPY
# names them; a test checks this list against the model.
DECISION_COLUMNS = (
    "id",
    "model_id",
    "model_version_id",
    "external_id",
    "subject_ref",
    "features",
    "scored_by",
    "model_outcome",
    "confidence",
    "probabilities",
    "margin",
    "explanation",
    "policy_version",
    "routing",
    "routed",
    "reason_tags",
    "blind_reason_tags",
    "status",
    "final_outcome",
    "finalized_by",
    "finalized_by_user_id",
    "finalized_at",
    "request_sha256",
    "ingested_by_id",
    "received_at",
)
# Positions of the JSON columns: jsonb ones go to COPY as orjson text; the explanation as its
# canonical text.
_JSONB_AT = tuple(DECISION_COLUMNS.index(c) for c in ("features", "probabilities", "routing"))
_EXPLANATION_AT = DECISION_COLUMNS.index("explanation")


def _decision_values(
    s: _Scored, policy: RoutingPolicy, actor_id: int, now: Any, pk: int | None
) -> tuple:
    routed = s.route.routed
    trace = s.route.as_dict(policy.version)
    return (
        pk,
        s.item.model.pk,
        s.item.version.pk if s.item.version else None,
        s.item.external_id,
        s.item.subject_ref,
        s.item.features,
        Decision.ScoredBy.CLIENT if s.item.outcome else Decision.ScoredBy.OVERSIGHT,
        s.score.outcome,
        s.score.confidence,
        s.score.probabilities,
        s.score.margin,
        s.explanation,
        policy.version,
        trace,
        routed,
        routing.tags(s.route.reasons),
        routing.tags(blind_routing(trace)["reasons"]),
        Decision.Status.PENDING_REVIEW if routed else Decision.Status.FINAL,
        "" if routed else s.score.outcome,
        "" if routed else Decision.FinalizedBy.MODEL,
        None,
        None if routed else now,
        s.item.request_sha256,
        actor_id,
        now,
    )


def _copy_row(values: tuple, explanation: str) -> list:
    row = list(values)
    for at in _JSONB_AT:
        row[at] = orjson.dumps(row[at]).decode()
    row[_EXPLANATION_AT] = str(explanation)
    return row


def _task_kinds(policy: RoutingPolicy) -> list[str]:
    kinds = [ReviewTask.Kind.INITIAL]
    if policy.reviewers_required == 2:
        kinds.append(ReviewTask.Kind.SECOND_OPINION)
    return kinds


TASK_COLUMNS = (
    "id",
    "decision_id",
    "model_id",
    "kind",
    "state",
    "priority",
    "due_at",
    "senior_only",
    "blind",
    "is_gold",
    "note",
    "created_at",
)


def _tasks_for(
    scored: list[_Scored],
    decisions: list[Decision],
    policies: dict,
    kinds: dict,
    now: Any,
    ids: Any,
) -> list[list[tuple[int, str]]]:
    """Each decision's new tasks as (id, kind); ids drawn beforehand (PostgreSQL) or given by
    the insert (elsewhere)."""
    rows, owners = [], []
    for n, (s, decision) in enumerate(zip(scored, decisions, strict=True)):
        if not s.route.routed:
            continue
        policy = policies[s.item.model.pk]
        priority = task_priority(decision.routing, blind=policy.blind_review)
        due = now + timedelta(hours=policy.sla_hours)
        for kind in kinds[s.item.model.pk]:
            task_id = next(ids) if ids is not None else None
            rows.append(
                (task_id, decision.pk, decision.model_id, kind, ReviewTask.State.OPEN,
                 priority, due, False, policy.blind_review, False, "", now)
            )  # fmt: skip
            owners.append(n)
    if ids is not None:
        bulk.insert_tuples(ReviewTask, TASK_COLUMNS, rows)
    else:
        objs = [ReviewTask(**dict(zip(TASK_COLUMNS, row, strict=True))) for row in rows]
        ReviewTask.objects.bulk_create(objs)
        rows = [(obj.pk, *row[1:]) for obj, row in zip(objs, rows, strict=True)]
    tasks: list[list[tuple[int, str]]] = [[] for _ in decisions]
    for n, row in zip(owners, rows, strict=True):
        tasks[n].append((row[0], row[3]))
    return tasks


def _ingest_payload(
    s: _Scored, decision: Decision, tasks: list[tuple[int, str]], explanation: str
) -> str:
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
        # The hash of the very text stored as the decision's explanation.
        "explanation_sha256": hashlib.sha256(explanation.encode()).hexdigest(),
        "policy_version": decision.policy_version,
        "routed": decision.routed,
        "reasons": s.route.reasons,
        "status": decision.status,
        "final_outcome": decision.final_outcome or None,
        "tasks": [{"id": task_id, "kind": kind} for task_id, kind in tasks],
    }
    return canonical_json(payload)
