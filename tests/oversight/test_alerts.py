"""Alert conditions, evaluated per model: raised once per condition and model, audited, e-mailed
to auditors through the outbox in the transaction that raises them."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core import mail

from audit.models import Alert, AuditEvent
from outbox.models import Message
from oversight import monitoring, tasks
from tests.fixtures import api, register_tiny
from tests.oversight.reportdata import Row, store

pytestmark = pytest.mark.django_db


def _rows(race: str, reviewed: int, overridden: int, *, model_outcome="approve") -> list[Row]:
    other = "deny" if model_outcome == "approve" else "approve"
    return [Row({"race": race}, model_outcome, other, "reviewer")] * overridden + [
        Row({"race": race}, model_outcome, model_outcome, "reviewer")
    ] * (reviewed - overridden)


@pytest.fixture
def auditor(dave):
    dave.email = "dave@example.org"
    dave.save()
    return dave


@pytest.fixture
def gap(erin):
    """Group a's approvals are overturned far more often than group b's."""
    model = register_tiny(erin, [])
    store(model, _rows("a", 60, 30) + _rows("b", 80, 4))
    return model


def test_a_significant_gap_in_override_rates_raises_one_alert_emailed_to_auditors(gap, auditor):
    result = monitoring.model_evaluate(model=gap)
    kinds = {f["kind"] for f in result["findings"]}
    assert kinds == {"override_gap", "four_fifths"}
    alert = Alert.objects.get(kind="override_gap")
    assert alert.scope == "model:tiny" and "a 50.0% vs b 5.0%" in alert.message
    assert AuditEvent.objects.filter(action="alert.raised", object_id=str(alert.pk)).exists()
    message = Message.objects.get(key=f"alert-email:{alert.pk}")
    assert message.kind == "email" and message.payload["to"] == ["dave@example.org"]
    assert "override_gap" in message.payload["subject"] and alert.message in message.payload["body"]
    # Evaluating again while the alerts are open raises nothing new and sends nothing.
    again = monitoring.model_evaluate(model=gap)
    assert again["raised"] == [] and Alert.objects.count() == 2 and Message.objects.count() == 2


def test_the_email_is_sent_after_the_alert_commits(
    gap, auditor, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        monitoring.model_evaluate(model=gap)
    subjects = sorted(m.subject for m in mail.outbox)
    assert subjects == [
        "[Oversight] four_fifths alert: tiny",
        "[Oversight] override_gap alert: tiny",
    ]
    assert all(m.to == ["dave@example.org"] for m in mail.outbox)


def test_a_small_difference_is_not_an_alert_however_significant(erin, settings):
    settings.ALERT_MIN_DIFF = 0.5
    model = register_tiny(erin, [])
    store(model, _rows("a", 60, 30) + _rows("b", 80, 4))
    kinds = {f["kind"] for f in monitoring.model_evaluate(model=model)["findings"]}
    assert "override_gap" not in kinds


def test_a_gap_that_may_be_chance_is_not_an_alert(erin):
    model = register_tiny(erin, [])
    store(model, _rows("a", 12, 3) + _rows("b", 12, 1))
    assert monitoring.model_evaluate(model=model)["findings"] == []


def test_a_resolved_alert_is_raised_again_when_the_condition_persists(gap, auditor):
    from audit.services import alert_resolve

    monitoring.model_evaluate(model=gap)
    alert = Alert.objects.get(kind="override_gap")
    alert_resolve(alert_id=alert.pk, actor=auditor, note="Looked into it; reviewers retrained.")
    result = monitoring.model_evaluate(model=gap)
    assert result["raised"] == ["override_gap"]
    assert Alert.objects.filter(kind="override_gap").count() == 2


def test_final_outcomes_that_fail_the_four_fifths_rule(erin):
    model = register_tiny(erin, [])
    # The model approves both groups alike; reviewers deny group a's approvals half the time.
    store(model, _rows("a", 40, 20) + _rows("b", 40, 0))
    result = monitoring.model_evaluate(model=model)
    finding = next(f for f in result["findings"] if f["kind"] == "four_fifths")
    assert "a's selection rate is 0.50 of b's" in finding["message"]
    assert finding["details"]["ratio"] == 0.5


def test_open_appeals_past_their_deadline_raise_the_overdue_alert(gap):
    from datetime import timedelta

    from django.utils import timezone

    from appeals.models import Appeal
    from reviews.models import Decision, ReviewTask

    now = timezone.now()
    assert monitoring.overdue_appeals(gap, now) == 0
    for decision, status, due in zip(
        Decision.objects.filter(model=gap)[:3],
        ["in_review", "submitted", "upheld"],
        [now - timedelta(days=1), now + timedelta(days=1), now - timedelta(days=2)],
        strict=True,
    ):
        task = ReviewTask.objects.create(
            decision=decision, model_id=gap.pk, kind="appeal", due_at=due, created_at=now,
            senior_only=True,
        )  # fmt: skip
        Appeal.objects.create(
            decision=decision, status=status, grounds="g" * 30, filed_via="service",
            filed_at=now, due_at=due, task=task, outcome_before="approve",
            decided_at=now if status == "upheld" else None,
        )  # fmt: skip
    assert monitoring.overdue_appeals(gap, now) == 1  # open and late; not the decided one
    (finding,) = monitoring.appeals_overdue(gap, now)
    assert finding.kind == "appeals_overdue" and finding.message.startswith("1 appeals")


def test_a_person_asking_for_an_evaluation_is_audited(gap, auditor):
    response = api(auditor).post("/api/v1/reports/evaluate/", {"model": "tiny"}, format="json")
    assert response.status_code == 200, response.content
    assert set(response.json()["raised"]) == {"override_gap", "four_fifths"}
    event = AuditEvent.objects.get(action="oversight.evaluated")
    assert event.actor == "user:dave"


def test_evaluating_is_for_report_readers_of_that_model(gap, alice, erin):
    from tests.fixtures import make_user

    assert (
        api(alice).post("/api/v1/reports/evaluate/", {"model": "tiny"}, format="json").status_code
        == 403
    )
    stranger = make_user("olga", "model_owner")
    response = api(stranger).post("/api/v1/reports/evaluate/", {"model": "tiny"}, format="json")
    assert response.status_code == 404
    assert (
        api(erin).post("/api/v1/reports/evaluate/", {"model": "tiny"}, format="json").status_code
        == 200
    )


def test_beat_evaluates_every_model_with_recent_decisions(gap, erin):
    register_tiny(erin, [], name="quiet")  # no decisions: not evaluated
    schedule = django_settings.CELERY_BEAT_SCHEDULE["evaluate-oversight-alerts"]
    assert schedule["task"] == "oversight.tasks.evaluate_models"
    assert tasks.evaluate_models.delay().get() == 1
    assert Alert.objects.filter(scope="model:tiny").count() == 2
