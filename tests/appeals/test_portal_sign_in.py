"""Signing in to the portal: codes hashed and replaced, guessing stopped by a lockout and a
rate limit shared by every process (the database), one message for every refusal, every
failure audited without the code; sessions scoped to one decision, idle expiry, sign-out."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.hashers import check_password
from django.test import Client
from django.utils import timezone

from appeals import codes, portal, services
from appeals.models import DecisionAccess, SignInWindow
from audit import sealer
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued(denied, service):
    return services.access_code_issue(decision=denied, actor=service.user)


def sign_in(issued, code=None, address="203.0.113.7"):
    return services.portal_sign_in(
        reference=issued.reference, code=code or issued.access_code, client_address=address
    )


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_it_keeps_only_a_slow_hash_of_the_code_and_audits_its_issue(issued, denied):
    access = DecisionAccess.objects.get(decision=denied)
    plain = codes.normalize(issued.access_code)
    assert plain not in access.code_hash and check_password(plain, access.code_hash)
    assert len(plain) == codes.CODE_LENGTH and set(plain) <= set(codes.ALPHABET)
    (event,) = events("access_code.issued")
    assert event.object_id == str(denied.pk) and plain not in event.payload
    assert json.loads(event.payload)["replaced_previous"] is False


def test_the_reference_is_random_and_not_the_id(tiny_model, service, approved, denied):
    a = services.reference_ensure(decision=approved, actor="test").reference
    b = services.reference_ensure(decision=denied, actor="test").reference
    assert a != b and str(approved.pk) not in a and len(a) == codes.REFERENCE_LENGTH
    assert services.reference_ensure(decision=approved, actor="test").reference == a


def test_a_new_code_revokes_the_old_one(issued, denied, service):
    again = services.access_code_issue(decision=denied, actor=service.user)
    assert again.reference == issued.reference
    assert not sign_in(issued).ok
    assert sign_in(again).ok
    assert json.loads(events("access_code.issued")[-1].payload)["replaced_previous"] is True


def test_it_signs_in_with_any_spacing_and_case(issued):
    result = services.portal_sign_in(
        reference=issued.reference.lower().replace("-", " "),
        code=issued.access_code.lower(),
        client_address="203.0.113.7",
    )
    assert result.ok and result.access.decision_id == issued.access.decision_id


def test_it_locks_a_reference_after_five_failures_for_15_minutes_then_doubles(issued, settings):
    for _ in range(4):
        assert sign_in(issued, code="AAAA-AAAA-AAAA").outcome == "wrong_code"
    assert sign_in(issued, code="AAAA-AAAA-AAAA").outcome == "wrong_code"  # the fifth locks
    access = DecisionAccess.objects.get(pk=issued.access.pk)
    locked_for = access.locked_until - timezone.now()
    assert timedelta(minutes=14) < locked_for <= timedelta(minutes=15)
    # Locked: even the right code is refused, and says nothing different.
    assert sign_in(issued).outcome == "locked"
    (lock,) = events("portal.locked")
    assert json.loads(lock.payload)["lockouts"] == 1

    DecisionAccess.objects.filter(pk=access.pk).update(locked_until=timezone.now())
    for _ in range(5):
        sign_in(issued, code="BBBB-BBBB-BBBB")
    access.refresh_from_db()
    assert access.lockouts == 2
    assert timedelta(minutes=29) < access.locked_until - timezone.now() <= timedelta(minutes=30)

    DecisionAccess.objects.filter(pk=access.pk).update(locked_until=timezone.now())
    assert sign_in(issued).ok
    access.refresh_from_db()
    assert (access.failures, access.lockouts, access.locked_until) == (0, 0, None)


def test_every_failure_is_audited_without_the_code(issued):
    wrong = "CCCC-DDDD-EEEE"
    sign_in(issued, code=wrong)
    services.portal_sign_in(reference="ZZZ-ZZZ-ZZZ", code=wrong, client_address="203.0.113.7")
    failed = events("portal.sign_in_failed")
    assert [json.loads(e.payload)["reason"] for e in failed] == ["wrong_code", "unknown_reference"]
    sealer.seal_all()  # the texts that are hashed and kept, as sealed after the commits
    for event in AuditEvent.objects.all():
        assert "CCCCDDDDEEEE" not in event.canonical and wrong not in event.canonical
        assert codes.normalize(issued.access_code) not in event.canonical
        assert "203.0.113.7" not in event.canonical  # a keyed hash of the address only


def test_it_limits_attempts_per_client_address_whatever_the_reference(issued, settings):
    settings.PORTAL_RATE_LIMIT = 3
    for n in range(3):
        services.portal_sign_in(reference=f"NOPE{n}", code="X", client_address="198.51.100.1")
    assert sign_in(issued, address="198.51.100.1").outcome == "rate_limited"
    assert sign_in(issued, address="198.51.100.2").ok  # another address is not limited
    assert SignInWindow.objects.get(client=codes.client_key("198.51.100.1")).attempts == 4
    refused = [json.loads(e.payload)["reason"] for e in events("portal.sign_in_failed")]
    assert refused.count("rate_limited") == 1


def test_ipv6_clients_are_limited_by_their_64(issued, settings):
    settings.PORTAL_RATE_LIMIT = 2
    sign_in(issued, code="WRONG", address="2001:db8:1:2::1")
    sign_in(issued, code="WRONG", address="2001:db8:1:2::ffff")
    assert sign_in(issued, address="2001:db8:1:2:abcd::9").outcome == "rate_limited"


# --- the pages --------------------------------------------------------------------------------


def post_sign_in(client: Client, reference: str, code: str, **extra):
    return client.post(
        "/my-decision/sign-in/", {"reference": reference, "access_code": code}, **extra
    )


def test_the_page_says_the_same_thing_whichever_was_wrong(issued):
    bodies = []
    for reference, code in (
        (issued.reference, "WRONG-CODE-HERE"),  # a wrong code
        ("WRONG-REF-000", issued.access_code),  # a wrong reference
    ):
        response = post_sign_in(Client(), reference, code)
        assert response.status_code == 400
        bodies.append(response.content.decode())
    for _ in range(5):
        post_sign_in(Client(), issued.reference, "WRONG")
    locked = post_sign_in(Client(), issued.reference, issued.access_code)  # right, but locked
    assert locked.status_code == 400
    bodies.append(locked.content.decode())
    for body in bodies:
        assert portal.REFUSED in body
        for telling in ("locked", "does not exist", "wrong code", "unknown", "incorrect"):
            assert telling not in body.lower().replace(portal.REFUSED.lower(), "")


def test_the_rate_limited_page_is_a_429_with_the_same_message(issued, settings):
    settings.PORTAL_RATE_LIMIT = 1
    post_sign_in(Client(), "AAA", "BBB")
    response = post_sign_in(Client(), issued.reference, issued.access_code)
    assert response.status_code == 429 and portal.REFUSED in response.content.decode()


def test_it_counts_behind_a_proxy_by_the_address_our_proxy_saw(issued, settings):
    settings.PORTAL_RATE_LIMIT, settings.PORTAL_TRUSTED_PROXY_HOPS = 1, 1
    forged = {"HTTP_X_FORWARDED_FOR": "1.2.3.4, 192.0.2.50", "REMOTE_ADDR": "10.0.0.1"}
    post_sign_in(Client(), "AAA", "BBB", **forged)
    other_forgery = {**forged, "HTTP_X_FORWARDED_FOR": "5.6.7.8, 192.0.2.50"}
    assert post_sign_in(Client(), "AAA", "BBB", **other_forgery).status_code == 429


def signed_in_client(issued) -> Client:
    client = Client()
    assert post_sign_in(client, issued.reference, issued.access_code).status_code == 302
    return client


def test_a_session_shows_its_one_decision_and_can_be_ended(issued, denied):
    client = signed_in_client(issued)
    page = client.get("/my-decision/")
    assert page.status_code == 200 and issued.reference in page.content.decode()
    assert "no-store" in page["Cache-Control"]
    assert client.post("/my-decision/sign-out/").status_code == 302
    after = client.get("/my-decision/")
    assert 'id="sign-in-form"' in after.content.decode()
    assert [json.loads(e.payload)["why"] for e in events("portal.signed_out")] == ["signed_out"]


def test_a_session_expires_after_30_minutes_idle(issued, monkeypatch):
    client = signed_in_client(issued)
    assert "sign-in-form" not in client.get("/my-decision/").content.decode()
    later = __import__("time").time() + 31 * 60
    monkeypatch.setattr("appeals.sessions.time.time", lambda: later)
    response = client.get("/my-decision/", follow=True)
    assert "sign-in-form" in response.content.decode()
    assert "30 minutes without activity" in response.content.decode()


def test_a_new_code_ends_the_sessions_opened_with_the_old_one(issued, denied, service):
    client = signed_in_client(issued)
    services.access_code_issue(decision=denied, actor=service.user)
    response = client.get("/my-decision/", follow=True)
    assert "A new access code was issued" in response.content.decode()


def test_signing_in_takes_a_new_session_id(issued):
    client = Client()
    session = client.session  # a session planted before signing in (fixation)
    session["planted"] = True
    session.save()
    client.cookies["sessionid"] = before = session.session_key
    post_sign_in(client, issued.reference, issued.access_code)
    assert client.cookies["sessionid"].value not in ("", before)
    assert "sign-in-form" not in client.get("/my-decision/").content.decode()


def test_portal_pages_need_a_session(issued):
    client = Client()
    for url in ("/my-decision/appeal/", "/my-decision/receipt/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"] == "/my-decision/"
