"""The person's receipt: their decision's record with inclusion proofs against the latest
signed checkpoint, which `python -m audit.verify` checks offline; any changed byte fails it;
events made by people come as leaf hash and proof only, naming nobody."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from appeals import receipt, services
from audit import note
from audit.services import checkpoint_sign
from audit.verify import UsageError, VerifyError, verify_path
from tests.appeals.conftest import claim_appeal, file

pytestmark = pytest.mark.django_db
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def vkey(signer) -> str:
    return note.vkey_for(signer)


@pytest.fixture
def appealed(overridden, carol):
    """Reviewed by Alice, appealed, overturned by Carol; signed."""
    appeal = file(overridden)
    claim_appeal(carol)
    services.appeal_resolve(
        appeal_id=appeal.pk,
        senior=carol,
        result="overturned",
        outcome="approve",
        reasons="The loan was declared after all.",
    )
    checkpoint_sign()
    overridden.refresh_from_db()
    return overridden


def write(tmp_path: Path, body: dict) -> Path:
    path = tmp_path / "receipt.json"
    path.write_bytes(receipt.receipt_bytes(body))
    return path


def offline(path: Path, vkey: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audit.verify", str(path), "--key", vkey],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},  # no Django settings: the verifier needs none
    )


def test_the_receipt_verifies_offline_and_names_no_reviewer(appealed, vkey, tmp_path):
    body = receipt.receipt_for(appealed)
    path = write(tmp_path, body)
    result = offline(path, vkey)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: ")
    shown = [json.loads(e["canonical"]) for e in body["events"] if e["canonical"]]
    assert [e["action"] for e in shown] == ["decision.ingested"]
    assert shown[0]["actor"] == "service:svc-scorer"
    withheld = [e for e in body["events"] if e["canonical"] is None]
    assert len(withheld) >= 4  # claims, the review, its settlement, the appeal's result...
    assert f"{len(withheld)} given by leaf hash only" in result.stdout
    text = path.read_text()
    for name in ("alice", "carol", "user:", "rationale", "second loan"):
        assert name not in text
    assert body["decision"] == str(appealed.pk) and body["key"] == vkey


def test_one_changed_byte_fails_offline(appealed, vkey, tmp_path):
    path = write(tmp_path, receipt.receipt_for(appealed))
    data = bytearray(path.read_bytes())
    where = data.index(b"decision.ingested")
    data[where] ^= 0x01
    path.write_bytes(bytes(data))
    result = offline(path, vkey)
    assert result.returncode == 1 and result.stdout.startswith("FAIL: ")


def test_any_changed_byte_fails(appealed, vkey, tmp_path):
    """Every byte of the file, flipped in turn: nothing in it goes unchecked."""
    original = receipt.receipt_bytes(receipt.receipt_for(appealed))
    path = tmp_path / "receipt.json"
    path.write_bytes(original)
    assert verify_path(path, vkey).startswith("OK: ")
    passed = []
    for i in range(len(original)):
        changed = bytearray(original)
        changed[i] ^= 0x01
        path.write_bytes(bytes(changed))
        try:
            verify_path(path, vkey)
        except (VerifyError, UsageError):
            continue
        passed.append((i, original[max(0, i - 20) : i + 20]))
    assert passed == []


def test_it_fails_against_another_key(appealed, tmp_path):
    other = note.vkey_for(note.generate_signer("oversight.local/audit"))
    result = offline(write(tmp_path, receipt.receipt_for(appealed)), other)
    assert result.returncode == 1


def test_no_receipt_before_the_intake_is_signed(denied):
    assert receipt.receipt_for(denied) is None
    checkpoint_sign()
    assert receipt.receipt_for(denied) is not None


def test_the_person_downloads_it_from_the_portal(denied, service):
    issued = services.access_code_issue(decision=denied, actor=service.user)
    client = Client()
    credentials = {"reference": issued.reference, "access_code": issued.code}
    client.post("/my-decision/sign-in/", credentials)
    not_yet = client.get("/my-decision/receipt/", follow=True)
    assert "not ready yet" in not_yet.content.decode()
    checkpoint_sign()
    page = client.get("/my-decision/").content.decode()
    assert 'id="receipt-link"' in page and "python -m audit.verify" in page
    response = client.get("/my-decision/receipt/")
    assert response["Content-Disposition"] == (
        f'attachment; filename="receipt-{issued.reference}.json"'
    )
    body = json.loads(response.content)
    assert body["decision"] == str(denied.pk)
    shown = [json.loads(e["canonical"]) for e in body["events"] if e["canonical"]]
    assert [e["action"] for e in shown] == ["decision.ingested"]
