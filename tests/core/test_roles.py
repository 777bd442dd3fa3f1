"""Every page and endpoint checks the role: a user without it gets 403, pages and API alike."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.fixtures import api

pytestmark = pytest.mark.django_db

PAGES = {
    "/review/": {"alice", "carol"},
    "/audit/": {"dave"},
    "/models/": {"alice", "carol", "dave", "erin"},
}
API = {
    "/api/v1/models/": {"alice", "carol", "dave", "erin", "service"},
    "/api/v1/decisions/": {"carol", "dave", "erin", "service"},
}


@pytest.fixture
def cast(alice, carol, dave, erin, frank, service):
    return {
        "alice": alice,
        "carol": carol,
        "dave": dave,
        "erin": erin,
        "frank": frank,
        "service": service.user,
    }


@pytest.mark.parametrize("path", PAGES)
def test_pages_admit_their_roles_and_refuse_the_rest_with_403(cast, path):
    for name, user in cast.items():
        client = Client()
        client.force_login(user)
        expected = 200 if name in PAGES[path] else 403
        assert client.get(path).status_code == expected, (name, path)


@pytest.mark.parametrize("path", PAGES)
def test_pages_send_anonymous_visitors_to_log_in(path):
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("path", API)
def test_api_admits_its_roles_and_refuses_the_rest_with_403(cast, path):
    for name, user in cast.items():
        response = api(user).get(path)
        expected = 200 if name in API[path] else 403
        assert response.status_code == expected, (name, path, response.content[:200])
        if expected == 403:
            assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize("path", API)
def test_api_refuses_anonymous_callers_with_401(path):
    response = api().get(path)
    assert response.status_code == 401


def test_home_shows_each_role_where_to_go(cast):
    expectations = {
        "alice": ["/review/"],
        "dave": ["/audit/", "/models/"],
        "erin": ["/models/"],
    }
    for name, paths in expectations.items():
        client = Client()
        client.force_login(cast[name])
        body = client.get("/").content.decode()
        for path in paths:
            assert f'href="{path}"' in body, (name, path)
    client = Client()
    client.force_login(cast["frank"])
    assert "no role yet" in client.get("/").content.decode()


def test_login_and_logout_pages_work(alice):
    client = Client()
    assert client.get("/accounts/login/").status_code == 200
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": "correct-horse-battery"}
    )
    assert response.status_code == 302
    assert client.get("/review/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/review/").status_code == 302
