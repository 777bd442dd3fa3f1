"""Reviewer statistics: volume, override rate, speed, agreement, accuracy, automation bias."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from core.errors import invalid
from reviews.models import Review, ReviewTask

DOUBLE = (ReviewTask.Kind.INITIAL, ReviewTask.Kind.SECOND_OPINION)
# How the demo's simulated answers begin (oversight.demo_reviews writes them): the statistics
# pages say when some of what they count was simulated.
SIMULATED_MARK = "Simulated review (demo):"
DEFAULT_DAYS, MAX_DAYS = 90, 3650
DAYS_HELP = f"reviews of the last so many days (default {DEFAULT_DAYS}, at most {MAX_DAYS})"


def stats_since(days: str | None) -> datetime:
    """The start of the window of `?days=`: a whole number of days, the last 90 by default."""
    if days in (None, ""):
        return timezone.now() - timedelta(days=DEFAULT_DAYS)
    if not (days.isascii() and days.isdigit() and len(days) <= 4 and 1 <= int(days) <= MAX_DAYS):
        raise invalid({"days": [f"must be a whole number of days from 1 to {MAX_DAYS}"]})
    return timezone.now() - timedelta(days=int(days))


def cohen_kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters over paired labels; None when undefined (no pairs, or both
    raters always gave one and the same label, so chance agreement is certain)."""
    n = len(pairs)
    if n == 0:
        return None
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    observed = sum(a == b for a, b in pairs) / n
    expected = sum(first[label] * second[label] for label in first) / n**2
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


@dataclass
class ReviewerStats:
    reviewer: str
    reviews: int = 0
    overrides: int = 0
    seconds: list[float] = field(default_factory=list)
    agree_pairs: list[tuple[str, str]] = field(default_factory=list)
    gold_reviews: int = 0
    gold_correct: int = 0
    automation_bias: bool = False

    @property
    def override_rate(self) -> float | None:
        return self.overrides / self.reviews if self.reviews else None

    @property
    def agree_rate(self) -> float | None:
        return 1 - self.override_rate if self.reviews else None

    @property
    def median_seconds(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    @property
    def kappa(self) -> float | None:
        return cohen_kappa(self.agree_pairs)

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_reviews if self.gold_reviews else None

    @property
    def double_reviewed(self) -> int:
        return len(self.agree_pairs)

    @property
    def kappa_too_few(self) -> bool:
        """Kappa over fewer double-reviewed decisions than KAPPA_MIN_PAIRS says little: the
        page shows the count and "too few", not a number to be read as a fact."""
        return self.double_reviewed < settings.KAPPA_MIN_PAIRS

    def as_dict(self) -> dict:
        return {
            "reviewer": self.reviewer,
            "reviews": self.reviews,
            "override_rate": self.override_rate,
            "median_seconds": self.median_seconds,
            "double_reviewed": len(self.agree_pairs),
            "kappa": self.kappa,
            "gold_reviews": self.gold_reviews,
            "gold_accuracy": self.gold_accuracy,
            "automation_bias": self.automation_bias,
        }


def reviewer_stats(
    *, since: datetime | None = None, until: datetime | None = None
) -> list[ReviewerStats]:
    reviews = Review.objects.all()
    if since:
        reviews = reviews.filter(created_at__gte=since)
    if until:
        reviews = reviews.filter(created_at__lt=until)
    rows = list(
        reviews.values_list(
            "reviewer__username", "decision_id", "kind", "outcome", "agrees_with_model",
            "seconds_spent", "is_gold", "gold_correct",
        )
    )  # fmt: skip
    by_reviewer: dict[str, ReviewerStats] = {}
    double: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for name, decision_id, kind, outcome, agrees, seconds, is_gold, correct in rows:
        stats = by_reviewer.setdefault(name, ReviewerStats(name))
        if is_gold:  # gold answers feed gold accuracy only: not the count, speed or agreement
            stats.gold_reviews += 1
            stats.gold_correct += bool(correct)
            continue
        stats.reviews += 1
        stats.seconds.append(seconds)
        stats.overrides += not agrees
        if kind in DOUBLE:
            double[decision_id].append((name, outcome))
    _pair_up(double, by_reviewer)
    result = sorted(by_reviewer.values(), key=lambda s: s.reviewer)
    _flag_automation_bias(result)
    return result


def _pair_up(
    double: dict[int, list[tuple[str, str]]], by_reviewer: dict[str, ReviewerStats]
) -> None:
    for answers in double.values():
        if len(answers) != 2:
            continue
        (a, outcome_a), (b, outcome_b) = answers
        by_reviewer[a].agree_pairs.append((outcome_a, outcome_b))
        by_reviewer[b].agree_pairs.append((outcome_b, outcome_a))


def _flag_automation_bias(result: list[ReviewerStats]) -> None:
    """Agrees with the model nearly always *and* is much faster than the other reviewers."""
    for stats in result:
        peers = [s for other in result if other is not stats for s in other.seconds]
        if stats.reviews < settings.AUTOMATION_BIAS_MIN_REVIEWS or not peers:
            continue
        fast = stats.median_seconds <= settings.AUTOMATION_BIAS_SPEED_RATIO * statistics.median(
            peers
        )
        stats.automation_bias = stats.agree_rate >= settings.AUTOMATION_BIAS_AGREE_RATE and fast


# --- one reviewer over time ---------------------------------------------------------------------


def reviewer_trend(*, reviewer: str, since: datetime) -> list[dict]:
    """One reviewer's weeks (Monday to Sunday, UTC): reviews, override rate, median seconds,
    gold items and gold accuracy; gold answers count towards gold accuracy only."""
    rows = Review.objects.filter(reviewer__username=reviewer, created_at__gte=since).values_list(
        "created_at", "agrees_with_model", "seconds_spent", "is_gold", "gold_correct"
    )
    weeks: dict = {}
    for created_at, agrees, seconds, is_gold, correct in rows:
        monday = (created_at - timedelta(days=created_at.weekday())).date()
        week = weeks.setdefault(monday, ReviewerStats(reviewer))
        if is_gold:
            week.gold_reviews += 1
            week.gold_correct += bool(correct)
            continue
        week.reviews += 1
        week.overrides += not agrees
        week.seconds.append(seconds)
    return [
        {
            "week": monday,
            "reviews": week.reviews,
            "override_rate": week.override_rate,
            "median_seconds": week.median_seconds,
            "gold_reviews": week.gold_reviews,
            "gold_accuracy": week.gold_accuracy,
        }
        for monday, week in sorted(weeks.items())
    ]


def simulated_reviews(*, since: datetime, reviewer: str | None = None) -> bool:
    reviews = Review.objects.filter(created_at__gte=since, rationale__startswith=SIMULATED_MARK)
    if reviewer:
        reviews = reviews.filter(reviewer__username=reviewer)
    return reviews.exists()
