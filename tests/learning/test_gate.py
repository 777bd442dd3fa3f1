"""The promotion gate: group metrics (checked against fairlearn's MetricFrame), refusing a
candidate that widens a group gap, accepting one that does not, small groups, and the owner's
written justification."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from django.test import Client
from fairlearn.metrics import (
    MetricFrame,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
)
from sklearn.metrics import accuracy_score

from learning.metrics import gaps, measure
from learning.models import Evaluation
from models_registry import services as registry
from models_registry.models import ModelVersion
from tests.fixtures import api, item, register_tiny
from tests.learning.common import events, ingest, rule_artifact, settle

pytestmark = pytest.mark.django_db


class Fixed:
    """An estimator whose probabilities are given (for checking the metrics alone)."""

    classes_ = np.array(["approve", "deny"])

    def __init__(self, proba: np.ndarray) -> None:
        self.proba = proba

    def predict_proba(self, X):
        return np.column_stack([self.proba, 1 - self.proba])


def test_group_metrics_match_fairlearns_metricframe():
    rng = np.random.default_rng(5)
    n = 400
    y = rng.choice(["approve", "deny"], n, p=[0.7, 0.3])
    proba = np.clip(np.where(y == "approve", 0.65, 0.35) + rng.normal(0, 0.25, n), 0, 1)
    groups = pd.DataFrame(
        {"race": rng.choice(["a", "b", "c"], n), "sex": rng.choice(["f", "m"], n)}
    )
    mine = measure(Fixed(proba), pd.DataFrame(index=range(n)), y, groups,
                   favourable="approve", min_count=10)  # fmt: skip
    y_true, y_pred = (y == "approve").astype(int), (proba >= 0.5).astype(int)
    for attribute in ("race", "sex"):
        frame = MetricFrame(
            metrics={
                "selection_rate": selection_rate,
                "false_positive_rate": false_positive_rate,
                "false_negative_rate": false_negative_rate,
                "accuracy": accuracy_score,
            },
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=groups[attribute],
        )
        for group, row in frame.by_group.iterrows():
            for metric, value in row.items():
                assert mine["by_group"][attribute][group][metric] == pytest.approx(value, abs=1e-6)
        expected = frame.difference(method="between_groups")
        found = gaps(mine["by_group"])[attribute]
        for metric in ("selection_rate", "false_positive_rate", "false_negative_rate"):
            assert found[metric]["gap"] == pytest.approx(expected[metric], abs=1e-6)
    assert mine["overall"]["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))


def test_a_group_below_the_minimum_count_is_reported_as_too_small():
    y = np.array(["approve"] * 50 + ["deny"] * 50)
    groups = pd.DataFrame({"race": ["a"] * 45 + ["b"] * 5 + ["a"] * 45 + ["b"] * 5})
    measured = measure(Fixed(np.full(100, 0.9)), pd.DataFrame(index=range(100)), y, groups,
                       favourable="approve", min_count=11)  # fmt: skip
    assert measured["by_group"]["race"]["b"]["too_small"] == [
        "selection_rate", "false_positive_rate", "false_negative_rate"
    ]  # fmt: skip
    assert measured["by_group"]["race"]["a"]["too_small"] == []
    assert gaps(measured["by_group"])["race"]["selection_rate"]["gap"] is None


# --- the gate on constructed data -------------------------------------------------------------


@pytest.fixture
def audited(erin, service, alice, settings):
    """The tiny model, champion approving by income alone, and a holdout of human labels of
    random-audit decisions: black applicants here have a poor credit history, white ones a good
    one; half of each have a high income (truly approve), half a low one (truly deny)."""
    settings.LEARNING_MIN_GROUP_COUNT = 5
    model = register_tiny(erin, [service.user], random_audit_rate=100.0)
    champion = registry.version_upload(
        model=model, artifact=rule_artifact(poor_denied=False), actor=erin
    )
    registry.version_promote(version=champion, actor=erin)
    bodies = []
    for i in range(120):
        black, rich = i % 2 == 1, (i // 2) % 2 == 0
        features = {"income": 150.0 if rich else 50.0, "history": "poor" if black else "good"}
        bodies.append(item(i, features=features, groups={"race": "black" if black else "white",
                                                         "sex": "female"}))  # fmt: skip
    for decision in ingest(model, service, erin, bodies=bodies):
        truth = "approve" if decision.features["income"] > 100 else "deny"
        settle(decision, truth, alice)
    return model


def promote(user, number: int, justification: str | None = None):
    body = {} if justification is None else {"justification": justification}
    return api(user).post(f"/api/v1/models/tiny/versions/{number}/promote/", body, format="json")


def test_the_gate_refuses_a_candidate_that_widens_a_group_gap(audited, erin, settings):
    settings.LEARNING_GATE_TOLERANCE = 1.0  # overall loss aside: the gap alone must refuse
    registry.version_upload(model=audited, artifact=rule_artifact(poor_denied=True), actor=erin)
    response = promote(erin, 2)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "promotion_gate" and "justification" in error["fields"]
    widened = {(c["attribute"], c["metric"]) for c in error["failed_checks"]
               if c["code"] == "gap_widened"}  # fmt: skip
    assert ("race", "false_negative_rate") in widened and ("race", "selection_rate") in widened
    assert all(c["message"] in error["message"] for c in error["failed_checks"])
    fnr = next(c for c in error["failed_checks"] if c.get("metric") == "false_negative_rate")
    assert fnr["candidate"] > 0.9 and fnr["champion"] < 0.1
    assert ModelVersion.objects.get(number=2).status == "candidate"
    evaluation = Evaluation.objects.get(pk=error["evaluation"])
    assert evaluation.passed is False and evaluation.purpose == "promotion"
    assert evaluation.holdout["labels"] == evaluation.holdout["rows"] > 30
    by_race = evaluation.report["candidate"]["by_group"]["race"]
    assert by_race["black"]["false_negative_rate"] > 0.9 and by_race["black"]["positives"] >= 5
    (refused,) = events("promotion.refused")
    assert refused["number"] == 2 and refused["failed_checks"] == error["failed_checks"]


def test_the_gate_accepts_a_candidate_that_does_not_widen_any_gap(audited, erin):
    registry.version_upload(
        model=audited, artifact=rule_artifact(poor_denied=False, seed=2), actor=erin
    )
    response = promote(erin, 2)
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "champion"
    (passed,) = [e for e in events("promotion.gate_passed") if e["champion"] is not None]
    assert passed["failed_checks"] == [] and Evaluation.objects.get().passed


def test_a_written_justification_promotes_over_the_gate_and_shows_on_the_card(audited, erin):
    registry.version_upload(model=audited, artifact=rule_artifact(poor_denied=True), actor=erin)
    assert promote(erin, 2, "too short").status_code == 409
    why = "Regulator-mandated rule change; group impact reviewed by the ethics board."
    response = promote(erin, 2, why)
    assert response.status_code == 200 and response.json()["promotion_justification"] == why
    version = ModelVersion.objects.get(number=2)
    assert version.status == "champion" and version.promotion_failed_checks
    (overridden,) = events("promotion.gate_overridden")
    assert overridden["justification"] == why and overridden["failed_checks"]
    client = Client()
    client.force_login(erin)
    card = client.get("/models/tiny/").content.decode()
    assert "Promoted over the promotion gate" in card and why in card
    assert why in api(erin).get("/api/v1/models/tiny/card.md").content.decode()


def test_too_small_groups_refuse_rather_than_pass_silently(audited, erin, settings):
    settings.LEARNING_MIN_GROUP_COUNT = 1000
    registry.version_upload(
        model=audited, artifact=rule_artifact(poor_denied=False, seed=2), actor=erin
    )
    response = promote(erin, 2)
    assert response.status_code == 409
    small = [c for c in response.json()["error"]["failed_checks"] if c["code"] == "group_too_small"]
    assert {(c["attribute"], c["group"]) for c in small} >= {("race", "black"), ("race", "white")}
    assert "too small" in small[0]["message"]


def test_an_empty_holdout_refuses(tiny_model, erin, tiny_artifact):
    registry.version_upload(model=tiny_model, artifact=tiny_artifact, actor=erin)
    response = promote(erin, 2)
    assert response.status_code == 409
    assert [c["code"] for c in response.json()["error"]["failed_checks"]] == ["holdout_empty"]


def test_the_first_champion_needs_no_comparison(erin, service, tiny_artifact):
    model = register_tiny(erin, [service.user])
    registry.version_upload(model=model, artifact=tiny_artifact, actor=erin)
    assert promote(erin, 1).json()["status"] == "champion"
    assert not Evaluation.objects.exists()


def test_only_the_owner_promotes(audited, erin, dave, service):
    from tests.fixtures import make_user

    registry.version_upload(model=audited, artifact=rule_artifact(poor_denied=False), actor=erin)
    mallory = make_user("mallory", "model_owner")
    assert promote(mallory, 2).status_code == 403
    assert promote(dave, 2).status_code == 403
    assert service.client().post("/api/v1/models/tiny/versions/2/promote/").status_code == 403


def test_the_promote_button_shows_the_failed_checks_and_takes_a_justification(audited, erin):
    registry.version_upload(model=audited, artifact=rule_artifact(poor_denied=True), actor=erin)
    client = Client()
    client.force_login(erin)
    refused = client.post("/models/tiny/versions/2/promote/", {"justification": ""})
    assert refused.status_code == 409
    page = refused.content.decode()
    assert "The promotion gate refused version 2" in page and "gap_widened" in page
    why = "Accepted for the pilot; group impact reviewed weekly by the owner."
    done = client.post("/models/tiny/versions/2/promote/", {"justification": why}, follow=True)
    assert "Version 2 is now the champion." in done.content.decode()
    learning = client.get("/models/tiny/learning/").content.decode()
    assert "Candidate against champion" in learning and "<svg" in learning
    assert json.loads(json.dumps(events("promotion.gate_overridden")))[0]["justification"] == why
