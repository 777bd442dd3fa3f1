"""Labels: one for every human outcome that settles a decision, written in its transaction with
its audit event and outbox message; appeals supersede or confirm; gold answers are not labels."""

from __future__ import annotations

import pytest

from learning.models import LabelRecord, TrainingExample
from learning.services import labels as label_services
from outbox import services as outbox
from outbox.models import Message
from reviews.models import Decision, Review
from reviews.services import gold_mark, task_claim_next, task_escalate
from tests.learning.common import answer, events, ingest, settle

pytestmark = pytest.mark.django_db


def test_a_review_writes_a_label_with_its_audit_event_and_outbox_message(
    tiny_model, service, erin, alice
):
    (decision,) = ingest(tiny_model, service, erin, review_all=True)
    review = answer(alice, outcome="deny")
    label = LabelRecord.objects.get()
    assert (label.decision, label.label, label.source, label.by) == (
        decision,
        "deny",
        "review",
        alice,
    )
    assert label.model_outcome == "approve" and label.review_id == review.pk
    assert label.features == decision.features and label.reasons == ["review_all"]
    assert label.is_current and label.superseded_by is None and label.weight == 1.0
    assert label.model_version_id == decision.model_version_id
    (event,) = events("label.recorded")
    assert event["label"] == label.pk and event["source"] == "review"
    message = Message.objects.get(kind="label")
    assert (message.key, message.payload, message.scope) == (
        f"label:{label.pk}", {"label": label.pk}, f"model:{tiny_model.pk}"
    )  # fmt: skip


def test_two_reviewers_who_agree_make_one_label(tiny_model, service, erin, alice, bob):
    ingest(tiny_model, service, erin, review_all=True, reviewers_required=2)
    answer(alice)
    assert not LabelRecord.objects.exists()  # waiting for the second opinion
    answer(bob)
    (label,) = LabelRecord.objects.all()
    assert (label.source, label.label, label.by) == ("review", "approve", bob)


def test_a_disagreement_is_settled_by_an_adjudication_label(
    tiny_model, service, erin, alice, bob, carol
):
    ingest(tiny_model, service, erin, review_all=True, reviewers_required=2)
    answer(alice)
    answer(bob, outcome="deny")
    assert not LabelRecord.objects.exists()
    answer(carol, outcome="deny", kind="adjudication")
    (label,) = LabelRecord.objects.all()
    assert (label.source, label.label, label.by) == ("adjudication", "deny", carol)


def test_an_escalation_is_settled_by_an_adjudication_label(tiny_model, service, erin, alice, carol):
    ingest(tiny_model, service, erin, review_all=True)
    task = task_claim_next(reviewer=alice)
    task_escalate(task_id=task.pk, reviewer=alice, note="Unsure.")
    answer(carol, kind="adjudication")
    (label,) = LabelRecord.objects.all()
    assert (label.source, label.by) == ("adjudication", carol)


def test_an_overturning_appeal_supersedes_the_label_and_both_are_kept(
    tiny_model, service, erin, alice, carol
):
    (decision,) = ingest(tiny_model, service, erin, review_all=True)
    answer(alice)
    first = LabelRecord.objects.get()
    settle(decision, "deny", carol, source="appeal", appeal_id=7, appeal_result="overturned")
    first.refresh_from_db()
    second = LabelRecord.objects.exclude(pk=first.pk).get()
    assert (second.source, second.label, second.appeal_id) == ("appeal", "deny", 7)
    assert second.appeal_result == "overturned" and second.is_current
    assert first.superseded_by == second and not first.is_current
    assert events("label.recorded")[-1]["supersedes"] == first.pk


def test_an_upheld_appeal_confirms_the_label(tiny_model, service, erin, alice, carol):
    (decision,) = ingest(tiny_model, service, erin, review_all=True)
    answer(alice)
    settle(decision, "approve", carol, source="appeal", appeal_id=8, appeal_result="upheld")
    first, second = LabelRecord.objects.order_by("pk")
    assert (first.label, second.label) == ("approve", "approve")
    assert second.appeal_result == "upheld" and second.is_current
    assert first.superseded_by == second and not first.is_current


def test_an_appeal_of_an_automated_decision_is_its_first_label(tiny_model, service, erin, carol):
    (decision,) = ingest(tiny_model, service, erin)  # routes nothing: final by the model
    settle(decision, "deny", carol, source="appeal", appeal_id=9, appeal_result="overturned")
    (label,) = LabelRecord.objects.all()
    assert (label.source, label.is_current, label.reasons) == ("appeal", True, [])


def test_gold_answers_are_not_labels(tiny_model, service, erin, alice):
    (decision,) = ingest(tiny_model, service, erin)
    gold_mark(decision=decision, outcome="approve", actor=erin, copies=1)
    answer(alice)
    assert Review.objects.get().is_gold
    assert not LabelRecord.objects.exists() and not Message.objects.filter(kind="label").exists()


def test_a_label_that_cannot_be_written_rolls_the_settlement_back(
    tiny_model, service, erin, alice, monkeypatch
):
    (decision,) = ingest(tiny_model, service, erin, review_all=True)

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(label_services, "message_enqueue", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        answer(alice)
    decision.refresh_from_db()
    assert decision.status == Decision.Status.PENDING_REVIEW
    assert not Review.objects.exists() and not LabelRecord.objects.exists()


def test_an_unknown_source_or_appeal_result_is_refused(tiny_model, service, erin, carol):
    (decision,) = ingest(tiny_model, service, erin)
    with pytest.raises(ValueError, match="unknown settlement source"):
        settle(decision, "deny", carol, source="gold")
    with pytest.raises(ValueError, match="upheld or overturned"):
        settle(decision, "deny", carol, source="appeal", appeal_result="maybe")
    assert not LabelRecord.objects.exists()


def test_random_audit_labels_are_split_into_the_holdout_by_their_draw(
    tiny_model, service, erin, alice, settings
):
    decisions = ingest(tiny_model, service, erin, n=40, random_audit_rate=50.0)
    for decision in decisions:
        settle(decision, "approve", alice)
    audited = [d for d in decisions if "random_audit" in d.reasons]
    assert 5 < len(audited) < 35
    for decision in decisions:
        label = LabelRecord.objects.get(decision=decision)
        condition = next(c for c in decision.routing["conditions"] if c["name"] == "random_audit")
        expected = condition["fired"] and condition["draw"] / condition["rate"] < 0.5
        assert label.holdout is expected
        assert label.audit_draw == (condition["draw"] if condition["fired"] else None)
    assert 0 < LabelRecord.objects.filter(holdout=True).count() < len(audited)


def test_the_training_store_gets_each_label_once_and_learns_what_is_superseded(
    tiny_model, service, erin, alice, carol
):
    (decision,) = ingest(tiny_model, service, erin, review_all=True)
    answer(alice)
    settle(decision, "deny", carol, source="appeal", appeal_id=1, appeal_result="overturned")
    first, second = Message.objects.filter(kind="label").order_by("pk")
    # The appeal's label arrives first (the first message's hand-off was lost, say).
    assert outbox.message_deliver(message_id=second.pk) == "delivered"
    assert outbox.message_deliver(message_id=first.pk) == "delivered"
    assert outbox.message_deliver(message_id=first.pk) == "skipped"
    # Even a handler run twice (a worker died before marking it delivered) stores it once.
    label_services.deliver_label(first)
    examples = {e.label: e for e in TrainingExample.objects.all()}
    assert set(examples) == {"approve", "deny"} and TrainingExample.objects.count() == 2
    assert not examples["approve"].current and examples["deny"].current
    assert examples["deny"].supersedes == examples["approve"].record_id
    assert examples["approve"].delivery_id == first.key
    assert examples["deny"].external_id == decision.external_id
