"""What if the routing policy changed: the latest decisions of a model, routed again under the
current policy and under a draft, with the same evaluation routing uses at intake
(reviews.routing.evaluate, declarative rules, never `eval`). Nothing is stored or changed.

The random audit's draw is fixed by each decision's identity, so both policies sample the
same decisions; active learning, which spends a daily budget, is replayed day by day on the
decisions of each day in the window (the window's first day may be partial)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from models_registry.models import MLModel, RoutingPolicy
from models_registry.selectors import current_policy
from reviews import routing
from reviews.models import REASONS, Decision, ProtectedAttribute

REASON_WORDS = {
    "review_all": "Review-all (breaker)",
    "low_confidence": "Low confidence",
    "high_stakes": "High stakes",
    "random_audit": "Random audit",
    "active_learning": "Active learning",
}
FIELDS = (
    "id",
    "external_id",
    "features",
    "model_outcome",
    "confidence",
    "margin",
    "received_at",
)


@dataclass
class _Row:
    id: int
    current: list[str]
    draft: list[str]


def policy_what_if(
    *, model: MLModel, draft: RoutingPolicy, last: int, by_group: bool = False
) -> dict:
    """How many of the model's `last` latest decisions each policy would have sent to a
    person, by reason; how many the draft adds and drops; by protected group when asked
    (auditors only: the caller decides)."""
    current = current_policy(model)
    decisions = list(
        Decision.objects.filter(model=model).order_by("-received_at", "-id").values(*FIELDS)[:last]
    )
    rows = _route_all(model, current, draft, decisions)
    result = {
        "n": len(rows),
        "since": decisions[-1]["received_at"] if decisions else None,
        "until": decisions[0]["received_at"] if decisions else None,
        "current_version": current.version,
        "reasons": _by_reason(rows),
        "routed": _routed(rows),
        "added": sum(1 for row in rows if row.draft and not row.current),
        "dropped": sum(1 for row in rows if row.current and not row.draft),
        "groups": _by_group(rows) if by_group else [],
    }
    return result


def _route_all(
    model: MLModel, current: RoutingPolicy, draft: RoutingPolicy, decisions: list[dict]
) -> list[_Row]:
    routes = {"current": [], "draft": []}
    for name, policy in (("current", current), ("draft", draft)):
        for d in decisions:
            routes[name].append(
                routing.evaluate(
                    policy,
                    model_name=model.name,
                    external_id=d["external_id"],
                    outcome=d["model_outcome"],
                    confidence=d["confidence"],
                    margin=d["margin"],
                    features=d["features"] if isinstance(d["features"], dict) else {},
                )
            )
        _replay_active_learning(policy, routes[name], [d["received_at"].date() for d in decisions])
    return [
        _Row(d["id"], list(c.reasons), list(f.reasons))
        for d, c, f in zip(decisions, routes["current"], routes["draft"], strict=True)
    ]


def _replay_active_learning(policy: RoutingPolicy, routes: list, days: list) -> None:
    """Each day's budget spent on that day's most uncertain eligible decisions."""
    by_day = defaultdict(list)
    for route, day in zip(routes, days, strict=True):
        by_day[day].append(route)
    for day_routes in by_day.values():
        routing.apply_active_learning(
            policy, day_routes, granted=min(policy.active_learning_budget, len(day_routes))
        )


def _by_reason(rows: list[_Row]) -> list[dict]:
    current = Counter(reason for row in rows for reason in row.current)
    draft = Counter(reason for row in rows for reason in row.draft)
    return [
        {
            "reason": reason,
            "label": REASON_WORDS[reason],
            "current": current[reason],
            "draft": draft[reason],
            "delta": draft[reason] - current[reason],
        }
        for reason in REASONS
        if current[reason] or draft[reason]
    ]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _routed(rows: list[_Row]) -> dict:
    current = sum(1 for row in rows if row.current)
    draft = sum(1 for row in rows if row.draft)
    return {
        "current": current,
        "draft": draft,
        "delta": draft - current,
        "current_share": _share(current, len(rows)),
        "draft_share": _share(draft, len(rows)),
    }


def _by_group(rows: list[_Row]) -> list[dict]:
    """Routed shares per protected group, under each policy."""
    ids = [row.id for row in rows]
    members = defaultdict(dict)
    for decision_id, name, value in ProtectedAttribute.objects.filter(
        decision_id__in=ids
    ).values_list("decision_id", "name", "value"):
        members[name][decision_id] = value
    tables = []
    for attribute in sorted(members):
        counts = defaultdict(lambda: {"n": 0, "current": 0, "draft": 0})
        for row in rows:
            value = members[attribute].get(row.id)
            if value is None:
                continue
            cell = counts[value]
            cell["n"] += 1
            cell["current"] += bool(row.current)
            cell["draft"] += bool(row.draft)
        tables.append(
            {
                "attribute": attribute,
                "rows": [
                    {
                        "value": value,
                        **cell,
                        "current_share": _share(cell["current"], cell["n"]),
                        "draft_share": _share(cell["draft"], cell["n"]),
                    }
                    for value, cell in sorted(counts.items())
                ],
            }
        )
    return tables
