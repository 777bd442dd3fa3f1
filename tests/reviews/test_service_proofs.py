"""A decision's proof as a model service is given it: every event's hash and inclusion proof,
the texts of its own events and the person's, and no staff names: the events of staff and of
the system are given by leaf hash only under a pseudonym, and reads are left out. The file
still verifies offline (`python -m audit.verify`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from audit import note, sealer
from audit.services import checkpoint_sign
from audit.verify import main
from models_registry import services as registry
from reviews import selectors
from reviews.services import decisions_ingest
from tests.fixtures import api, item
from tests.reviews.test_queue import CLAIM, submit

pytestmark = pytest.mark.django_db

PROJECT = Path(__file__).resolve().parents[2]
STAFF = ("alice", "carol", "dave", "erin")


@pytest.fixture
def reviewed(tiny_model, service, erin, alice, carol, dave):
    """Two decisions, each answered by alice and read by carol and dave; all under a signed
    checkpoint."""
    registry.policy_update(model=tiny_model, changes={"review_all": True}, actor=erin, note="test")
    decisions = [r.decision for r in decisions_ingest(items=[item(1), item(2)],
                                                      actor=service.user)]  # fmt: skip
    for decision in decisions:
        task = api(alice).post(CLAIM).json()
        assert submit(alice, task["id"], verdict="agree").status_code == 201
        for reader in (carol, dave):
            assert api(reader).get(f"/api/v1/decisions/{decision.pk}/").status_code == 200
    sealer.seal_all()
    checkpoint_sign()
    return decisions


def proof(user, decision) -> dict:
    response = api(user).get(f"/api/v1/decisions/{decision.pk}/proof/")
    assert response.status_code == 200, response.content
    return response.json()


def test_a_services_proof_names_no_one_on_the_staff(reviewed, service):
    body = proof(service.user, reviewed[0])
    text = json.dumps(body)
    assert not [name for name in STAFF if name in text]
    actions = [e["action"] for e in body["events"]]
    assert "decision.ingested" in actions and "decision.finalized" in actions
    assert not [a for a in actions if a.endswith(".viewed")]
    for event in body["events"]:
        if event["action"] == "decision.ingested":
            assert event["canonical"] and event["actor"] == "service:svc-scorer"
        else:
            assert event["canonical"] is None
            assert event["actor"] == "system" or event["actor"].startswith("staff:")


def test_the_same_reviewer_has_the_same_pseudonym_for_one_service_and_another_for_another(
    reviewed, service
):
    first, second = (proof(service.user, d) for d in reviewed)

    def claimer(body: dict) -> str:
        return next(e["actor"] for e in body["events"] if e["action"] == "task.claimed")

    assert claimer(first) == claimer(second)
    mine = selectors.actor_pseudonym("user:alice", scope="svc-scorer")
    assert claimer(first) == f"staff:{mine}"
    assert selectors.actor_pseudonym("user:alice", scope="svc-other-scorer") != mine
    assert selectors.actor_pseudonym("user:bob", scope="svc-scorer") != mine


def test_an_auditors_proof_gives_every_event_in_full(reviewed, dave):
    body = proof(dave, reviewed[0])
    assert all(event["canonical"] for event in body["events"])
    actors = {event["actor"] for event in body["events"]}
    assert {"user:alice", "user:carol", "service:svc-scorer"} <= actors
    assert all(json.loads(e["canonical"])["actor"] == e["actor"] for e in body["events"])


def test_a_services_proof_verifies_offline(reviewed, service, signer, tmp_path, capsys):
    decision = reviewed[0]
    body = proof(service.user, decision)
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(body))
    vkey = note.vkey_for(signer)
    assert main([str(path), "--key", vkey, "--decision", str(decision.pk)]) == 0
    out = capsys.readouterr().out
    withheld = sum(e["canonical"] is None for e in body["events"])
    assert withheld >= 3 and f"{withheld} given by leaf hash only" in out
    ran = subprocess.run(
        [sys.executable, "-m", "audit.verify", str(path), "--key", vkey],
        cwd=PROJECT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ran.returncode == 0 and ran.stdout.startswith("OK: "), ran.stdout + ran.stderr


def test_a_withheld_event_whose_leaf_hash_was_changed_fails_offline(
    reviewed, service, signer, tmp_path, capsys
):
    body = proof(service.user, reviewed[0])
    event = next(e for e in body["events"] if e["canonical"] is None and e["proof"])
    event["leaf_hash"] = "0" * 64
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(body))
    assert main([str(path), "--key", note.vkey_for(signer)]) == 1
    assert "does not lead to the signed root" in capsys.readouterr().out
