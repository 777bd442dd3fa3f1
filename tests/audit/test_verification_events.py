"""A verification's result is a change like any other: it writes its event, by whichever path
it ran ("verify now", the command, the daily task), and so does one that could not run."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.db import connection

from audit import services, tasks
from audit.db import drop_triggers, install_triggers
from audit.models import AuditEvent, ChainVerification
from audit.services import checkpoint_sign
from tests.audit.test_chain import append

pytestmark = pytest.mark.django_db


def finished() -> dict:
    (event,) = AuditEvent.objects.filter(action="audit.verification_finished")
    assert event.object_type == "chainverification"
    assert event.object_id == str(ChainVerification.objects.get().pk)
    return json.loads(event.payload)


def test_verify_now_writes_its_result(dave, django_capture_on_commit_callbacks):
    append(3)
    with django_capture_on_commit_callbacks(execute=True):
        services.verification_request(actor=dave)
    result = finished()
    assert result["ok"] is True and result["problem"] is None
    assert (result["events_checked"], result["requested_by"]) == (4, "user:dave")


def test_the_command_writes_its_result():
    append(3)
    call_command("audit_verify")
    result = finished()
    assert (result["ok"], result["events_checked"], result["last_seq"]) == (True, 3, 3)
    assert result["requested_by"] == "command:audit_verify" and result["own_key"] is True


def test_the_daily_verification_writes_a_failed_result():
    append(4)
    checkpoint_sign()
    drop_triggers(connection)
    AuditEvent.objects.filter(seq=2).update(actor="user:mallory")
    install_triggers(connection)
    assert tasks.verify_chain_daily.delay().get() is False
    result = finished()
    assert (result["ok"], result["problem"], result["first_bad_seq"]) == (False, "altered", 2)
    assert result["requested_by"] == "schedule:daily" and result["checkpoints_checked"] == 1


def test_a_verification_that_could_not_run_writes_why(monkeypatch):
    append(2)

    def broken(**kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(services, "verify_log", broken)
    with pytest.raises(OSError):
        services.verification_run_now(requested_by="command:audit_verify")
    assert ChainVerification.objects.get().status == "failed"
    (event,) = AuditEvent.objects.filter(action="audit.verification_failed")
    assert "disk on fire" in json.loads(event.payload)["message"]
