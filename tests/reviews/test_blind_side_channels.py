"""What a viewer may not see of a decision cannot be recovered from filters, counts, ordering or
priority either (issue 13): not the model's answer under blind review (a high-stakes rule on the
outcome that fired), and not that a task is a known-answer check (a gold copy).

Carol (senior) may be given any task, so she is blind to every decision awaiting a blind review
she has no part in, and is shown a gold item she may be served as what its copies pose as. Dave
audits and reviews nothing: he sees it all as it is."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.test import Client

from models_registry import services as registry
from oversight.report_filters import report_filters
from reviews import selectors
from reviews.models import Decision, ReviewTask
from reviews.services import decisions_ingest, gold_mark, task_claim_next
from tests.fixtures import api, item, make_user
from tests.reviews.test_queue import CLAIM, submit

pytestmark = pytest.mark.django_db

DENIALS = [{"name": "denials", "when": {"field": "outcome", "op": "eq", "value": "deny"}}]
BIG_INCOME = [{"name": "big_income", "when": {"field": "income", "op": "gt", "value": 150}}]
LIST = "/api/v1/decisions/"


def policy(model, erin, **changes) -> None:
    registry.policy_update(model=model, changes=changes, actor=erin, note="test")


def sent(service, *outcomes: str, start: int = 1, **features) -> list[Decision]:
    """Client-scored decisions with these outcomes, in this order."""
    items = [
        item(start + n, outcome=outcome, confidence=0.99, features=features)
        for n, outcome in enumerate(outcomes)
    ]
    return [x.decision for x in decisions_ingest(items=items, actor=service.user)]


def ids(user, **query) -> set[int]:
    response = api(user).get(LIST, {"model": "tiny", **query})
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.fixture
def blind_denials(tiny_model, service, erin):
    """Every decision is reviewed blind; a rule on the model's answer marks denials high-stakes."""
    policy(tiny_model, erin, review_all=True, blind_review=True, high_stakes=DENIALS)
    return sent(service, "approve", "deny", "approve", "deny")


# --- filters ------------------------------------------------------------------------------------


def test_a_reason_filter_does_not_pick_out_the_decisions_whose_rule_on_the_answer_fired(
    blind_denials, carol, dave
):
    approvals, denials = blind_denials[0::2], blind_denials[1::2]
    assert all("high_stakes" in d.reasons for d in denials)
    assert ids(carol, reason="high_stakes") == set()
    assert ids(carol, reason="review_all") == {d.pk for d in blind_denials}
    assert ids(dave, reason="high_stakes") == {d.pk for d in denials}
    assert not {d.pk for d in approvals} & ids(dave, reason="high_stakes")


def test_a_reason_the_blind_viewer_is_shown_is_found_by_its_filter(
    tiny_model, service, erin, carol
):
    rules = DENIALS + BIG_INCOME
    policy(tiny_model, erin, review_all=True, blind_review=True, high_stakes=rules)
    (rich,) = sent(service, "deny", income=180.0)
    (poor,) = sent(service, "deny", start=2, income=20.0)
    assert ids(carol, reason="high_stakes") == {rich.pk}
    shown = api(carol).get(f"{LIST}{rich.pk}/").json()["routing"]
    assert shown == {"reasons": ["review_all", "high_stakes"], "high_stakes_rules": ["big_income"]}
    assert "high_stakes" not in api(carol).get(f"{LIST}{poor.pk}/").json()["routing"]["reasons"]


def test_once_she_has_answered_the_filter_sees_what_she_sees(blind_denials, carol):
    task = api(carol).post(CLAIM).json()
    decision = Decision.objects.get(pk=task["decision"]["id"])
    assert submit(carol, task["id"], outcome="approve", rationale="Fine.").status_code == 201
    expected = {decision.pk} if "high_stakes" in decision.reasons else set()
    assert ids(carol, reason="high_stakes") == expected


def test_without_blind_review_a_senior_filters_on_every_reason(tiny_model, service, erin, carol):
    policy(tiny_model, erin, review_all=True, blind_review=False, high_stakes=DENIALS)
    decisions = sent(service, "approve", "deny")
    assert ids(carol, reason="high_stakes") == {decisions[1].pk}


FILTERS = [
    {"reason": reason}
    for reason in ("review_all", "low_confidence", "high_stakes", "random_audit", "active_learning")
] + [
    {"status": "final"},
    {"status": "pending_review"},
    {"routed": "true"},
    {"routed": "false"},
    {"status": "final", "routed": "false"},
    {"status": "pending_review", "reason": "random_audit"},
]


def _matches(row: dict, query: dict) -> bool:
    reasons = row["routing"].get("reasons", [])
    return (
        ("reason" not in query or query["reason"] in reasons)
        and ("status" not in query or row["status"] == query["status"])
        and ("routed" not in query or row["routed"] == (query["routed"] == "true"))
    )


@pytest.mark.parametrize("who", ["carol", "dave", "erin", "scorer"])
def test_every_filter_returns_exactly_the_rows_whose_shown_values_match(
    tiny_model, service, erin, carol, dave, who
):
    """Blind and open decisions, answer rules that fired and did not, a gold item posing as a
    sample: whatever the viewer, a filter returns the decisions whose values as shown to them
    match, no more and no fewer."""
    (gold,) = sent(service, "approve", start=90)  # final, unrouted
    policy(tiny_model, erin, review_all=False, random_audit_rate=0.0, blind_review=True,
           high_stakes=DENIALS + BIG_INCOME)  # fmt: skip
    gold_mark(decision=gold, outcome="deny", actor=erin, copies=1)
    sent(service, "approve", "deny", "approve", start=1)  # blind: denials routed
    sent(service, "deny", start=10, income=180.0)  # blind, high_stakes shown
    policy(tiny_model, erin, review_all=True, blind_review=False)
    sent(service, "approve", "deny", start=20)  # open to seniors
    viewer = {"carol": carol, "dave": dave, "erin": erin, "scorer": service.user}[who]
    everything = api(viewer).get(LIST, {"model": "tiny"}).json()["results"]
    assert len(everything) == 7
    for query in FILTERS:
        expected = {row["id"] for row in everything if _matches(row, query)}
        assert ids(viewer, **query) == expected, (who, query)


# --- known-answer items ---------------------------------------------------------------------------


@pytest.fixture
def gold(tiny_model, service, erin):
    """An unrouted decision (final, by the model) marked as a known answer, two copies."""
    (decision,) = sent(service, "approve", start=50)
    assert (decision.status, decision.routed) == ("final", False)
    gold_mark(decision=decision, outcome="deny", actor=erin, copies=2)
    return decision


def test_a_gold_item_looks_to_a_senior_who_may_be_served_it_as_the_sample_it_poses_as(
    gold, carol, dave
):
    seen = api(carol).get(f"{LIST}{gold.pk}/").json()
    copies = list(ReviewTask.objects.filter(decision=gold).order_by("id"))
    assert (seen["status"], seen["routed"], seen["finalized_by"], seen["finalized_at"]) == (
        "pending_review", True, "", None)  # fmt: skip
    assert seen["routing"]["reasons"] == ["random_audit"]
    assert seen["final_outcome"] == "" and seen["model_outcome"] == "approve"
    assert [t["id"] for t in seen["tasks"]] == [t.pk for t in copies]
    assert "draw" not in str(seen["routing"])
    truth = api(dave).get(f"{LIST}{gold.pk}/").json()
    assert (truth["status"], truth["routed"], truth["finalized_by"]) == ("final", False, "model")


def test_the_gold_item_is_shown_alike_through_its_copy_and_the_decision_api(gold, carol):
    held = api(carol).post(CLAIM).json()
    assert held["decision"]["id"] == gold.pk
    seen = api(carol).get(f"{LIST}{gold.pk}/").json()
    assert held["decision"]["routing"]["reasons"] == seen["routing"]["reasons"]
    assert seen["status"] == "pending_review"


def test_once_answered_the_gold_item_is_shown_as_it_is(gold, carol):
    held = api(carol).post(CLAIM).json()
    assert submit(carol, held["id"], verdict="agree").status_code == 201
    seen = api(carol).get(f"{LIST}{gold.pk}/").json()
    assert (seen["status"], seen["routed"], seen["finalized_by"]) == ("final", False, "model")


def test_a_gold_copy_takes_the_priority_and_routing_of_the_sample_it_poses_as(
    tiny_model, service, erin, alice
):
    (old,) = sent(service, "approve", start=50)
    policy(tiny_model, erin, random_audit_rate=100.0)
    (sample,) = sent(service, "approve", start=1)
    gold_mark(decision=old, outcome="deny", actor=erin)
    genuine, copy = ReviewTask.objects.get(decision=sample), ReviewTask.objects.get(decision=old)
    assert sample.reasons == ["random_audit"] and genuine.priority == copy.priority == 20
    first = api(alice).post(CLAIM).json()
    assert first["id"] == genuine.pk  # earlier due: served first, as any older sample
    second = task_claim_next(reviewer=make_user("bea", "reviewer"))
    assert second.pk == copy.pk
    assert first["decision"]["routing"]["reasons"] == ["random_audit"]


def test_under_review_all_a_gold_copy_poses_as_review_all_not_as_an_audit_sample(
    tiny_model, service, erin, alice
):
    """Every fresh task then says review_all (priority 10): a copy saying only random_audit,
    at 20, would come first and stand out."""
    (old,) = sent(service, "approve", start=50)
    policy(tiny_model, erin, review_all=True, blind_review=True, high_stakes=DENIALS)
    genuine = sent(service, "deny", "approve", start=1)
    gold_mark(decision=old, outcome="deny", actor=erin)
    copy = ReviewTask.objects.get(decision=old)
    priorities = set(ReviewTask.objects.values_list("priority", flat=True))
    assert priorities == {10}
    order = [api(alice).post(CLAIM).json() for _ in range(3)]
    assert [t["decision"]["id"] for t in order] == [genuine[0].pk, genuine[1].pk, old.pk]
    assert {t["priority"] for t in order} == {10}
    assert {tuple(t["decision"]["routing"]["reasons"]) for t in order} == {("review_all",)}
    assert copy.pk == order[2]["id"]


def test_gold_copies_take_the_kinds_of_the_policys_tasks(tiny_model, service, erin):
    (old,) = sent(service, "approve", start=50)
    policy(tiny_model, erin, reviewers_required=2)
    gold_mark(decision=old, outcome="deny", actor=erin, copies=2)
    kinds = sorted(ReviewTask.objects.filter(decision=old).values_list("kind", flat=True))
    assert kinds == ["initial", "second_opinion"]


def test_a_decision_awaiting_review_cannot_be_marked_gold(tiny_model, service, erin):
    policy(tiny_model, erin, review_all=True)
    (pending,) = sent(service, "approve")
    response = api(erin).post(f"{LIST}{pending.pk}/gold/", {"outcome": "deny"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_final"


def test_the_settled_tasks_of_a_gold_item_are_not_shown_to_a_senior_who_may_be_served_it(
    tiny_model, service, erin, alice, carol, dave
):
    policy(tiny_model, erin, review_all=True)
    (decision,) = sent(service, "approve")
    held = api(alice).post(CLAIM).json()
    assert submit(alice, held["id"], verdict="agree").status_code == 201
    gold_mark(decision=Decision.objects.get(pk=decision.pk), outcome="approve", actor=erin)
    done = f"/api/v1/review-tasks/{held['id']}/"
    assert api(carol).get(done).status_code == 404
    client = Client()
    client.force_login(carol)
    assert client.get(f"/review/tasks/{held['id']}/").status_code == 404
    assert api(dave).get(done).status_code == 200
    tasks = api(carol).get(f"{LIST}{decision.pk}/").json()["tasks"]
    assert held["id"] not in [t["id"] for t in tasks] and len(tasks) == 1


def test_a_gold_items_notice_says_it_awaits_review_to_a_senior_who_may_be_served_it(
    gold, carol, dave
):
    notice = api(carol).get(f"{LIST}{gold.pk}/notice/").json()
    assert (notice["status"], notice["outcome"], notice["how_decided"]["kind"]) == (
        "pending_review", None, "pending")  # fmt: skip
    assert api(dave).get(f"{LIST}{gold.pk}/notice/").json()["outcome"] == "approve"


# --- priority and queue order -------------------------------------------------------------------


def test_a_blind_tasks_priority_comes_only_from_the_reasons_its_reviewer_is_shown(
    blind_denials, alice
):
    """Approvals and denials alternate; the denials' rule on the answer fired. Served in the
    order they came, all at the priority review_all gives: the order says nothing."""
    assert set(ReviewTask.objects.values_list("priority", flat=True)) == {10}
    served = [api(alice).post(CLAIM).json() for _ in blind_denials]
    assert [t["decision"]["id"] for t in served] == [d.pk for d in blind_denials]
    assert {t["priority"] for t in served} == {10}


def test_a_high_stakes_rule_the_reviewer_is_shown_still_puts_the_task_first(
    tiny_model, service, erin, alice
):
    policy(tiny_model, erin, review_all=True, blind_review=True, high_stakes=BIG_INCOME)
    plain = sent(service, "approve", income=20.0)[0]
    (rich,) = sent(service, "approve", start=5, income=180.0)
    first = api(alice).post(CLAIM).json()
    assert (first["decision"]["id"], first["priority"]) == (rich.pk, 100)
    assert ReviewTask.objects.get(decision=plain).priority == 10


def test_without_blind_review_the_answer_rule_sets_the_priority(tiny_model, service, erin, alice):
    policy(tiny_model, erin, review_all=True, blind_review=False, high_stakes=DENIALS)
    _approve, deny = sent(service, "approve", "deny")
    first = api(alice).post(CLAIM).json()
    assert (first["decision"]["id"], first["priority"]) == (deny.pk, 100)
    assert "high_stakes" in first["decision"]["routing"]["reasons"]


def test_an_escalation_of_a_blind_task_does_not_give_the_answer_away_by_priority(
    blind_denials, alice
):
    task = api(alice).post(CLAIM).json()
    response = api(alice).post(f"/api/v1/review-tasks/{task['id']}/escalate/",
                               {"note": "Unsure."}, format="json")  # fmt: skip
    assert response.status_code == 201
    adjudications = ReviewTask.objects.filter(kind="adjudication")
    assert set(adjudications.values_list("priority", flat=True)) == {90}


# --- counts: reports and exports -----------------------------------------------------------------


def test_a_seniors_report_leaves_out_the_decisions_he_may_be_given_blind(
    blind_denials, carol, dave
):
    def count(user, **params) -> int:
        return report_filters({"model": "tiny", **params}, user).decisions().count()

    assert count(dave, reason="high_stakes") == 2 and count(dave) == 4
    assert count(carol, reason="high_stakes") == 0 and count(carol) == 0


def test_a_gold_item_a_senior_may_be_served_is_not_in_his_report(gold, carol, dave):
    def count(user) -> int:
        return report_filters({"model": "tiny"}, user).decisions().count()

    assert (count(carol), count(dave)) == (0, 1)


def test_an_auditor_who_also_reviews_exports_only_what_he_may_see_the_answer_of(
    blind_denials, tiny_model, service, erin
):
    both = make_user("quinn", "auditor", "reviewer")
    open_ones = set(selectors.decisions_answer_visible_to(both).values_list("pk", flat=True))
    assert open_ones.isdisjoint(d.pk for d in blind_denials)
    policy(tiny_model, erin, blind_review=False)
    (seen,) = sent(service, "deny", start=30)
    assert seen.pk in set(selectors.decisions_answer_visible_to(both).values_list("pk", flat=True))


def test_an_export_by_an_auditor_who_also_reviews_leaves_out_what_he_is_blind_to(
    blind_denials, tiny_model, service, erin, django_capture_on_commit_callbacks
):
    both = make_user("quinn", "auditor", "reviewer")
    policy(tiny_model, erin, blind_review=False)
    (open_one,) = sent(service, "deny", start=30)
    with django_capture_on_commit_callbacks(execute=True):
        export = api(both).post("/api/v1/exports/", {"format": "jsonl"}, format="json").json()
    response = api(both).get(f"/api/v1/exports/{export['id']}/download/")
    raw = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(raw)) as package:
        lines = package.read("decisions.jsonl").decode().splitlines()
    assert [json.loads(line)["decision_id"] for line in lines] == [open_one.pk]


def test_an_auditor_who_also_reviews_is_refused_the_audit_bundle(blind_denials):
    both = make_user("quinn", "auditor", "reviewer")
    body = {"format": "csv", "include_bundle": True}
    response = api(both).post("/api/v1/exports/", body, format="json")
    assert response.status_code == 400
    assert "blind review" in response.json()["error"]["fields"]["include_bundle"][0]


def test_an_auditor_who_also_reviews_is_not_shown_the_raw_log(blind_denials, dave):
    """The raw log carries the model's answers to the decisions awaiting blind review: the
    events page refuses an auditor who also reviews, and the audit home lists no events."""
    both = make_user("quinn", "auditor", "reviewer")
    client = Client()
    client.force_login(both)
    assert client.get("/audit/events/").status_code == 403
    home = client.get("/audit/")
    assert home.status_code == 200
    assert 'id="reviews-too"' in home.content.decode()
    assert "decision.ingested" not in home.content.decode()
    auditor = Client()
    auditor.force_login(dave)
    assert auditor.get("/audit/events/").status_code == 200
    assert "decision.ingested" in auditor.get("/audit/").content.decode()
