"""The demo's group report has real numbers: simulated reviewers whose override behaviour
differs by group, worked through the review services, and a note that says so."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.test import Client

from audit.models import AuditEvent
from models_registry.models import MLModel
from oversight import demo_reviews
from oversight.report_filters import ReportFilters
from oversight.reports import override_report
from reviews.models import Review, ReviewTask

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(capsys):
    call_command("load_demo")
    capsys.readouterr()
    return MLModel.objects.get(name="mortgage-approval")


def test_simulated_reviewers_work_the_queue_through_the_services(demo):
    reviews = Review.objects.filter(decision__model=demo)
    assert reviews.count() > 80
    assert set(reviews.values_list("reviewer__username", flat=True)) == {"alice", "bob", "carol"}
    assert all(r.startswith(demo_reviews.MARK) for r in reviews.values_list("rationale", flat=True))
    assert reviews.filter(agrees_with_model=False).exists()
    assert reviews.filter(kind="adjudication").exists()  # carol settled the escalations
    assert AuditEvent.objects.filter(action="review.submitted").count() == reviews.count()
    assert AuditEvent.objects.filter(action="task.escalated").exists()
    # Some work is left in the queue for whoever tries the demo.
    assert ReviewTask.objects.filter(model=demo, state="open").exists()


def test_the_demo_report_finds_a_gap_between_groups(demo):
    report = override_report(ReportFilters(model=demo, attributes=["race", "sex"]), full=True)
    race = report["tables"][0]
    shown = [g for g in race["groups"] if not g["suppressed"]]
    assert len(shown) >= 2 and all(g["reviewed"] >= 10 for g in shown)
    rates = [g["override_rate"] for g in shown]
    assert max(rates) - min(rates) > 0.1
    assert race["test"]["p_holm"] is not None
    assert race["selection"]["final"]["ratio"] is not None


def test_loading_the_demo_again_simulates_nothing_more(demo, capsys):
    before = Review.objects.count()
    call_command("load_demo")
    assert Review.objects.count() == before
    assert demo_reviews.simulate(demo) == 0


def test_the_report_page_says_the_demo_reviews_are_simulated(demo):
    client = Client()
    assert client.login(username="dave", password="dave-audits")
    page = client.get("/oversight/models/mortgage-approval/").content.decode()
    assert "Demo reviews are simulated" in page
    assert "is the unbiased estimate" in page


def test_the_demo_has_gold_checks_double_reviews_disagreements_and_work_left(demo):
    from core.roles import SENIOR_REVIEWER
    from reviews.queues import senior_queues
    from reviews.stats import reviewer_stats
    from tests.fixtures import make_user

    reviews = Review.objects.filter(decision__model=demo)
    gold = reviews.filter(is_gold=True)
    assert gold.count() >= 8 and set(gold.values_list("reviewer__username", flat=True)) == {
        "alice",
        "bob",
    }
    assert gold.filter(gold_correct=True).exists()
    assert reviews.filter(kind="second_opinion").count() >= 10
    opened = [json.loads(p) for p in AuditEvent.objects.filter(action="task.opened").values_list(
        "payload", flat=True)]  # fmt: skip
    assert any(p.get("reason") == "disagreement" for p in opened)
    stats = {row.reviewer: row for row in reviewer_stats()}
    assert not stats["alice"].kappa_too_few and stats["alice"].kappa is not None
    assert stats["alice"].gold_reviews >= 4
    # Work is left for whoever tries it: reviews, and adjudications for a senior.
    assert ReviewTask.objects.filter(model=demo, state="open", kind="adjudication").exists()
    newcomer = make_user("nina", SENIOR_REVIEWER)
    adjudicate = next(q for q in senior_queues(newcomer) if q["kind"] == "adjudication")
    assert adjudicate["waiting"] >= 1 and adjudicate["oldest"] is not None
    assert demo.policies.get(version=2).reviewers_required == 2  # the week of double review
    assert demo.policies.order_by("-version").first().reviewers_required == 1


def test_the_statistics_pages_say_the_demo_reviews_are_simulated(demo):
    client = Client()
    assert client.login(username="carol", password="carol-senior")
    for url in ("/review/stats/", "/review/stats/alice/"):
        assert 'id="simulated"' in client.get(url).content.decode(), url
