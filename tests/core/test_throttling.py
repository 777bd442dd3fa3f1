"""API throttles per caller and per address, a limit on guessed tokens, and the security
headers every page carries."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

from core.throttling import AnonThrottle, CallerThrottle
from tests.fixtures import PASSWORD, api

pytestmark = pytest.mark.django_db
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_a_caller_over_its_rate_gets_429_with_retry_after(dave, carol, monkeypatch):
    monkeypatch.setattr(CallerThrottle, "rate", "3/minute", raising=False)
    client = api(dave)
    codes = [client.get("/api/v1/decisions/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = client.get("/api/v1/decisions/")
    assert int(refused["Retry-After"]) > 0
    assert refused.json()["error"]["code"] == "throttled"
    # Another caller has a budget of its own.
    assert api(carol).get("/api/v1/decisions/").status_code == 200


def test_each_service_token_has_its_own_budget(service, monkeypatch):
    from accounts.services import service_token_create

    monkeypatch.setattr(CallerThrottle, "rate", "2/minute", raising=False)
    second = service_token_create(name="scorer", actor="test")[1]
    first = service.client()
    assert [first.get("/api/v1/models/").status_code for _ in range(3)] == [200, 200, 429]
    other = Client(HTTP_AUTHORIZATION=f"Token {second}")
    assert other.get("/api/v1/models/").status_code == 200


def test_requests_without_credentials_are_throttled_per_address(monkeypatch):
    # Endpoints that need a caller refuse anonymous requests before any throttle (401); the
    # public ones (the schema here) are throttled per address.
    monkeypatch.setattr(AnonThrottle, "rate", "2/minute", raising=False)
    client = Client()
    assert client.get("/api/v1/models/").status_code == 401
    codes = [client.get("/api/schema/").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert Client(REMOTE_ADDR="10.3.3.3").get("/api/schema/").status_code == 200


def test_guessing_tokens_is_stopped_for_the_address_even_with_a_good_token(service, settings):
    settings.API_BAD_TOKENS_PER_MINUTE = 5
    guesses = [
        Client(HTTP_AUTHORIZATION=f"Token ovs_guess{n}").get("/api/v1/models/").status_code
        for n in range(7)
    ]
    assert guesses == [401] * 5 + [429] * 2
    assert service.client().get("/api/v1/models/").status_code == 429
    other_address = Client(HTTP_AUTHORIZATION=f"Token {service.token}", REMOTE_ADDR="10.0.0.9")
    assert other_address.get("/api/v1/models/").status_code == 200


def test_pages_and_the_api_carry_a_content_security_policy(dave):
    client = Client()
    client.login(username="dave", password=PASSWORD)
    for path in ("/", "/audit/", "/api/docs/", "/api/v1/decisions/"):
        policy = client.get(path)["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        assert "'unsafe-inline'" not in policy and "frame-ancestors 'none'" in policy


def test_no_template_has_inline_script_or_style():
    inline_script = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I)
    inline_style = re.compile(r"\sstyle=|<style", re.I)
    handlers = re.compile(r"\son[a-z]+=", re.I)
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        for pattern in (inline_script, inline_style, handlers):
            assert not pattern.search(text), f"{path.relative_to(TEMPLATES)}: {pattern.pattern}"
