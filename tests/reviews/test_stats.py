from __future__ import annotations

import re

import factory
import pytest
from django.test import Client, override_settings
from django.utils import timezone
from sklearn.metrics import cohen_kappa_score

from reviews.models import Review
from reviews.stats import cohen_kappa, reviewer_stats
from tests.factories import DecisionFactory, MLModelFactory, ReviewFactory
from tests.fixtures import make_user

PAIRS = [("a", "a"), ("a", "b"), ("b", "b"), ("b", "b"), ("a", "a"), ("c", "a"), ("c", "c")]


def test_kappa_matches_scikit_learn():
    first, second = zip(*PAIRS, strict=True)
    assert cohen_kappa(PAIRS) == pytest.approx(cohen_kappa_score(first, second))


def test_kappa_is_undefined_without_pairs_or_variety():
    assert cohen_kappa([]) is None
    assert cohen_kappa([("a", "a"), ("a", "a")]) is None


def _reviews(decisions, reviewer, outcomes, seconds, kind="initial"):
    for decision, outcome in zip(decisions, outcomes, strict=True):
        ReviewFactory(decision=decision, reviewer=reviewer, outcome=outcome, kind=kind,
                      seconds_spent=seconds)  # fmt: skip


def _decisions(n: int) -> list:
    """n decisions of one model, the model saying approve, deny, deny, approve, deny, deny..."""
    model = MLModelFactory()
    outcomes = factory.Iterator(["approve", "deny", "deny"])
    return DecisionFactory.create_batch(n, model=model, model_outcome=outcomes)


@pytest.mark.django_db
@override_settings(AUTOMATION_BIAS_MIN_REVIEWS=5)
def test_stats_per_reviewer_with_kappa_and_the_automation_bias_flag():
    decisions = _decisions(10)
    model_says = [d.model_outcome for d in decisions]
    flipped = ["deny" if o == "approve" else "approve" for o in model_says]
    fast, slow = make_user("fast", "reviewer"), make_user("slow", "reviewer")
    _reviews(decisions, fast, model_says, seconds=4)  # always agrees, quickly
    slow_outcomes = model_says[:6] + flipped[6:]
    _reviews(decisions, slow, slow_outcomes, seconds=60, kind="second_opinion")
    rows = {s.reviewer: s for s in reviewer_stats()}
    assert rows["fast"].reviews == 10 and rows["fast"].override_rate == 0
    assert rows["slow"].override_rate == pytest.approx(0.4)
    assert rows["fast"].median_seconds == 4 and rows["slow"].median_seconds == 60
    expected = cohen_kappa_score(model_says, slow_outcomes)
    assert rows["fast"].kappa == pytest.approx(expected)
    assert rows["fast"].automation_bias is True and rows["slow"].automation_bias is False
    client = Client()
    client.force_login(make_user("sen", "senior_reviewer"))
    page = client.get("/review/stats/").content.decode()
    assert "automation bias?" in page and "fast" in page


def _stats(user, query: str = "") -> tuple[int, dict]:
    from tests.fixtures import api

    response = api(user).get(f"/api/v1/review-stats/{query}")
    body = response.json()
    rows = {row["reviewer"]: row for row in body} if response.status_code == 200 else body
    return response.status_code, rows


@pytest.mark.django_db
def test_it_counts_the_last_ninety_days_unless_told_otherwise(carol):
    from datetime import timedelta

    alice = make_user("alice", "reviewer")
    decisions = _decisions(3)
    _reviews(decisions, alice, [d.model_outcome for d in decisions], seconds=10)
    old = Review.objects.filter(decision=decisions[0])
    old.update(created_at=timezone.now() - timedelta(days=100))
    assert _stats(carol)[1]["alice"]["reviews"] == 2
    assert _stats(carol, "?days=365")[1]["alice"]["reviews"] == 3
    assert _stats(carol, "?days=7")[1]["alice"]["reviews"] == 2
    client = Client()
    client.force_login(carol)
    page = client.get("/review/stats/?days=365").content.decode()
    assert 'value="365"' in page
    assert re.search(r"<td><a [^>]*>alice</a></td>\s*<td class=\"num\">3</td>", page)


@pytest.mark.django_db
@pytest.mark.parametrize("days", ["0", "-3", "abc", "1.5", "3651", "²", "9" * 5000])
def test_it_refuses_a_window_that_is_not_a_whole_number_of_days(days, carol):
    status, body = _stats(carol, f"?days={days}")
    assert status == 400 and list(body["error"]["fields"]) == ["days"]
    client = Client()
    client.force_login(carol)
    response = client.get("/review/stats/", {"days": days})
    assert response.status_code == 400 and "must be a whole number of days" in (
        response.content.decode()
    )


@pytest.mark.django_db
def test_gold_answers_count_only_towards_gold_accuracy(carol):
    alice = make_user("alice", "reviewer")
    decisions = _decisions(6)
    _reviews(decisions[:3], alice, [d.model_outcome for d in decisions[:3]], seconds=60)
    _reviews(decisions[3:], alice, [d.model_outcome for d in decisions[3:]], seconds=2)
    Review.objects.filter(decision__in=decisions[3:]).update(is_gold=True, gold_correct=True)
    row = _stats(carol)[1]["alice"]
    assert (row["reviews"], row["median_seconds"]) == (3, 60)
    assert (row["gold_reviews"], row["gold_accuracy"]) == (3, 1.0)
