"""Odd input gets a 400 (or 413, 404) in the API's error shape, never a 500 and never an HTML
page under /api/: text that cannot be stored, shapes that crashed lookups, garbage cursors,
large bodies, paths that name nothing."""

from __future__ import annotations

import base64
import json

import pytest
from django.test import Client

from audit.services import alert_raise
from reviews.models import Decision
from tests.fixtures import PASSWORD, api, item

pytestmark = pytest.mark.django_db

NUL = "\x00"
SURROGATE = "\ud800"


def post_raw(client, path: str, text: str, **extra):
    """A JSON body exactly as given (json.dumps escapes a lone surrogate as \\ud800)."""
    return client.generic("POST", path, text, content_type="application/json", **extra)


def error(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return response.json()["error"]


@pytest.mark.parametrize("model", [["x"], {}, {"name": "tiny"}, 7])
def test_a_model_that_is_not_a_name_is_a_400(tiny_model, service, model):
    response = service.client().post(
        "/api/v1/decisions/bulk/", {"items": [item(1, model=model)]}, format="json"
    )
    assert response.status_code == 400
    assert error(response)["fields"]["items.0.model"] == [
        "must be the name of a registered model (a string)"
    ]
    single = service.client().post("/api/v1/decisions/", item(1, model=model), format="json")
    assert single.status_code == 400 and "model" in error(single)["fields"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"groups": {"race": "bl" + NUL + "ack"}}, "items.0.groups.race"),
        ({"external_id": "app-" + SURROGATE}, "items.0.external_id"),
        ({"subject_ref": SURROGATE + "s"}, "items.0.subject_ref"),
        ({"groups": {"ra" + SURROGATE: "x"}}, "items.0.groups.<key 0>"),
        ({"colour" + SURROGATE: "red"}, "items.0.<key 0>"),
    ],
)
def test_text_that_cannot_be_stored_is_named_and_nothing_is_stored(
    tiny_model, service, change, field
):
    body = json.dumps({"items": [{**item(1), **change}]})
    response = post_raw(service.client(), "/api/v1/decisions/bulk/", body)
    assert response.status_code == 400, response.content
    assert field in error(response)["fields"]
    assert not Decision.objects.exists()


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        # Escapes, in either case of hex digit: the parser walks every string and names it.
        (b'"app-\\uDBFF"', "items.0.external_id"),
        (b'"app-\\u0000"', "items.0.external_id"),
        # Unescaped: a NUL byte or a surrogate's bytes never parse, so there is nothing to name.
        (b'"app-\x00"', None),
        (b'"app-\xed\xa0\x80"', None),
    ],
)
def test_nul_and_surrogates_are_refused_escaped_or_raw(tiny_model, service, raw, where):
    body = json.dumps({"items": [item(1, external_id="EXTERNAL")]}).encode()
    body = body.replace(b'"EXTERNAL"', raw)
    response = service.client().generic(
        "POST", "/api/v1/decisions/bulk/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    if where:
        assert where in error(response)["fields"]
    assert not Decision.objects.exists()


def test_a_backslash_before_u0000_is_text_like_any_other(tiny_model, service):
    # "\\u0000" in JSON is a backslash followed by "u0000": storable, not a NUL.
    body = json.dumps({"items": [item(1, external_id="app-\\u0000")]})
    response = post_raw(service.client(), "/api/v1/decisions/bulk/", body)
    assert response.status_code == 201, response.content
    assert Decision.objects.get().external_id == "app-\\u0000"


def test_nul_in_export_filters_is_a_400(dave):
    body = json.dumps({"format": "csv", "filters": {"model": "ti" + NUL + "ny"}})
    response = post_raw(api(dave), "/api/v1/exports/", body)
    assert response.status_code == 400
    assert error(response)["fields"] == {
        "filters.model": ["must not contain the NUL character (\\u0000)"]
    }


def test_nul_in_metric_keys_of_a_version_upload_is_a_400(tiny_model, erin, tiny_artifact):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = api(erin).post(
        "/api/v1/models/tiny/versions/",
        {
            "artifact": SimpleUploadedFile("m.skops", tiny_artifact),
            "metrics": json.dumps({"overall": {"acc" + NUL: 0.9}}),
        },
        format="multipart",
    )
    assert response.status_code == 400
    assert "metrics" in error(response)["fields"]


def test_nul_in_a_form_field_is_a_400_page_naming_the_field(alice):
    client = Client()
    client.login(username="alice", password=PASSWORD)
    response = client.post("/review/tasks/1/decide/", {"rationale": "because" + NUL})
    assert response.status_code == 400
    assert b"rationale" in response.content and b"NUL character" in response.content
    escalation = client.post("/review/tasks/1/escalate/", {"note": NUL})
    assert escalation.status_code == 400


def test_nul_in_a_query_string_is_a_400(dave):
    response = api(dave).get("/api/v1/decisions/", {"model": "x" + NUL})
    assert response.status_code == 400
    assert "model" in error(response)["fields"]


@pytest.mark.parametrize(
    "path", ["/api/v1/decisions/", "/api/v1/audit/checkpoints/", "/api/v1/alerts/"]
)
@pytest.mark.parametrize(
    "cursor",
    [
        base64.b64encode(b"p=abc").decode(),  # the cD1hYmM=
        base64.b64encode(b"p=99999999999999999999999").decode(),
        base64.b64encode(b"o=-1").decode(),
        "%%%not-base64",
        base64.b64encode(b"p=1\x00").decode(),
    ],
)
def test_a_cursor_that_was_not_given_out_is_a_400(dave, path, cursor):
    alert_raise(kind="k", message="m")
    response = api(dave).get(path, {"cursor": cursor})
    assert response.status_code == 400, response.content
    assert list(error(response)["fields"]) == ["cursor"]


def test_a_bulk_of_a_thousand_large_items_is_accepted(tiny_model, service):
    items = []
    for n in range(1000):
        body = item(n, external_id=f"x{n:05d}".ljust(200, "x"), subject_ref="s".ljust(200, "s"))
        body.update(outcome="approve", confidence=0.9)
        body["explanation"] = {
            "method": "m".ljust(100, "m"),
            "note": "n" * 2000,
            "contributions": [
                {"feature": f, "value": v, "contribution": 0.123456789}
                for f, v in [
                    ("income", 120.0),
                    ("debt", 10.0),
                    ("years", 5),
                    ("history", "good"),
                    ("bankrupt", False),
                ]
            ],
            "counterfactual": {
                "feature": "income",
                "from": 120.0,
                "to": 150.5,
                "outcome": "deny",
                "change": 30.5,
                "alternatives": [
                    {"feature": f, "from": 1.0, "to": 2.0, "outcome": "deny", "change": 1.0}
                    for f in ("income", "debt", "years")
                ]
                + [
                    {"feature": "history", "from": "good", "to": "fair", "outcome": "deny"},
                    {"feature": "bankrupt", "from": False, "to": True, "outcome": "deny"},
                ],
            },
            "units": "u" * 40,
            "towards": "approve",
            "base": 0.123456789,
            "log_odds": 1.23456789,
            "probability": 0.9,
            "baseline": {
                "income": 100.5,
                "debt": 10.25,
                "years": 5,
                "history": "good",
                "bankrupt": False,
            },
        }
        items.append(body)
    payload = json.dumps({"items": items})
    assert len(payload) / 1000 > 3800 and len(payload) > 2_621_440  # over Django's default cap
    response = post_raw(service.client(), "/api/v1/decisions/bulk/", payload)
    assert response.status_code == 201, response.content[:500]
    assert response.json()["created"] == 1000


def test_a_body_over_the_endpoints_limit_is_a_json_413(service, settings):
    big = "x" * (settings.REQUEST_BODY_LIMIT + 1)
    response = post_raw(service.client(), "/api/v1/decisions/", json.dumps({"pad": big}))
    assert response.status_code == 413
    assert error(response)["code"] == "too_large"
    bulk_limit = 1000 * settings.MAX_ITEM_BYTES + 64 * 1024
    over = post_raw(service.client(), "/api/v1/decisions/bulk/", "[" + " " * bulk_limit + "]")
    assert over.status_code == 413
    assert f"at most {bulk_limit:,} bytes" in error(over)["message"]


def test_an_item_larger_than_the_documented_maximum_is_named(tiny_model, service, settings):
    settings.MAX_ITEM_BYTES = 2048
    big = item(1, outcome="approve", confidence=0.9)
    big["explanation"] = {"method": "m", "note": "n" * 2000, "contributions": []}
    response = service.client().post("/api/v1/decisions/bulk/", {"items": [big]}, format="json")
    assert response.status_code == 400
    assert error(response)["fields"]["items.0"][0].startswith("is ")


@pytest.mark.parametrize("path", ["/api/v1/nothing/", "/api/v2/decisions/", "/api/v1/decisions"])
def test_a_path_under_api_that_names_nothing_is_a_json_404(dave, path):
    response = api(dave).get(path)
    assert response.status_code == 404
    body = error(response)
    assert body["code"] == "not_found"
    if path == "/api/v1/decisions":
        assert "Did you mean /api/v1/decisions/" in body["message"]


def test_an_empty_filter_is_left_out_and_a_null_claim_body_claims_from_the_whole_queue(dave, alice):
    # Documented: an empty query parameter is the same as leaving it out.
    response = api(dave).get("/api/v1/decisions/", {"until": "", "model": ""})
    assert response.status_code == 200
    bad = api(dave).get("/api/v1/decisions/", {"until": "yesterday"})
    assert bad.status_code == 400 and "until" in error(bad)["fields"]
    nothing = post_raw(api(alice), "/api/v1/review-tasks/claim/", "null")
    assert nothing.status_code == 204


def test_the_schema_documents_413_414_and_429_and_the_ranges_it_enforces():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    bulk = schema["paths"]["/api/v1/decisions/bulk/"]["post"]["responses"]
    assert {"413", "414", "429"} <= set(bulk)
    inclusion = schema["paths"]["/api/v1/audit/proofs/inclusion/"]["get"]["parameters"]
    seq = next(p for p in inclusion if p["name"] == "seq")
    assert seq["schema"]["minimum"] == 1
