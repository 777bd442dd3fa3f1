"""Routing: which decisions a person must look at, and why.

Every condition of the policy is evaluated and recorded, fired or not, so that "why was this
sent to a person" (and "why was this one not") can always be answered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from models_registry import rules
from models_registry.models import RoutingPolicy

# Higher first in the queue. High-stakes decisions before merely uncertain ones. A task's
# priority comes from the reasons its reviewer is shown (reviews.selectors.task_priority): a
# blind task's from the reasons blind review leaves, a known-answer copy's from those it poses
# with, so that the queue's order tells nobody more than the routing they see.
PRIORITY = {
    "high_stakes": 100,
    "low_confidence": 50,
    "random_audit": 20,
    "review_all": 10,
    "active_learning": 10,
}


@dataclass
class Route:
    reasons: list[str]
    conditions: list[dict]
    margin: float | None
    al_eligible: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def routed(self) -> bool:
        return bool(self.reasons)

    @property
    def priority(self) -> int:
        return priority_of(self.reasons)

    def as_dict(self, policy_version: int) -> dict:
        return {
            "policy_version": policy_version,
            "reasons": self.reasons,
            "conditions": self.conditions,
        }


def priority_of(reasons: Iterable[str]) -> int:
    return max((PRIORITY.get(reason, 0) for reason in reasons), default=0)


def tags(reasons: Iterable[str]) -> str:
    """Reasons as stored for filtering on any database: ",low_confidence,high_stakes,"."""
    reasons = list(reasons)
    return "," + ",".join(reasons) + "," if reasons else ""


def audit_draw(model_name: str, external_id: str) -> float:
    """A number in [0, 1) fixed by the decision's identity: the same input, the same answer,
    and independent of the model's output, so sampled decisions are unbiased."""
    digest = hashlib.sha256(f"{model_name}\x00{external_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def evaluate(
    policy: RoutingPolicy,
    *,
    model_name: str,
    external_id: str,
    outcome: str,
    confidence: float,
    margin: float | None,
    features: dict[str, Any],
) -> Route:
    """Every condition except active learning, which needs the day's budget (see below)."""
    conditions, reasons = [], []

    def note(name: str, fired: bool, **details: Any) -> None:
        conditions.append({"name": name, "fired": fired, **details})
        if fired:
            reasons.append(name)

    note("review_all", policy.review_all)
    note(
        "low_confidence",
        confidence < policy.confidence_threshold,
        confidence=confidence,
        threshold=policy.confidence_threshold,
    )
    context = {**features, "outcome": outcome, "confidence": confidence}
    fired_rules = []
    for rule in policy.high_stakes:
        trace: list[dict] = []
        fired = rules.evaluate(rule["when"], context, trace)
        fired_rules.append({"name": rule["name"], "fired": fired, "conditions": trace})
    note("high_stakes", any(r["fired"] for r in fired_rules), rules=fired_rules)
    draw = audit_draw(model_name, external_id)
    note(
        "random_audit",
        draw < policy.random_audit_rate / 100,
        draw=round(draw, 6),
        rate=policy.random_audit_rate / 100,
    )
    eligible = (
        not reasons
        and policy.active_learning_budget > 0
        and margin is not None
        and margin <= policy.active_learning_max_margin
    )
    return Route(reasons=reasons, conditions=conditions, margin=margin, al_eligible=eligible)


def active_learning_wanted(routes: list[Route]) -> int:
    """How many of these routes could use today's active-learning budget."""
    return sum(route.al_eligible for route in routes)


def apply_active_learning(policy: RoutingPolicy, routes: list[Route], *, granted: int) -> None:
    """Spend `granted` of today's budget (reserved by the ingest service) on the most uncertain
    eligible decisions (smallest margin first), and record the outcome of the active-learning
    condition on every route."""
    eligible = sorted((r for r in routes if r.al_eligible), key=lambda r: r.margin)
    chosen = {id(route) for route in eligible[:granted]}
    for route in routes:
        fired = id(route) in chosen
        detail = _al_detail(policy, route, fired)
        route.conditions.append(
            {
                "name": "active_learning",
                "fired": fired,
                "margin": route.margin,
                "max_margin": policy.active_learning_max_margin,
                "budget_per_day": policy.active_learning_budget,
                "detail": detail,
            }
        )
        if fired:
            route.reasons.append("active_learning")


def _al_detail(policy: RoutingPolicy, route: Route, fired: bool) -> str:
    if fired:
        return "selected: among the most uncertain of today's budget"
    if policy.active_learning_budget == 0:
        return "no active-learning budget"
    if route.reasons:
        return "already routed for another reason"
    if route.margin is None or route.margin > policy.active_learning_max_margin:
        return "margin above the active-learning maximum"
    return "today's budget is spent"
