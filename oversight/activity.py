"""A model's activity for its owner (and auditors): how many decisions arrive, how many go to a
person and why, how often people override the model, and how old the waiting work is. Counts
of the model's own decisions only, read with a few GROUP BY queries; no decision is shown."""

from __future__ import annotations

import statistics
from datetime import timedelta

from django.db.models import Count, F, Min, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from models_registry.models import MLModel
from reviews.models import REASONS, Decision, ReviewTask
from reviews.whatif import REASON_WORDS

DEFAULT_DAYS, MAX_DAYS = 30, 365
PEOPLE = (Decision.FinalizedBy.REVIEWER, Decision.FinalizedBy.ADJUDICATOR)


def model_activity(model: MLModel, *, days: int = DEFAULT_DAYS) -> dict:
    now = timezone.now()
    since = now - timedelta(days=days)
    decisions = Decision.objects.filter(model=model, received_at__gte=since)
    total = decisions.count()
    routed = decisions.filter(routed=True).count()
    return {
        "days": days,
        "since": since,
        "total": total,
        "routed": routed,
        "routed_share": routed / total if total else None,
        "per_day": _per_day(decisions),
        "reasons": _reasons(decisions, total),
        "overrides": _overrides(decisions),
        "queue": _queue(model, now),
    }


def _per_day(decisions) -> list[dict]:
    rows = (
        decisions.annotate(day=TruncDate("received_at"))
        .values("day")
        .annotate(n=Count("id"), routed=Count("id", filter=Q(routed=True)))
        .order_by("day")
    )
    return list(rows)


def _reasons(decisions, total: int) -> list[dict]:
    counts = decisions.aggregate(
        **{reason: Count("id", filter=Q(reason_tags__contains=f",{reason},")) for reason in REASONS}
    )
    return [
        {
            "reason": reason,
            "label": REASON_WORDS[reason],
            "n": counts[reason],
            "share": counts[reason] / total if total else None,
        }
        for reason in REASONS
    ]


def _overrides(decisions) -> dict:
    """Decisions settled by people (a review, or an adjudication): how often the outcome
    differs from the model's. Appeals are on the appeals page and in the group reports."""
    settled = decisions.filter(finalized_by__in=PEOPLE)
    counts = settled.aggregate(
        n=Count("id"),
        overridden=Count("id", filter=~Q(final_outcome=F("model_outcome"))),
    )
    n = counts["n"]
    return {**counts, "rate": counts["overridden"] / n if n else None}


def _queue(model: MLModel, now) -> dict:
    """The model's waiting work: open and claimed tasks, the oldest, the median age, overdue."""
    live = ReviewTask.objects.filter(
        model=model, state__in=[ReviewTask.State.OPEN, ReviewTask.State.CLAIMED]
    )
    by_state = dict(live.values_list("state").annotate(n=Count("id")))
    created = list(live.values_list("created_at", flat=True)[:5000])
    ages = [(now - moment).total_seconds() / 3600 for moment in created]
    return {
        "open": by_state.get(ReviewTask.State.OPEN, 0),
        "claimed": by_state.get(ReviewTask.State.CLAIMED, 0),
        "oldest": live.aggregate(oldest=Min("created_at"))["oldest"],
        "median_age_hours": statistics.median(ages) if ages else None,
        "overdue": live.filter(due_at__lt=now).count(),
    }
