"""The demo's appeals: decisions with access codes printed by load_demo, and appeals in
every state; the same codes again on a reload, which files nothing new."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.test import Client

from appeals.models import Appeal
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db
LINE = re.compile(r"reference (\S+)  access code (\S+)  \((.+)\)")


@pytest.fixture
def demo(capsys):
    call_command("load_demo")
    return capsys.readouterr().out


def test_the_demo_prints_portal_codes_and_has_appeals_in_every_state(demo):
    assert "/my-decision/" in demo
    rows = LINE.findall(demo)
    whats = [what for _ref, _code, what in rows]
    assert "denied by the model alone: read it, appeal it" in whats
    states = ("upheld", "overturned", "in review", "submitted", "withdrawn")
    assert {f"appeal {state}" for state in states} <= set(whats)
    statuses = set(Appeal.objects.values_list("status", flat=True))
    assert statuses == {"upheld", "overturned", "in_review", "submitted", "withdrawn"}
    overturned = Appeal.objects.get(status="overturned")
    assert (overturned.decision.final_outcome, overturned.decision.finalized_by) == (
        "approve",
        "appeal",
    )
    reference, code, _what = rows[0]
    client = Client()
    client.post("/my-decision/sign-in/", {"reference": reference, "access_code": code})
    page = client.get("/my-decision/").content.decode()
    assert f"Decision {reference}" in page and "Appeal this decision" in page
    assert "credit policy for home mortgages" in page  # the model card's ground


def test_loading_again_files_nothing_and_prints_the_same_codes(demo, capsys):
    appeals = Appeal.objects.count()
    issued = AuditEvent.objects.filter(action="access_code.issued").count()
    call_command("load_demo")
    again = capsys.readouterr().out
    assert LINE.findall(again) == LINE.findall(demo)
    assert Appeal.objects.count() == appeals
    assert AuditEvent.objects.filter(action="access_code.issued").count() == issued
