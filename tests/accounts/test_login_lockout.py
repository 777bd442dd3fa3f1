"""Repeated failed logins lock the account (and the address) out for a while; every failure
and every lockout is in the audit log, without the password."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEvent
from tests.fixtures import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _lockouts_on(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 5


def log_in(username: str, password: str, address: str = "10.1.1.1"):
    return Client(REMOTE_ADDR=address).post(
        "/accounts/login/", {"username": username, "password": password}
    )


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(alice):
    codes = [log_in("alice", f"wrong-{n}").status_code for n in range(5)]
    assert codes == [200, 200, 200, 200, 429]  # the fifth failure locks
    locked = log_in("alice", PASSWORD)
    assert locked.status_code == 429 and b"Too many attempts" in locked.content
    # From another address too: the account itself is locked.
    assert log_in("alice", PASSWORD, address="10.9.9.9").status_code == 429


def test_an_address_that_tries_many_accounts_is_locked(alice, bob, carol):
    for name in ("alice", "bob", "carol", "dave", "erin"):
        log_in(name, "wrong")
    assert log_in("bob", PASSWORD).status_code == 429
    assert log_in("bob", PASSWORD, address="10.2.2.2").status_code == 302


def test_failures_and_the_lockout_are_audited_without_the_password(alice):
    for n in range(5):
        log_in("alice", f"secret-guess-{n}")
    failed = AuditEvent.objects.filter(action="login.failed", object_id="alice")
    assert failed.count() == 5
    lockout = AuditEvent.objects.get(action="login.locked_out")
    assert (lockout.object_id, lockout.actor) == ("alice", "anonymous")
    assert '"address":"10.1.1.1"' in lockout.payload
    assert not AuditEvent.objects.filter(payload__contains="secret-guess").exists()


def test_a_good_login_clears_earlier_failures(alice):
    for n in range(3):
        log_in("alice", f"wrong-{n}")
    assert log_in("alice", PASSWORD).status_code == 302
    for n in range(3):
        assert log_in("alice", f"wrong-again-{n}").status_code == 200
