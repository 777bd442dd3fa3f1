"""The reviewer's workspace around the case page: going back to a held case, the seniors' own
queues, the adjudication page, blind mode's form, the task list of seniors and auditors, one's
recent answers, and the per-reviewer page."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from models_registry import services as registry
from reviews import presentation
from reviews.models import Decision, Review, ReviewTask
from reviews.services import (
    decisions_ingest,
    gold_mark,
    review_submit,
    task_claim_next,
    task_escalate,
)
from tests.fixtures import api, item
from tests.reviews.test_queue import CLAIM, routed

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def disagreement(model, service, erin, alice, bob) -> ReviewTask:
    """Two reviewers answered differently: the senior's adjudication, open."""
    (decision,) = routed(model, service, erin, reviewers_required=2)
    first = task_claim_next(reviewer=alice)
    review_submit(task_id=first.pk, reviewer=alice, verdict="agree", rationale="Looks fine.")
    second = task_claim_next(reviewer=bob)
    other = next(label for label in model.labels if label != decision.model_outcome)
    review_submit(
        task_id=second.pk, reviewer=bob, verdict="override", outcome=other,
        reason_code="missing_information", rationale="The pay slips say otherwise.",
    )  # fmt: skip
    return ReviewTask.objects.get(decision=decision, kind="adjudication")


# --- going back to what one holds -----------------------------------------------------------


def test_start_reviewing_goes_back_to_the_oldest_held_case_before_claiming(
    tiny_model, service, erin, alice
):
    routed(tiny_model, service, erin, n=3)
    first = api(alice).post(CLAIM).json()["id"]
    second = api(alice).post(CLAIM).json()["id"]
    client = logged_in(alice)
    response = client.post("/review/next/")
    assert response.url == f"/review/tasks/{first}/"
    assert ReviewTask.objects.filter(assignee=alice, state="claimed").count() == 2  # no third
    page = client.get("/review/").content.decode()
    assert "Resume reviewing (you hold 2 cases)" in page
    held = re.search(r'<table class="data" id="held">.*?</table>', page, re.S).group(0)
    names = [f"Case {ReviewTask.objects.get(pk=pk).decision_id}" for pk in (first, second)]
    assert all(name in held for name in names)
    assert "#" not in held  # one name for one thing: the case, as its page calls it


def test_after_an_answer_the_next_case_is_one_already_held(tiny_model, service, erin, alice):
    routed(tiny_model, service, erin, n=3)
    first = api(alice).post(CLAIM).json()["id"]
    second = api(alice).post(CLAIM).json()["id"]
    response = logged_in(alice).post(f"/review/tasks/{first}/decide/", {"verdict": "agree"})
    assert response.url == f"/review/tasks/{second}/"
    assert ReviewTask.objects.filter(assignee=alice, state="claimed").count() == 1


# --- the seniors' own ways in ------------------------------------------------------------------


def test_a_senior_has_an_adjudicate_queue_with_how_many_wait_and_the_oldest(
    tiny_model, service, erin, alice, bob, carol
):
    adjudication = disagreement(tiny_model, service, erin, alice, bob)
    routed(tiny_model, service, erin, n=2, start=10)  # ordinary high-priority work waits too
    client = logged_in(carol)
    page = client.get("/review/").content.decode()
    section = re.search(r'id="queue-adjudication".*?</section>', page, re.S).group(0)
    assert "<strong>1</strong> waiting for you" in section and "the oldest since" in section
    assert 'id="queue-appeal"' in page
    response = client.post("/review/next/", {"kind": "adjudication"})
    assert response.url == f"/review/tasks/{adjudication.pk}/"
    assert ReviewTask.objects.get(pk=adjudication.pk).assignee == carol


def test_reviewers_have_no_adjudicate_queue(tiny_model, service, erin, alice):
    routed(tiny_model, service, erin)
    client = logged_in(alice)
    assert 'id="queue-adjudication"' not in client.get("/review/").content.decode()
    response = client.post("/review/next/", {"kind": "adjudication"}, follow=True)
    assert "There is no such queue for you." in response.content.decode()
    assert not ReviewTask.objects.filter(assignee=alice).exists()


def test_the_adjudication_page_shows_each_answer_and_decides_by_outcome(
    tiny_model, service, erin, alice, bob, carol
):
    adjudication = disagreement(tiny_model, service, erin, alice, bob)
    client = logged_in(carol)
    client.post("/review/next/", {"kind": "adjudication"})
    page = client.get(f"/review/tasks/{adjudication.pk}/").content.decode()
    answers = re.search(r'id="answers".*?</section>', page, re.S).group(0)
    assert "alice" in answers and "bob" in answers
    assert "Information the model did not have" in answers  # the reason code in words
    assert "The pay slips say otherwise." in answers and "Time spent" in answers
    assert "Decide: approve" in page and "Decide: deny" in page
    assert "Escalate to a senior" not in page and "Agree:" not in page
    decision = adjudication.decision
    other = next(label for label in tiny_model.labels if label != decision.model_outcome)
    refused = client.post(
        f"/review/tasks/{adjudication.pk}/decide/",
        {"adjudicate": "1", "outcome": other, "rationale": "Checked."},
    )
    assert refused.status_code == 400  # against the model needs a reason code
    response = client.post(
        f"/review/tasks/{adjudication.pk}/decide/",
        {"adjudicate": "1", "outcome": other, "reason_code": "missing_information",
         "rationale": "The pay slips are right."},
    )  # fmt: skip
    assert response.status_code == 302
    decision = Decision.objects.get(pk=decision.pk)
    assert (decision.final_outcome, decision.finalized_by) == (other, "adjudicator")
    review = Review.objects.get(task=adjudication)
    assert (review.verdict, review.reviewer) == ("override", carol)


def test_a_senior_on_an_ordinary_case_is_not_offered_escalation(tiny_model, service, erin, carol):
    routed(tiny_model, service, erin)
    task = api(carol).post(CLAIM).json()["id"]
    page = logged_in(carol).get(f"/review/tasks/{task}/").content.decode()
    assert "Escalate to a senior" not in page and 'id="agree"' in page


def test_a_blind_page_asks_for_the_reviewers_own_outcome_and_reasons_only(
    tiny_model, service, erin, alice
):
    routed(tiny_model, service, erin, blind_review=True)
    task = api(alice).post(CLAIM).json()["id"]
    page = logged_in(alice).get(f"/review/tasks/{task}/").content.decode()
    form = re.search(r'<form[^>]*id="blind-form".*?</form>', page, re.S).group(0)
    assert "Your outcome" in form and "Your reasons" in form
    assert "model" not in form.lower()
    help_box = re.search(r'<details id="help">.*?</details>', page, re.S).group(0)
    assert "<kbd>a</kbd>" not in help_box and "agree" not in help_box


def test_the_lease_countdown_is_not_a_live_region(tiny_model, service, erin, alice):
    routed(tiny_model, service, erin)
    task = api(alice).post(CLAIM).json()["id"]
    page = logged_in(alice).get(f"/review/tasks/{task}/").content.decode()
    lease = re.search(r'<div class="lease">.*?</div>', page, re.S).group(0)
    assert 'role="status"' not in lease and "aria-live" not in lease.split("lease-announce")[0]
    assert 'id="lease-announce" class="visually-hidden" aria-live="polite"' in lease


# --- the case page in a reviewer's terms ------------------------------------------------------


def test_a_high_stakes_reason_is_the_condition_in_words(tiny_model, service, erin, alice):
    rule = {"name": "bankrupt", "when": {"field": "bankrupt", "op": "eq", "value": True}}
    registry.policy_update(
        model=tiny_model, changes={"high_stakes": [rule]}, actor=erin, note="test"
    )
    decisions_ingest(items=[item(1, features={"bankrupt": True})], actor=service.user)
    task = api(alice).post(CLAIM).json()["id"]
    page = logged_in(alice).get(f"/review/tasks/{task}/").content.decode()
    assert "High stakes: bankrupt (bankrupt is yes)." in page


def test_contributions_are_read_as_points_of_probability():
    explanation = {
        "method": "linear_exact",
        "towards": "approve",
        "log_odds": 0.0,  # a probability of one half
        "contributions": [{"feature": "income", "value": 120, "contribution": 1.0}],
    }
    (bar,) = presentation.explanation_bars(explanation, [])["bars"]
    assert bar["points_text"] == "+23.1 pts"  # 50% without it, 73.1% with it
    baseline = {**explanation, "method": "replace_with_baseline"}
    baseline["contributions"] = [{"feature": "income", "contribution": -0.05}]
    assert presentation.explanation_bars(baseline, [])["bars"][0]["points_text"] == "-5.0 pts"


def test_a_counterfactual_outside_the_training_data_is_flagged():
    specs = [{"name": "income", "type": "number", "min": 0, "max": 500}]
    counterfactual = {"feature": "income", "from": 20, "to": 400, "outcome": "approve",
                      "alternatives": [{"feature": "income", "from": 20, "to": 90,
                                        "outcome": "approve"}]}  # fmt: skip
    far, near = presentation.counterfactual_lines(counterfactual, specs, {"income": [5, 220]})
    assert far["outside"] and far["seen"] == "5 to 220"
    assert not near["outside"]


# --- the task list of seniors and auditors --------------------------------------------------


def test_seniors_and_auditors_list_find_and_filter_tasks(
    tiny_model, service, erin, alice, carol, dave
):
    decisions = routed(tiny_model, service, erin, n=3)
    api(alice).post(CLAIM)
    for user in (carol, dave):
        client = logged_in(user)
        page = client.get("/review/tasks/").content.decode()
        assert all(f"Case {d.pk}</a>" in page for d in decisions)
        assert "claimed by alice" in page
        found = client.get("/review/tasks/", {"find": decisions[1].external_id}).content.decode()
        assert f"Case {decisions[1].pk}</a>" in found and f"Case {decisions[0].pk}</a>" not in found
        by_id = client.get("/review/tasks/", {"find": str(decisions[2].pk)}).content.decode()
        assert f"Case {decisions[2].pk}</a>" in by_id and "1 task," in by_id
        waiting = client.get("/review/tasks/", {"state": "claimed"}).content.decode()
        assert "1 task," in waiting
        assert "0 tasks" in client.get("/review/tasks/", {"reason": "high_stakes"}).content.decode()
    assert logged_in(alice).get("/review/tasks/").status_code == 403


def test_a_bad_task_filter_is_an_error_beside_its_field_and_lists_nothing(
    tiny_model, service, erin, carol
):
    routed(tiny_model, service, erin)
    response = logged_in(carol).get("/review/tasks/", {"kind": "lunch", "model": "tiny"})
    page = response.content.decode()
    assert response.status_code == 400
    assert (
        'id="id_kind_error"' in page
        and 'aria-describedby="id_kind_helptext id_kind_error"' not in page
    )
    assert re.search(r'<select name="kind"[^>]*aria-describedby="id_kind_error"', page)
    assert 'id="tasks"' not in page  # no list, rather than the list unfiltered


def test_a_known_answer_copy_poses_in_the_task_list_as_the_task_it_looks_like(
    tiny_model, service, erin, carol, dave
):
    """To a senior who may be served it, the copy is listed like any task, with the reasons it
    poses with, and a filter on those reasons finds it; only an auditor who reviews nothing
    sees it marked, with the decision's own (empty) reasons."""
    decision = decisions_ingest(items=[item(1)], actor=service.user)[0].decision
    assert decision.status == "final"
    gold_mark(decision=decision, outcome="approve", actor=erin, copies=1)
    (copy,) = ReviewTask.objects.filter(decision=decision, is_gold=True)
    row = rf'<a href="/review/tasks/{copy.pk}/">Case {decision.pk}</a>'
    senior = logged_in(carol)
    page = senior.get("/review/tasks/").content.decode()
    assert re.search(row, page) and "known answer" not in page
    assert re.search(row, senior.get("/review/tasks/", {"reason": "random_audit"}).content.decode())
    auditor = logged_in(dave)
    assert "known answer" in auditor.get("/review/tasks/").content.decode()
    assert not re.search(
        row, auditor.get("/review/tasks/", {"reason": "random_audit"}).content.decode()
    )


# --- one's own answers, and one reviewer's page ---------------------------------------------


def test_every_reviewer_sees_their_recent_answers(tiny_model, service, erin, alice):
    (decision,) = routed(tiny_model, service, erin)
    task = task_claim_next(reviewer=alice)
    review_submit(task_id=task.pk, reviewer=alice, verdict="agree")
    page = logged_in(alice).get("/review/").content.decode()
    recent = re.search(r'<table class="data" id="recent">.*?</table>', page, re.S).group(0)
    assert f"Case {decision.pk}</a>" in recent and decision.model_outcome in recent
    assert "<form" not in recent  # read-only


def test_the_reviewer_page_shows_the_trend_and_kappa_with_its_count(
    tiny_model, service, erin, alice, bob, carol
):
    disagreement(tiny_model, service, erin, alice, bob)
    client = logged_in(carol)
    page = client.get("/review/stats/alice/").content.decode()
    assert 'id="weeks"' in page and "<svg" in page
    assert "too few double-reviewed decisions to say (n=1" in page
    stats = client.get("/review/stats/").content.decode()
    assert "too few (n=1)" in stats and 'href="/review/stats/alice/?days=90"' in stats
    assert client.get("/review/stats/nobody/").status_code == 404
    assert client.get("/review/stats/alice/", {"days": "soon"}).status_code == 400
    assert logged_in(alice).get("/review/stats/alice/").status_code == 403


def test_an_escalated_case_reaches_a_senior_with_the_note(tiny_model, service, erin, alice, carol):
    routed(tiny_model, service, erin)
    task = task_claim_next(reviewer=alice)
    adjudication = task_escalate(task_id=task.pk, reviewer=alice, note="Documents disagree.")
    client = logged_in(carol)
    client.post("/review/next/", {"kind": "adjudication"})
    page = client.get(f"/review/tasks/{adjudication.pk}/").content.decode()
    assert "Escalated by alice: Documents disagree." in page
    assert "No answer yet" in page
