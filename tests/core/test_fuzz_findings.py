"""What the schemathesis run (tests/core/test_schemathesis.py) found, kept as plain tests that
run in the bare suite too."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.fixtures import api

pytestmark = pytest.mark.django_db


def test_a_post_to_a_path_that_names_no_endpoint_is_a_json_404_not_a_csrf_page(carol):
    client = Client(enforce_csrf_checks=True)
    client.force_login(carol)
    for path in ("/api/v1/alerts/null,null/acknowledge/", "/api/v1/nothing/"):
        response = client.post(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"]["code"] == "not_found"


def test_a_path_with_a_newline_is_a_json_404(erin):
    response = api(erin).get("/api/v1/models/a%0Ab/webhook/")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("who", "path"),
    [("carol", "/api/v1/appeals/"), ("erin", "/api/v1/models/tiny/labels/")],
)
def test_a_cursor_a_list_did_not_give_out_is_a_400_naming_it(who, path, tiny_model, carol, erin):
    user = {"carol": carol, "erin": erin}[who]
    for cursor in ("requested_by", "cD1hYmM=", "0\u0097u"):
        response = api(user).get(path, {"cursor": cursor})
        assert response.status_code == 400, (path, cursor, response.content)
        assert "cursor" in response.json()["error"]["fields"]
