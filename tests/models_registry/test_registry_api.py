from __future__ import annotations

import json

import pytest
import skops.io as sio
from django.core.files.uploadedfile import SimpleUploadedFile
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from audit.models import AuditEvent
from models_registry.models import MLModel, ModelVersion, RoutingPolicy
from tests.fixtures import TINY_FEATURES, api, register_tiny, tiny_pipeline, tiny_training_data

pytestmark = pytest.mark.django_db

BODY = {
    "name": "mortgage-approval",
    "task": "binary_classification",
    "labels": ["approve", "deny"],
    "favourable_label": "approve",
    "features": [
        {"name": "income", "type": "number", "min": 0, "required": True, "actionable": True,
         "description": "Applicant income, $1000s"},
        {"name": "credit_history", "type": "category", "choices": ["good", "fair", "poor"]},
    ],
    "protected_attributes": ["race", "sex"],
    "card": {"intended_use": "Mortgages.", "out_of_scope": "Cars.", "limitations": "Old data.",
             "training_data": "HMDA.", "contact": "erin@example.org"},
}  # fmt: skip


def test_a_model_owner_registers_a_model_with_the_documented_body(erin):
    response = api(erin).post("/api/v1/models/", BODY, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "mortgage-approval"
    assert body["owner"] == "erin"
    assert body["features"][0]["actionable"] is True
    assert body["features"][1]["required"] is True  # the default
    assert body["card"]["limitations"] == "Old data."
    assert body["policy"]["version"] == 1
    model = MLModel.objects.get()
    assert model.protected_attributes == ["race", "sex"]
    event = AuditEvent.objects.get(action="model.registered")
    assert json.loads(event.payload)["features"][1]["choices"] == ["good", "fair", "poor"]
    assert AuditEvent.objects.filter(action="policy.created").count() == 1


def test_a_service_that_registers_a_model_may_send_its_decisions(service):
    response = service.client().post("/api/v1/models/", BODY, format="json")
    assert response.status_code == 201
    assert MLModel.objects.get().services.filter(pk=service.user.pk).exists()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"labels": ["approve"]}, "labels", "exactly two labels"),
        ({"favourable_label": "maybe"}, "favourable_label", "must be one of the labels"),
        ({"features": []}, "features", "non-empty list"),
        ({"features": [{"name": "income", "type": "money"}]}, "features.0.type", "valid choice"),
        ({"features": [{"name": "x", "type": "number", "min": 5, "max": 1}]}, "features.0.max",
         "must not be less than min"),
        ({"features": [{"name": "x", "type": "category"}]}, "features.0.choices",
         "distinct non-empty strings"),
        ({"features": [{"name": "x"}, {"name": "x"}]}, "features.1.name", "duplicate"),
        ({"features": [{"name": "x", "type": "boolean", "min": 0}]}, "features.0.min",
         "apply to number and integer"),
        ({"protected_attributes": ["income"]}, "protected_attributes",
         "cannot be both a feature and a protected attribute"),
        ({"name": "Not A Slug!"}, "name", "slug"),
    ],
)  # fmt: skip
def test_bad_registrations_name_the_field_and_store_nothing(erin, change, field, message):
    response = api(erin).post("/api/v1/models/", {**BODY, **change}, format="json")
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"], error
    assert message in " ".join(error["fields"][field]).lower() or message in str(error)
    assert not MLModel.objects.exists()
    assert not AuditEvent.objects.filter(action="model.registered").exists()


def test_registering_a_name_twice_is_a_conflict(erin):
    assert api(erin).post("/api/v1/models/", BODY, format="json").status_code == 201
    response = api(erin).post("/api/v1/models/", BODY, format="json")
    assert response.status_code == 409
    assert "is not available" in response.json()["error"]["message"]


def test_reviewers_and_auditors_may_read_but_not_register(alice, dave):
    for user in (alice, dave):
        assert api(user).post("/api/v1/models/", BODY, format="json").status_code == 403
        assert api(user).get("/api/v1/models/").status_code == 200


# --- versions ---------------------------------------------------------------------------------


def upload(client, artifact: bytes, **fields):
    data = {"artifact": SimpleUploadedFile("model.skops", artifact), **fields}
    return client.post("/api/v1/models/tiny/versions/", data, format="multipart")


def test_an_owner_uploads_a_skops_version_with_metrics(erin, service, tiny_artifact):
    register_tiny(erin, [service.user])
    metrics = {"overall": {"auc": 0.9}, "by_group": {"race": {"black": {"auc": 0.85}}}}
    response = upload(api(erin), tiny_artifact, metrics=json.dumps(metrics))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["number"] == 1 and body["status"] == "candidate"
    assert body["explainer"] == "linear_exact"
    assert body["metrics"] == metrics
    version = ModelVersion.objects.get()
    import hashlib

    assert version.sha256 == body["sha256"] == hashlib.sha256(tiny_artifact).hexdigest()
    assert bytes(version.artifact) == tiny_artifact
    assert AuditEvent.objects.filter(action="version.registered").count() == 1


def _double(X):
    return X * 2


def test_an_untrusted_type_in_the_artifact_is_refused_with_a_clear_400(erin, service):
    register_tiny(erin, [service.user])
    X, y = tiny_training_data()
    sneaky = Pipeline(
        [
            ("prepare", ColumnTransformer([("f", FunctionTransformer(_double), ["income"])])),
            ("classify", LogisticRegression()),
        ]
    ).fit(X, y)
    response = upload(api(erin), sio.dumps(sneaky))
    assert response.status_code == 400
    error = response.json()["error"]
    assert "not trusted" in error["fields"]["artifact"][0]
    assert "test_registry_api._double" in error["fields"]["artifact"][0]
    assert not ModelVersion.objects.exists()


def test_a_pickle_is_not_a_skops_file(erin, service):
    import pickle

    register_tiny(erin, [service.user])
    response = upload(api(erin), pickle.dumps(tiny_pipeline()))
    assert response.status_code == 400
    assert "not a readable skops file" in response.json()["error"]["fields"]["artifact"][0]


def test_an_artifact_whose_classes_are_not_the_labels_is_refused(erin, service):
    register_tiny(erin, [service.user])
    X, y = tiny_training_data()
    relabelled = tiny_pipeline().fit(X.astype({"bankrupt": float}), [f"{v}!" for v in y])
    response = upload(api(erin), sio.dumps(relabelled))
    assert response.status_code == 400
    assert "the model's labels are" in response.json()["error"]["fields"]["artifact"][0]


def test_an_artifact_fitted_on_other_columns_is_refused(erin, service):
    register_tiny(erin, [service.user])
    X, y = tiny_training_data()
    other = LogisticRegression().fit(X[["income", "debt"]], y)
    response = upload(api(erin), sio.dumps(other))
    assert response.status_code == 400
    assert "was fitted on columns" in response.json()["error"]["fields"]["artifact"][0]


def test_a_tree_model_is_explained_by_the_model_agnostic_method(erin, service):
    register_tiny(erin, [service.user])
    forest = tiny_pipeline(RandomForestClassifier(n_estimators=5, random_state=0))
    response = upload(api(erin), sio.dumps(forest))
    assert response.status_code == 201, response.json()
    assert response.json()["explainer"] == "replace_with_baseline"


def test_someone_elses_model_owner_may_not_upload_or_promote(erin, service, tiny_artifact):
    from tests.fixtures import make_user

    register_tiny(erin, [service.user])
    mallory = make_user("mallory", "model_owner")
    assert upload(api(mallory), tiny_artifact).status_code == 403
    assert upload(api(erin), tiny_artifact).status_code == 201
    promote = "/api/v1/models/tiny/versions/1/promote/"
    assert api(mallory).post(promote).status_code == 403
    assert service.client().post(promote).status_code == 403  # services may not promote
    assert api(erin).post(promote).status_code == 200


def test_promotion_keeps_one_champion_and_retires_the_old_one(erin, service, tiny_artifact):
    register_tiny(erin, [service.user])
    upload(api(erin), tiny_artifact)
    upload(api(erin), tiny_artifact, notes="retrained")
    client = api(erin)
    assert client.post("/api/v1/models/tiny/versions/1/promote/").json()["status"] == "champion"
    # No holdout to measure version 2 on: the promotion gate (learning) wants a justification.
    why = {"justification": "Same training data; re-registered with new notes."}
    second = client.post("/api/v1/models/tiny/versions/2/promote/", why, format="json")
    assert second.json()["status"] == "champion"
    statuses = dict(ModelVersion.objects.values_list("number", "status"))
    assert statuses == {1: "retired", 2: "champion"}
    event = AuditEvent.objects.filter(action="version.promoted").last()
    assert json.loads(event.payload)["previous_champion"] == 1
    assert event.actor == "user:erin"
    again = client.post("/api/v1/models/tiny/versions/2/promote/")
    assert again.status_code == 409


# --- policy -----------------------------------------------------------------------------------


def test_a_policy_change_is_a_new_version_audited_before_and_after(erin, service):
    register_tiny(erin, [service.user])
    rules = [{"name": "big-denial", "when": {"all": [
        {"field": "outcome", "op": "eq", "value": "deny"},
        {"field": "income", "op": "ge", "value": 100}]}}]  # fmt: skip
    response = api(erin).put(
        "/api/v1/models/tiny/policy/",
        {"confidence_threshold": 0.8, "high_stakes": rules, "note": "tighter"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["version"] == 2 and body["confidence_threshold"] == 0.8
    assert any("big-denial" in line for line in body["in_words"])
    assert RoutingPolicy.objects.count() == 2  # the old version is kept
    event = AuditEvent.objects.get(action="policy.updated")
    payload = json.loads(event.payload)
    assert payload["before"]["confidence_threshold"] == 0.0
    assert payload["after"]["confidence_threshold"] == 0.8
    assert payload["note"] == "tighter"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"confidence_threshold": 1.5}, "confidence_threshold"),
        ({"random_audit_rate": -1}, "random_audit_rate"),
        ({"reviewers_required": 3}, "reviewers_required"),
        ({"sla_hours": 0}, "sla_hours"),
        ({"high_stakes": [{"name": "x", "when": {"field": "nope", "op": "eq", "value": 1}}]},
         "high_stakes.0.when.field"),
        ({"high_stakes": [{"name": "x", "when": {"field": "history", "op": "gt", "value": "a"}}]},
         "high_stakes.0.when.op"),
    ],
)  # fmt: skip
def test_a_bad_policy_is_refused_and_names_the_setting(erin, service, change, field):
    register_tiny(erin, [service.user])
    body = {**change, "note": "A test of a bad setting."}
    response = api(erin).put("/api/v1/models/tiny/policy/", body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"]
    assert RoutingPolicy.objects.count() == 1


def test_only_the_owner_changes_the_policy(erin, service, alice):
    from tests.fixtures import make_user

    register_tiny(erin, [service.user])
    mallory = make_user("mallory", "model_owner")
    body = {"review_all": True}
    assert api(mallory).put("/api/v1/models/tiny/policy/", body, format="json").status_code == 403
    assert api(alice).put("/api/v1/models/tiny/policy/", body, format="json").status_code == 403
    assert (
        service.client().put("/api/v1/models/tiny/policy/", body, format="json").status_code == 403
    )
    assert api(alice).get("/api/v1/models/tiny/policy/").status_code == 200


# --- cards ------------------------------------------------------------------------------------


def test_the_card_in_markdown_shows_text_versions_metrics_and_policy(tiny_model, erin):
    version = tiny_model.versions.get()
    version.metrics = {"overall": {"auc": 0.91}, "by_group": {"race": {"black": {"auc": 0.8}}}}
    ModelVersion.objects.filter(pk=version.pk).update(metrics=version.metrics)
    response = api(erin).get("/api/v1/models/tiny/card.md")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/markdown")
    text = response.content.decode()
    assert "# Model card: tiny" in text
    assert "Synthetic data." in text
    assert version.sha256 in text
    assert "By race" in text and "| black | 0.800 |" in text
    assert "Low confidence alone does not send a decision to a person." in text


def test_the_card_page_shows_the_same_and_offers_promotion_only_to_the_owner(
    tiny_model, erin, alice
):
    from django.test import Client

    client = Client()
    client.force_login(erin)
    page = client.get("/models/tiny/").content.decode()
    assert tiny_model.versions.get().sha256 in page
    assert "Change the policy" in page
    client.force_login(alice)
    page = client.get("/models/tiny/").content.decode()
    assert "Change the policy" not in page


def test_services_see_only_their_models(tiny_model, other_service, service):
    assert [m["name"] for m in service.client().get("/api/v1/models/").json()] == ["tiny"]
    assert other_service.client().get("/api/v1/models/").json() == []
    assert other_service.client().get("/api/v1/models/tiny/").status_code == 404


def test_feature_bounds_keep_their_type(erin):
    body = {**BODY, "features": TINY_FEATURES}
    assert api(erin).post("/api/v1/models/", body, format="json").status_code == 201
    years = MLModel.objects.get().feature("years")
    assert years["max"] == 50 and isinstance(years["max"], int)


# --- unknown keys are refused, not dropped ---------------------------------------------------


def test_it_refuses_a_misspelt_policy_setting_instead_of_ignoring_it(erin, service):
    register_tiny(erin, [service.user])
    response = api(erin).put(
        "/api/v1/models/tiny/policy/", {"confidence_treshold": 0.8}, format="json"
    )
    assert response.status_code == 400, response.json()
    (message,) = response.json()["error"]["fields"]["confidence_treshold"]
    assert message.startswith("is not a policy field; fields are confidence_threshold, ")
    assert RoutingPolicy.objects.count() == 1


def test_it_names_unknown_and_bad_policy_settings_together(erin, service):
    register_tiny(erin, [service.user])
    body = {"confidence_treshold": 0.8, "sla_hours": "soon"}
    response = api(erin).put("/api/v1/models/tiny/policy/", body, format="json")
    fields = set(response.json()["error"]["fields"])
    assert fields == {"confidence_treshold", "sla_hours", "note"}  # the note is required too


def test_a_policy_change_without_a_note_is_refused_and_names_it(erin, service):
    register_tiny(erin, [service.user])
    response = api(erin).put("/api/v1/models/tiny/policy/", {"sla_hours": 12}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"note"}
    bad = {"sla_hours": 0, "note": "  "}
    response = api(erin).put("/api/v1/models/tiny/policy/", bad, format="json")
    assert set(response.json()["error"]["fields"]) == {"sla_hours", "note"}
    assert RoutingPolicy.objects.count() == 1


def test_a_policy_read_back_and_sent_again_with_a_change_is_accepted(erin, service):
    register_tiny(erin, [service.user])
    client = api(erin)
    policy = client.get("/api/v1/models/tiny/policy/").json()
    response = client.put("/api/v1/models/tiny/policy/", {**policy, "sla_hours": 12}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["sla_hours"] == 12


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"features": [{"name": "income", "type": "number", "maximum": 10}]},
         "features.0.maximum"),
        ({"colour": "red"}, "colour"),
        ({"card": {"intended_usage": "typo"}}, "card.intended_usage"),
        ({"policy": {"review_everything": True}}, "policy.review_everything"),
    ],
)  # fmt: skip
def test_a_registration_with_an_unknown_key_is_refused_naming_it(erin, change, field):
    response = api(erin).post("/api/v1/models/", {**BODY, **change}, format="json")
    assert response.status_code == 400, response.json()
    assert "is not a" in response.json()["error"]["fields"][field][0]
    assert not MLModel.objects.exists()


def test_a_version_upload_with_an_unknown_field_is_refused(erin, service, tiny_artifact):
    register_tiny(erin, [service.user])
    response = upload(api(erin), tiny_artifact, metric=json.dumps({"overall": {"auc": 0.9}}))
    assert response.status_code == 400
    assert "metric" in response.json()["error"]["fields"]
    assert not ModelVersion.objects.exists()


# --- who owns a registered model --------------------------------------------------------------


def test_a_model_owner_who_registers_owns_the_model_and_may_not_name_another(erin):
    from tests.fixtures import make_user

    make_user("mallory", "model_owner")
    response = api(erin).post("/api/v1/models/", {**BODY, "owner": "mallory"}, format="json")
    assert response.status_code == 400
    assert "leave owner out" in response.json()["error"]["fields"]["owner"][0]
    response = api(erin).post("/api/v1/models/", {**BODY, "owner": "erin"}, format="json")
    assert response.status_code == 201 and response.json()["owner"] == "erin"


def test_a_service_that_registers_may_name_a_model_owner_as_owner(service, erin):
    response = service.client().post("/api/v1/models/", {**BODY, "owner": "erin"}, format="json")
    assert response.status_code == 201, response.json()
    model = MLModel.objects.get()
    assert model.owner == erin
    assert list(model.services.all()) == [service.user]


@pytest.mark.parametrize(
    ("owner", "message"),
    [("alice", "does not have the model_owner role"), ("nobody", "no user named 'nobody'")],
)
def test_a_service_may_not_name_an_owner_who_is_not_a_model_owner(service, alice, owner, message):
    response = service.client().post("/api/v1/models/", {**BODY, "owner": owner}, format="json")
    assert response.status_code == 400
    assert message in response.json()["error"]["fields"]["owner"][0]
    assert not MLModel.objects.exists()


def test_services_may_name_only_model_services(erin, service, alice):
    body = {**BODY, "services": [service.user.username, "alice", "nobody"]}
    response = api(erin).post("/api/v1/models/", body, format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) == {"services.2"}  # unknown users first: nothing else is checked yet
    body["services"] = [service.user.username, "alice"]
    fields = api(erin).post("/api/v1/models/", body, format="json").json()["error"]["fields"]
    assert fields == {"services.1": ["alice does not have the model_service role"]}
    body["services"] = [service.user.username]
    assert api(erin).post("/api/v1/models/", body, format="json").status_code == 201
    assert list(MLModel.objects.get().services.all()) == [service.user]


# --- a name registered twice at the same moment -------------------------------------------------


def test_a_name_registered_by_someone_else_between_look_and_insert_is_a_409(erin):
    """The race, on one connection: the rival's row is there, but reads before our INSERT do
    not see it (as when the rival commits just after we looked)."""
    from django.db import connection

    rival = register_tiny(erin, [], name=BODY["name"])

    def committed_after_we_looked(execute, sql, params, many, context):
        if sql.startswith('INSERT INTO "models_registry_mlmodel" '):
            committed_after_we_looked.visible = True
        elif not committed_after_we_looked.visible and '"models_registry_mlmodel"' in sql:
            params = [("not-" + p) if p == rival.name else p for p in params]
        return execute(sql, params, many, context)

    committed_after_we_looked.visible = False
    with connection.execute_wrapper(committed_after_we_looked):
        response = api(erin).post("/api/v1/models/", BODY, format="json")
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "name_not_available"
    assert "is not available" in response.json()["error"]["message"]
    assert MLModel.objects.get() == rival
    assert AuditEvent.objects.filter(action="model.registered").count() == 1


# --- who may upload ---------------------------------------------------------------------------


def test_an_owner_who_lost_the_model_owner_role_may_not_upload(erin, service, tiny_artifact):
    from django.contrib.auth.models import User

    from core import roles as r

    register_tiny(erin, [service.user])
    erin.groups.set(r.groups(r.REVIEWER))  # moved to reviewing; still listed as the owner
    erin = User.objects.get(pk=erin.pk)  # roles are cached per user object
    assert upload(api(erin), tiny_artifact).status_code == 403
    assert upload(service.client(), tiny_artifact).status_code == 201  # a granted service may
    assert ModelVersion.objects.count() == 1


# --- metrics ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metrics", "field"),
    [
        ('{"overall": 5}', "metrics.overall"),
        ('{"overall": [0.9, 0.8]}', "metrics.overall"),
        ('{"by_group": [0.9]}', "metrics.by_group"),
        ('{"by_group": {"race": [0.9]}}', "metrics.by_group.race"),
        ('{"by_group": {"race": {"black": 0.9}}}', "metrics.by_group.race.black"),
        ('{"overall": {"auc": 1e400}}', "metrics.overall.auc"),
        ('{"overall": {"auc": "high"}}', "metrics.overall.auc"),
        ('{"overall": {"auc": true}}', "metrics.overall.auc"),
        ('{"by_group": {"race": {"black": {"auc": 1e400}}}}', "metrics.by_group.race.black.auc"),
        ('{"overal": {"auc": 0.9}}', "metrics.overal"),
        ("[1, 2]", "metrics"),
    ],
)
def test_metrics_of_the_wrong_shape_are_refused_naming_the_entry(
    erin, service, tiny_artifact, metrics, field
):
    register_tiny(erin, [service.user])
    response = upload(api(erin), tiny_artifact, metrics=metrics)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"], response.json()
    assert not ModelVersion.objects.exists()


def test_metrics_as_the_demo_sends_them_are_accepted(erin, service, tiny_artifact):
    register_tiny(erin, [service.user])
    scores = {"n": 80, "accuracy": 0.91, "false_denial_rate": None, "auc": 0.88}
    metrics = {"overall": scores, "by_group": {"race": {"black": scores, "white": scores}}}
    response = upload(api(erin), tiny_artifact, metrics=json.dumps(metrics))
    assert response.status_code == 201, response.json()
    assert response.json()["metrics"] == metrics


def test_the_card_leaves_out_metrics_of_an_old_row_that_are_not_tables(tiny_model, erin):
    from django.test import Client

    bad = {"overall": 5, "by_group": [1, 2]}
    ModelVersion.objects.filter(model=tiny_model).update(metrics=bad)
    assert api(erin).get("/api/v1/models/tiny/card.md").status_code == 200
    client = Client()
    client.force_login(erin)
    assert client.get("/models/tiny/").status_code == 200


# --- optional features ------------------------------------------------------------------------

OPTIONAL_DEBT = [{**f, "required": False} if f["name"] == "debt" else f for f in TINY_FEATURES]


def register_optional_debt(owner, service):
    from models_registry import services as registry

    return registry.model_register(
        name="tiny",
        labels=["approve", "deny"],
        favourable_label="approve",
        features=OPTIONAL_DEBT,
        owner=owner,
        services=[service.user],
        actor=owner,
    )


def imputing_pipeline() -> Pipeline:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = tiny_training_data()
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    prepare = ColumnTransformer(
        [
            ("numbers", numeric, ["income", "debt", "years", "bankrupt"]),
            ("encode", OneHotEncoder(handle_unknown="ignore"), ["history"]),
        ]
    )
    pipeline = Pipeline([("prepare", prepare), ("classify", LogisticRegression(max_iter=1000))])
    return pipeline.fit(X.astype({"bankrupt": float}), y)


def test_a_version_that_cannot_score_without_an_optional_feature_is_refused(
    erin, service, tiny_artifact
):
    register_optional_debt(erin, service)
    response = upload(api(erin), tiny_artifact)  # no imputer: a missing debt is NaN to it
    assert response.status_code == 400
    (message,) = response.json()["error"]["fields"]["artifact"]
    assert "without the optional feature 'debt'" in message and "imputer" in message
    assert not ModelVersion.objects.exists()


def test_a_version_that_imputes_an_optional_feature_is_accepted(erin, service):
    register_optional_debt(erin, service)
    response = upload(api(erin), sio.dumps(imputing_pipeline()))
    assert response.status_code == 201, response.json()
