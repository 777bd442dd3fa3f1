"""The review-all breaker, end to end: decisions arrive through the ingest service, their
feature distribution shifts, the evaluation trips the breaker, every new decision goes to
people, and an owner resets it with a note. And the random-audit override alert trips it too."""

from __future__ import annotations

import pytest

from audit.models import Alert, AuditEvent
from models_registry import drift_baseline as drift_shape
from models_registry import services as registry
from models_registry.selectors import current_policy
from outbox.models import Message
from oversight import monitoring
from oversight.models import BreakerTrip
from reviews.services import decisions_ingest, review_submit, task_claim_next
from tests.fixtures import (
    TINY_FEATURES,
    api,
    item,
    make_user,
    register_tiny,
    tiny_pipeline,
    tiny_training_data,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def watched(erin, service, tiny_artifact, dave, settings):
    """The tiny model, its champion uploaded with a drift baseline of its training data."""
    settings.DRIFT_MIN_DECISIONS = 300
    dave.email = "dave@example.org"
    dave.save()
    frame, _ = tiny_training_data()
    pipeline = tiny_pipeline()
    column = list(pipeline.classes_).index("approve")
    scores = pipeline.predict_proba(frame.astype({"bankrupt": float}))[:, column]
    baseline = drift_shape.build(frame, TINY_FEATURES, scores=scores)
    model = register_tiny(erin, [service.user])
    version = registry.version_upload(
        model=model, artifact=tiny_artifact, actor=erin, drift_baseline=baseline
    )
    registry.version_promote(version=version, actor=erin)
    return model


def _send(service, start: int, n: int, *, income_shift: float = 0.0, seed: int = 9) -> list:
    frame, _ = tiny_training_data(n=n, seed=seed)
    items = []
    for i, row in enumerate(frame.to_dict("records")):
        features = {
            "income": min(500.0, float(row["income"]) + income_shift),
            "debt": float(row["debt"]),
            "years": int(row["years"]),
            "history": row["history"],
            "bankrupt": bool(row["bankrupt"]),
        }
        items.append(item(start + i, features=features))
    return [r.decision for r in decisions_ingest(items=items, actor=service.user)]


def test_a_shift_in_incoming_features_trips_the_breaker_and_people_decide_until_reset(
    watched, service, erin, settings
):
    _send(service, 0, 600)  # as in training
    calm = monitoring.model_evaluate(model=watched)
    assert calm["findings"] == [] and not calm["breaker_tripped"]
    (drift,) = calm["drift"]
    assert drift["status"] == "ok" and drift["max_psi"] < settings.DRIFT_PSI_ALERT

    _send(service, 1000, 400, income_shift=250.0, seed=10)  # applicants suddenly much richer
    result = monitoring.model_evaluate(model=watched)
    assert result["breaker_tripped"] and set(result["raised"]) == {"drift", "breaker_tripped"}

    trip = BreakerTrip.objects.get()
    policy = current_policy(watched)
    assert trip.cause == "drift" and trip.details["feature"] == "income"
    assert policy.review_all and policy.version == trip.policy_version == 2
    assert policy.created_by is None and "income" in policy.note and "drift" in policy.note
    updated = AuditEvent.objects.get(action="policy.updated")
    assert updated.actor == "system" and '"review_all":true' in updated.payload
    tripped = AuditEvent.objects.get(action="breaker.tripped")
    assert tripped.actor == "system" and "income" in tripped.payload
    assert set(Alert.objects.values_list("kind", flat=True)) == {"drift", "breaker_tripped"}
    assert Message.objects.filter(kind="email", scope="model:tiny").count() == 2

    # Every new decision now goes to people, whatever the model's confidence.
    routed = _send(service, 5000, 20, seed=11)
    assert all(d.routed and "review_all" in d.reasons for d in routed)
    assert all(d.tasks.count() == 1 for d in routed)

    # The condition persists: evaluating again trips nothing more.
    again = monitoring.model_evaluate(model=watched)
    assert not again["breaker_tripped"] and BreakerTrip.objects.count() == 1

    response = api(erin).post(
        "/api/v1/breakers/tiny/reset/",
        {"note": "New applicant pool confirmed with the lender; retraining is scheduled."},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["tripped"] is False and response.json()["review_all"] is False
    trip.refresh_from_db()
    assert trip.reset_by == erin and trip.reset_policy_version == 3
    assert not current_policy(watched).review_all
    reset = AuditEvent.objects.get(action="breaker.reset")
    assert reset.actor == "user:erin" and "retraining" in reset.payload
    after = _send(service, 7000, 5, seed=12)
    assert not any(d.routed for d in after)


def test_the_random_audit_override_alert_trips_the_breaker(
    erin, service, tiny_artifact, alice, settings
):
    model = register_tiny(erin, [service.user], random_audit_rate=100.0)
    version = registry.version_upload(model=model, artifact=tiny_artifact, actor=erin)
    registry.version_promote(version=version, actor=erin)
    decisions_ingest(items=[item(n) for n in range(30)], actor=service.user)
    for n in range(30):
        task = task_claim_next(reviewer=alice)
        outcome = task.decision.model_outcome
        if n % 2:
            other = "deny" if outcome == "approve" else "approve"
            review_submit(
                task_id=task.pk,
                reviewer=alice,
                verdict="override",
                outcome=other,
                reason_code="model_error",
                rationale="The model is wrong here.",
            )
        else:
            review_submit(task_id=task.pk, reviewer=alice, verdict="agree")
    result = monitoring.model_evaluate(model=model)
    assert {f["kind"] for f in result["findings"]} == {"random_audit_override"}
    assert result["breaker_tripped"]
    trip = BreakerTrip.objects.get()
    assert trip.cause == "random_audit_override" and "15 of 30" in trip.measurement
    assert current_policy(model).review_all


def test_only_the_owner_or_a_senior_resets_it_and_says_why(watched, erin, dave, alice):
    finding = monitoring.Finding("drift", "income PSI 0.9", {"feature": "income"}, trips=True)
    monitoring.breaker_trip(model=watched, finding=finding)
    url = "/api/v1/breakers/tiny/reset/"
    assert api(dave).post(url, {"note": "x"}, format="json").status_code == 403
    assert api(alice).post(url, {"note": "x"}, format="json").status_code == 403
    stranger = make_user("olga", "model_owner")
    assert api(stranger).post(url, {"note": "x"}, format="json").status_code == 404
    empty = api(erin).post(url, {"note": "  "}, format="json")
    assert empty.status_code == 400 and "note" in empty.json()["error"]["fields"]
    senior = make_user("sam", "senior_reviewer")
    assert api(senior).post(url, {"note": "Checked: a data fix."}, format="json").status_code == 200
    again = api(senior).post(url, {"note": "Again."}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_tripped"
    state = api(dave).get("/api/v1/breakers/tiny/").json()
    assert state["tripped"] is False and state["history"][0]["reset_by"] == "sam"


def test_a_breaker_already_on_by_hand_stays_on_after_a_reset(watched, erin):
    registry.policy_update(model=watched, changes={"review_all": True}, actor=erin, note="by hand")
    finding = monitoring.Finding("drift", "income PSI 0.9", {}, trips=True)
    trip = monitoring.breaker_trip(model=watched, finding=finding)
    assert trip.review_all_before is True and trip.policy_version == 2  # nothing to change
    monitoring.breaker_reset(model=watched, actor=erin, note="Drift explained.")
    assert current_policy(watched).review_all is True


def test_only_drift_and_random_audits_trip_it(watched):
    with pytest.raises(ValueError):
        monitoring.breaker_trip(model=watched, finding=monitoring.Finding("four_fifths", "x"))
