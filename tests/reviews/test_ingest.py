from __future__ import annotations

import json

import pytest

from audit.models import AuditEvent
from models_registry import services as registry
from models_registry.models import ModelVersion
from reviews.models import Decision, ProtectedAttribute, ReviewTask
from tests.fixtures import api, item

pytestmark = pytest.mark.django_db

URL = "/api/v1/decisions/"


def post(service, body, url=URL):
    return service.client().post(url, body, format="json")


def test_it_scores_explains_and_stores_a_prediction(tiny_model, service):
    response = post(service, item(1))
    assert response.status_code == 201, response.json()
    body = response.json()
    for key in ("id", "status", "model_version", "model_outcome", "confidence", "routed",
                "routing", "explanation", "final_outcome"):  # fmt: skip
        assert key in body, key
    assert body["model_version"] == 1
    assert body["model_outcome"] in ("approve", "deny")
    assert 0.5 <= body["confidence"] <= 1
    assert body["explanation"]["method"] == "linear_exact"
    assert {c["feature"] for c in body["explanation"]["contributions"]} == set(
        tiny_model.feature_names
    )
    assert "counterfactual" in body["explanation"]
    # Unrouted: final at once, by the model.
    assert (body["routed"], body["status"]) == (False, "final")
    assert body["final_outcome"] == body["model_outcome"]
    assert body["finalized_by"] == "model"
    decision = Decision.objects.get()
    assert decision.features["years"] == 5 and isinstance(decision.features["years"], int)
    assert dict(decision.protected.values_list("name", "value")) == {
        "race": "white",
        "sex": "female",
    }
    event = AuditEvent.objects.get(action="decision.ingested")
    payload = json.loads(event.payload)
    assert payload["request_sha256"] == decision.request_sha256
    assert payload["artifact_sha256"] == tiny_model.versions.get().sha256
    assert event.object_id == str(decision.pk) and event.actor == "service:svc-scorer"


def test_every_routing_condition_is_recorded_fired_or_not(tiny_model, service):
    body = post(service, item(1)).json()
    names = [c["name"] for c in body["routing"]["conditions"]]
    assert names == [
        "review_all",
        "low_confidence",
        "high_stakes",
        "random_audit",
        "active_learning",
    ]
    assert all(c["fired"] is False for c in body["routing"]["conditions"])
    assert body["routing"]["reasons"] == []


def test_a_client_may_send_its_own_outcome_and_confidence(tiny_model, service):
    explanation = {"contributions": [{"feature": "debt", "value": 10.0, "contribution": -0.4}]}
    body = item(1, outcome="deny", confidence=0.64, explanation=explanation)
    response = post(service, body)
    assert response.status_code == 201, response.json()
    data = response.json()
    assert (data["model_outcome"], data["confidence"], data["model_version"]) == (
        "deny",
        0.64,
        None,
    )
    assert data["explanation"]["method"] == "client"
    assert data["explanation"]["contributions"] == explanation["contributions"]
    assert Decision.objects.get().scored_by == "client"


def test_low_confidence_routes_the_decision_and_opens_a_task(tiny_model, service, erin):
    registry.policy_update(
        model=tiny_model, changes={"confidence_threshold": 0.999}, actor=erin, note="test"
    )
    data = post(service, item(1)).json()
    assert data["routed"] is True and data["status"] == "pending_review"
    assert data["routing"]["reasons"] == ["low_confidence"]
    low = next(c for c in data["routing"]["conditions"] if c["name"] == "low_confidence")
    assert low["threshold"] == 0.999 and low["confidence"] == data["confidence"]
    assert data["final_outcome"] == "" and data["finalized_by"] == ""
    (task,) = ReviewTask.objects.all()
    assert (task.kind, task.state, task.priority) == ("initial", "open", 50)
    assert data["tasks"] == [{"id": task.pk, "kind": "initial", "state": "open"}]
    payload = json.loads(AuditEvent.objects.get(action="decision.ingested").payload)
    assert payload["tasks"] == [{"id": task.pk, "kind": "initial"}]


def test_two_reviewers_required_opens_two_independent_tasks(tiny_model, service, erin):
    registry.policy_update(
        model=tiny_model,
        changes={"review_all": True, "reviewers_required": 2},
        actor=erin,
        note="test",
    )
    post(service, item(1))
    assert sorted(ReviewTask.objects.values_list("kind", flat=True)) == [
        "initial",
        "second_opinion",
    ]


def test_a_high_stakes_rule_routes_and_records_each_comparison(tiny_model, service, erin):
    rule = {"name": "rich-and-indebted", "when": {"all": [
        {"field": "income", "op": "ge", "value": 100},
        {"field": "debt", "op": "gt", "value": 50}]}}  # fmt: skip
    registry.policy_update(
        model=tiny_model, changes={"high_stakes": [rule]}, actor=erin, note="test"
    )
    quiet = post(service, item(1, features={"debt": 10.0})).json()
    loud = post(service, item(2, features={"debt": 60.0})).json()
    assert quiet["routed"] is False and loud["routed"] is True
    assert loud["routing"]["reasons"] == ["high_stakes"]
    fired = next(c for c in loud["routing"]["conditions"] if c["name"] == "high_stakes")
    assert fired["rules"][0]["name"] == "rich-and-indebted"
    assert [c["result"] for c in fired["rules"][0]["conditions"]] == [True, True]
    not_fired = next(c for c in quiet["routing"]["conditions"] if c["name"] == "high_stakes")
    assert [c["result"] for c in not_fired["rules"][0]["conditions"]] == [True, False]
    assert ReviewTask.objects.get().priority == 100


def test_random_audit_is_deterministic_per_external_id(tiny_model, service, erin):
    from reviews.routing import audit_draw

    registry.policy_update(
        model=tiny_model, changes={"random_audit_rate": 50.0}, actor=erin, note="test"
    )
    for n in range(1, 21):
        data = post(service, item(n)).json()
        assert data["routed"] == (audit_draw("tiny", f"app-{n:05d}") < 0.5)
        assert data["routing"]["reasons"] == (["random_audit"] if data["routed"] else [])


def test_active_learning_spends_the_daily_budget_on_the_most_uncertain(tiny_model, service, erin):
    registry.policy_update(
        model=tiny_model,
        changes={"active_learning_budget": 2, "active_learning_max_margin": 1.0},
        actor=erin,
        note="test",
    )
    incomes = [40.0, 60.0, 80.0, 120.0, 200.0]
    items = [item(n, features={"income": v}) for n, v in enumerate(incomes, start=1)]
    results = post(service, {"items": items}, url=URL + "bulk/").json()["items"]
    chosen = [r for r in results if r["reasons"] == ["active_learning"]]
    assert len(chosen) == 2
    margins = {d.pk: d.margin for d in Decision.objects.all()}
    chosen_margins = sorted(margins[r["id"]] for r in chosen)
    others = sorted(margins[r["id"]] for r in results if not r["routed"])
    assert chosen_margins[-1] <= others[0]  # the smallest margins were chosen
    later = post(service, item(99, features={"income": 70.0})).json()
    al = next(c for c in later["routing"]["conditions"] if c["name"] == "active_learning")
    assert al["fired"] is False and al["detail"] == "today's budget is spent"


# --- bad input: a 400 naming the field, and nothing stored -----------------------------------


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"features": {"colour": "red"}}, "features.colour", "is not a feature of this model"),
        ({"features": {"income": None}}, "features.income", "is required"),
        ({"features": {"income": "lots"}}, "features.income",
         "must be a number, got 'lots' (string)"),
        ({"features": {"income": -5}}, "features.income", "must be at least 0, got -5"),
        ({"features": {"debt": 101}}, "features.debt", "must be at most 100, got 101"),
        ({"features": {"history": "great"}}, "features.history", "must be one of good, fair, poor"),
        ({"features": {"bankrupt": "no"}}, "features.bankrupt", "must be true or false"),
        ({"features": {"years": 2.5}}, "features.years", "must be a whole number"),
        ({"features": {"income": 10**400}}, "features.income", "must be a finite number"),
        ({"features": {"income": True}}, "features.income", "must be a number, got true"),
        ({"outcome": "maybe", "confidence": 0.7}, "outcome", "must be one of approve, deny"),
        ({"outcome": "deny", "confidence": 1.2}, "confidence", "from 0 to 1"),
        ({"outcome": "deny", "confidence": 10**400}, "confidence", "from 0 to 1"),
        ({"outcome": "deny"}, "confidence", "is required when the client scores"),
        ({"groups": {"religion": "x"}}, "groups.religion", "is not a protected attribute"),
        ({"external_id": ""}, "external_id", "is required"),
        ({"subject_ref": None}, "subject_ref", "is required"),
        ({"model": "nope"}, "model", "no model 'nope' for this client: not found or not granted"),
        ({"version": 7}, "version", "has no version 7"),
        ({"colour": "red"}, "colour", "is not a field of a decision"),
    ],
)  # fmt: skip
def test_bad_input_names_the_field_and_stores_nothing(tiny_model, service, change, field, message):
    response = post(service, item(1, **change))
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"], error["fields"]
    assert message in error["fields"][field][0]
    assert field in error["message"]
    assert not Decision.objects.exists()
    assert not AuditEvent.objects.filter(action="decision.ingested").exists()


def test_every_bad_field_of_an_item_is_named_at_once(tiny_model, service):
    response = post(service, item(1, features={"income": -1, "debt": "x", "colour": 1}))
    assert set(response.json()["error"]["fields"]) == {
        "features.income",
        "features.debt",
        "features.colour",
    }


def test_non_finite_numbers_are_refused(tiny_model, service):
    raw = json.dumps(item(1)).replace('"income": 120.0', '"income": 1e400')
    response = service.client().post(URL, raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["features.income"] == ["must be a finite number"]
    raw = json.dumps(item(2)).replace('"income": 120.0', '"income": NaN')
    response = service.client().post(URL, raw, content_type="application/json")
    assert response.status_code == 400
    assert not Decision.objects.exists()


def test_without_a_champion_it_asks_for_one_or_a_client_score(erin, service, tiny_artifact):
    from tests.fixtures import register_tiny

    model = register_tiny(erin, [service.user])
    registry.version_upload(model=model, artifact=tiny_artifact, actor=erin)
    response = post(service, item(1))
    assert response.status_code == 400
    assert "no champion version" in response.json()["error"]["fields"]["model"][0]
    assert post(service, item(1, version=1)).status_code == 201  # a named candidate is fine
    assert post(service, item(2, outcome="approve", confidence=0.9)).status_code == 201


def test_a_retired_version_is_not_used_for_scoring(tiny_model, service, erin, tiny_artifact):
    v2 = registry.version_upload(model=tiny_model, artifact=tiny_artifact, actor=erin)
    registry.version_promote(version=v2, actor=erin)
    assert ModelVersion.objects.get(number=1).status == "retired"
    response = post(service, item(1, version=1))
    assert response.status_code == 400
    assert "retired" in response.json()["error"]["fields"]["version"][0]
    assert post(service, item(1)).json()["model_version"] == 2


# --- idempotency --------------------------------------------------------------------------------


def test_the_same_external_id_and_body_returns_the_stored_decision(tiny_model, service):
    first = post(service, item(1))
    again = post(service, item(1))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert Decision.objects.count() == 1
    assert AuditEvent.objects.filter(action="decision.ingested").count() == 1


def test_equal_numbers_written_differently_are_the_same_body(tiny_model, service):
    post(service, item(1, features={"income": 120}))
    assert post(service, item(1, features={"income": 120.0})).status_code == 200


def test_the_same_external_id_with_a_different_body_is_a_409_and_stores_nothing(
    tiny_model, service
):
    first = post(service, item(1)).json()
    response = post(service, item(1, features={"income": 121.0}))
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "idempotency_conflict"
    assert f"decision {first['id']}" in error["fields"]["external_id"][0]
    assert Decision.objects.count() == 1


def test_external_ids_are_unique_per_model_not_globally(tiny_model, service, erin, tiny_artifact):
    from tests.fixtures import register_tiny

    other = register_tiny(erin, [service.user], name="tiny-two")
    version = registry.version_upload(model=other, artifact=tiny_artifact, actor=erin)
    registry.version_promote(version=version, actor=erin)
    assert post(service, item(1)).status_code == 201
    assert post(service, item(1, model="tiny-two")).status_code == 201


# --- bulk ---------------------------------------------------------------------------------------


def test_bulk_stores_all_items_and_reports_each(tiny_model, service):
    items = [item(n) for n in range(1, 6)]
    response = post(service, {"items": items}, url=URL + "bulk/")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["created"], body["existing"]) == (5, 0)
    assert [r["index"] for r in body["items"]] == [0, 1, 2, 3, 4]
    assert Decision.objects.count() == 5
    assert AuditEvent.objects.filter(action="decision.ingested").count() == 5
    again = post(service, {"items": [*items, item(6)]}, url=URL + "bulk/").json()
    assert (again["created"], again["existing"]) == (1, 5)


def test_the_bulk_response_is_what_its_declared_serializer_renders(tiny_model, service, erin):
    # The view builds the body directly (reviews.api._bulk_item); it must stay what the
    # schema's BulkResultOut would render: the same keys, in its order, with its types.
    from reviews.api import BulkResultOut

    post(service, {"items": [item(1)]}, url=URL + "bulk/")
    registry.policy_update(
        model=tiny_model, changes={"confidence_threshold": 0.6}, actor=erin, note="test"
    )
    items = [
        *(item(n) for n in range(1, 4)),
        item(4, outcome="approve", confidence=0.5),  # routed: low confidence
        item(5, outcome="deny", confidence=0.95),  # not routed
    ]
    response = post(service, {"items": items}, url=URL + "bulk/")
    body = response.json()
    assert {i["routed"] for i in body["items"]} == {True, False}
    assert {i["created"] for i in body["items"]} == {True, False}
    rendered = BulkResultOut(body).data
    assert json.dumps(body) == json.dumps(rendered)
    assert response.content == json.dumps(rendered, separators=(",", ":")).encode()


def test_one_bad_item_fails_the_whole_batch_listing_every_bad_item(tiny_model, service):
    items = [item(1), item(2, features={"income": -1}), item(3), item(4, external_id="")]
    response = post(service, {"items": items}, url=URL + "bulk/")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) == {"items.1.features.income", "items.3.external_id"}
    assert not Decision.objects.exists()
    assert not ProtectedAttribute.objects.exists()
    assert not AuditEvent.objects.filter(action="decision.ingested").exists()


def test_bulk_refuses_more_than_a_thousand_items_or_none(tiny_model, service):
    for items in ([], [item(n) for n in range(1001)], None):
        response = post(service, {"items": items}, url=URL + "bulk/")
        assert response.status_code == 400
        assert "1 to 1000" in response.json()["error"]["fields"]["items"][0]


def test_a_repeated_item_in_one_batch_is_stored_once(tiny_model, service):
    body = post(service, {"items": [item(1), item(1)]}, url=URL + "bulk/").json()
    assert body["items"][0]["id"] == body["items"][1]["id"]
    assert (body["created"], body["existing"]) == (1, 1)
    response = post(service, {"items": [item(2), item(2, subject_ref="x")]}, url=URL + "bulk/")
    assert response.status_code == 409
    assert "items.1.external_id" in response.json()["error"]["fields"]
    assert Decision.objects.count() == 1


def test_a_conflict_with_a_stored_decision_fails_the_batch(tiny_model, service):
    post(service, item(1))
    items = [item(2), item(1, features={"debt": 50.0})]
    response = post(service, {"items": items}, url=URL + "bulk/")
    assert response.status_code == 409
    assert "items.1.external_id" in response.json()["error"]["fields"]
    assert Decision.objects.count() == 1


# --- who may send and read -------------------------------------------------------------------


def test_only_model_services_send_decisions(tiny_model, erin, dave):
    for user in (erin, dave):
        assert api(user).post(URL, item(1), format="json").status_code == 403
        assert api(user).post(URL + "bulk/", {"items": [item(1)]}, format="json").status_code == 403


def test_a_service_not_granted_the_model_cannot_send_or_read(tiny_model, service, other_service):
    response = post(other_service, item(1))
    assert response.status_code == 400
    assert "not found or not granted" in response.json()["error"]["fields"]["model"][0]
    decision_id = post(service, item(1)).json()["id"]
    assert other_service.client().get(f"{URL}{decision_id}/").status_code == 404
    assert other_service.client().get(URL).json()["results"] == []


def test_protected_attributes_are_shown_only_to_auditors(tiny_model, service, dave, carol, erin):
    decision_id = post(service, item(1)).json()["id"]
    assert api(dave).get(f"{URL}{decision_id}/").json()["groups"] == {
        "race": "white",
        "sex": "female",
    }
    for client in (api(carol), api(erin), service.client()):
        assert client.get(f"{URL}{decision_id}/").json()["groups"] is None


def test_the_list_filters_and_names_bad_filters(tiny_model, service, erin, dave):
    registry.policy_update(
        model=tiny_model, changes={"random_audit_rate": 50.0}, actor=erin, note="test"
    )
    post(service, {"items": [item(n) for n in range(1, 21)]}, url=URL + "bulk/")
    routed = Decision.objects.filter(routed=True).count()
    assert 0 < routed < 20
    client = api(dave)
    assert len(client.get(URL, {"routed": "true"}).json()["results"]) == routed
    assert len(client.get(URL, {"reason": "random_audit"}).json()["results"]) == routed
    assert len(client.get(URL, {"status": "final"}).json()["results"]) == 20 - routed
    assert len(client.get(URL, {"model": "tiny", "page_size": 5}).json()["results"]) == 5
    assert client.get(URL, {"since": "2999-01-01T00:00:00Z"}).json()["results"] == []
    bad = client.get(URL, {"reason": "gut_feeling", "since": "yesterday"})
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"reason", "since"}


def test_the_list_pages_with_a_cursor(tiny_model, service, dave):
    post(service, {"items": [item(n) for n in range(1, 8)]}, url=URL + "bulk/")
    first = api(dave).get(URL, {"page_size": 5}).json()
    second = api(dave).get(first["next"]).json()
    ids = [d["id"] for d in first["results"] + second["results"]]
    assert len(ids) == len(set(ids)) == 7
    assert ids == sorted(ids, reverse=True)


# --- a client's own score and explanation ------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "confidence"), [("deny", 0.1), ("approve", 0.49), ("deny", 0.0)]
)
def test_a_clients_confidence_below_a_half_is_refused_for_a_binary_model(
    tiny_model, service, outcome, confidence
):
    response = post(service, item(1, outcome=outcome, confidence=confidence))
    assert response.status_code == 400
    (message,) = response.json()["error"]["fields"]["confidence"]
    assert f"probability of the outcome {outcome}" in message and "at least 0.5" in message
    assert not Decision.objects.exists()


def test_a_clients_confidence_of_exactly_a_half_is_a_tie_and_accepted(tiny_model, service):
    assert post(service, item(1, outcome="deny", confidence=0.5)).status_code == 201


CLIENT_EXPLANATION = {
    "method": "shap",
    "units": "probability",
    "towards": "approve",
    "contributions": [
        {"feature": "debt", "value": 10.0, "contribution": -0.21},
        {"feature": "history", "value": "good", "contribution": 0.05},
    ],
    "counterfactual": {
        "feature": "debt",
        "from": 10.0,
        "to": 42.5,
        "change": 32.5,
        "outcome": "deny",
        "alternatives": [{"feature": "history", "from": "good", "to": "poor", "outcome": "deny"}],
    },
}


def _explained(explanation: dict, n: int = 1) -> dict:
    return item(n, outcome="approve", confidence=0.8, explanation=explanation)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"top": ["debt"]}, "explanation.top"),
        ({"method": "linear_exact"}, "explanation.method"),
        ({"towards": "maybe"}, "explanation.towards"),
        ({"probability": 2}, "explanation.probability"),
        ({"contributions": "debt"}, "explanation.contributions"),
        ({"contributions": [{"feature": "debt", "contribution": 0.1}] * 6},
         "explanation.contributions"),
        ({"contributions": [{"feature": "colour", "contribution": 0.1}]},
         "explanation.contributions.0.feature"),
        ({"contributions": [{"feature": "debt"}]}, "explanation.contributions.0.contribution"),
        ({"contributions": [{"feature": "debt", "contribution": "big"}]},
         "explanation.contributions.0.contribution"),
        ({"contributions": [{"feature": "debt", "contribution": 0.1, "weight": 1}]},
         "explanation.contributions.0.weight"),
        ({"contributions": [{"feature": "debt", "value": "lots", "contribution": 0.1}]},
         "explanation.contributions.0.value"),
        ({"contributions": [{"feature": "debt", "contribution": 0.1}] * 2},
         "explanation.contributions.1.feature"),
        ({"counterfactual": "pay off your debt"}, "explanation.counterfactual"),
        ({"counterfactual": {**CLIENT_EXPLANATION["counterfactual"], "to": 500.0}},
         "explanation.counterfactual.to"),
        ({"counterfactual": {**CLIENT_EXPLANATION["counterfactual"], "outcome": "maybe"}},
         "explanation.counterfactual.outcome"),
        ({"counterfactual": {"feature": "debt", "outcome": "deny"}},
         "explanation.counterfactual.from"),
        ({"counterfactual": {**CLIENT_EXPLANATION["counterfactual"], "alternatives": [{}]}},
         "explanation.counterfactual.alternatives.0.feature"),
    ],
)  # fmt: skip
def test_a_client_explanation_not_of_oversights_shape_is_refused_naming_the_part(
    tiny_model, service, change, field
):
    response = post(service, _explained({**CLIENT_EXPLANATION, **change}))
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"], response.json()["error"]["fields"]
    assert not Decision.objects.exists()


def test_a_non_finite_number_in_a_client_explanation_is_a_400_naming_it(tiny_model, service):
    raw = json.dumps(_explained(CLIENT_EXPLANATION)).replace("-0.21", "1e400")
    response = service.client().post(URL, raw, content_type="application/json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert fields == {"explanation.contributions.0.contribution": ["must be a finite number, "
                                                                   "got inf"]}  # fmt: skip
    raw = json.dumps({"items": [item(1), _explained(CLIENT_EXPLANATION, 2)]})
    response = service.client().post(
        URL + "bulk/", raw.replace("-0.21", "1e400"), content_type="application/json"
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [
        "items.1.explanation.contributions.0.contribution"
    ]
    assert not Decision.objects.exists()


def test_a_client_explanation_of_oversights_shape_is_stored_and_reads_on_the_case_page(
    tiny_model, service
):
    from reviews.presentation import counterfactual_text, explanation_bars

    response = post(service, _explained(CLIENT_EXPLANATION))
    assert response.status_code == 201, response.json()
    stored = Decision.objects.get().explanation
    assert stored == CLIENT_EXPLANATION
    bars = explanation_bars(stored, tiny_model.features)["bars"]
    assert [bar["label"] for bar in bars] == ["Debt", "History"]
    sentences = counterfactual_text(stored["counterfactual"], tiny_model.features)
    assert sentences[0] == "The outcome would have been deny if debt had been 42.5 instead of 10."


def test_oversights_own_explanation_sent_back_by_a_client_is_accepted(tiny_model, service):
    own = post(service, item(1)).json()["explanation"]
    body = item(2, outcome="approve", confidence=0.9, explanation={**own, "method": "replayed"})
    response = post(service, body)
    assert response.status_code == 201, response.json()


# --- optional features ------------------------------------------------------------------------


@pytest.fixture
def old_version_without_imputer(erin, service, tiny_artifact):
    """A model whose `debt` is optional, with a champion stored before uploads were checked
    for scoring without optional features: it has no imputer, so a missing debt is NaN to it."""
    import hashlib

    from django.utils import timezone

    from models_registry import explain
    from tests.models_registry.test_registry_api import OPTIONAL_DEBT

    model = registry.model_register(
        name="tiny", labels=["approve", "deny"], favourable_label="approve",
        features=OPTIONAL_DEBT, protected_attributes=["race", "sex"], owner=erin,
        services=[service.user], actor=erin,
        policy={"confidence_threshold": 0.0, "random_audit_rate": 0.0},
    )  # fmt: skip
    return ModelVersion.objects.create(
        model=model, number=1, status="champion", artifact=tiny_artifact,
        sha256=hashlib.sha256(tiny_artifact).hexdigest(), size_bytes=len(tiny_artifact),
        explainer=explain.LINEAR, baseline=explain.default_baseline(OPTIONAL_DEBT),
        created_at=timezone.now(),
    )  # fmt: skip


def test_a_version_that_cannot_score_a_missing_optional_feature_gives_a_400_naming_it(
    old_version_without_imputer, service
):
    without_debt = item(1)
    del without_debt["features"]["debt"]
    response = post(service, without_debt)
    assert response.status_code == 400, response.content
    (message,) = response.json()["error"]["fields"]["features.debt"]
    assert "was left out, and version 1 of tiny cannot score without it" in message
    response = post(service, {"items": [item(2), without_debt]}, url=URL + "bulk/")
    assert list(response.json()["error"]["fields"]) == ["items.1.features.debt"]
    assert not Decision.objects.exists()
    assert post(service, item(3)).status_code == 201  # with debt, it scores as before


def test_a_version_that_imputes_scores_and_explains_a_decision_without_the_feature(erin, service):
    import skops.io as sio

    from tests.models_registry.test_registry_api import imputing_pipeline, register_optional_debt

    model = register_optional_debt(erin, service)
    registry.policy_update(model=model, changes={"random_audit_rate": 0.0}, actor=erin, note="test")
    artifact = sio.dumps(imputing_pipeline())
    version = registry.version_upload(model=model, artifact=artifact, actor=erin)
    registry.version_promote(version=version, actor=erin)
    without_debt = item(1, groups={})
    del without_debt["features"]["debt"]
    response = post(service, without_debt)
    assert response.status_code == 201, response.json()
    contributions = response.json()["explanation"]["contributions"]
    assert {c["feature"]: c["value"] for c in contributions}["debt"] is None
