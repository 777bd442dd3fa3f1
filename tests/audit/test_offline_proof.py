"""`python -m audit.verify PROOF.json`: a decision's proof, as the API serves it, checked
offline against the public key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from audit import merkle, note, sealer
from audit.services import checkpoint_sign
from audit.verify import main
from reviews.services import decisions_ingest
from tests.fixtures import api, item

pytestmark = pytest.mark.django_db

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def decision(tiny_model, service):
    return decisions_ingest(items=[item(1)], actor=service.user)[0].decision


@pytest.fixture
def body(decision, dave) -> dict:
    """The proof of a decision: its events up to the checkpoint, and one read after it."""
    checkpoint_sign()
    api(dave).get(f"/api/v1/decisions/{decision.pk}/")  # decision.viewed, not yet covered
    sealer.seal_all()  # as the commit of that request would have
    return api(dave).get(f"/api/v1/decisions/{decision.pk}/proof/").json()


@pytest.fixture
def vkey(signer) -> str:
    return note.vkey_for(signer)


def run(tmp_path: Path, body: dict, vkey: str, *args: str) -> int:
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(body))
    return main([str(path), "--key", vkey, *args])


def test_a_proof_from_the_api_verifies_offline(body, decision, vkey, tmp_path, capsys):
    proven = sum(e["proof"] is not None for e in body["events"])
    assert proven >= 1 and len(body["events"]) == proven + 1
    assert run(tmp_path, body, vkey, "--decision", str(decision.pk)) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK: {proven} of {proven + 1} events proven in checkpoint ")
    assert out.rstrip().endswith("; 1 newer than the checkpoint (not yet covered)")


def first_proven(body: dict) -> dict:
    return next(e for e in body["events"] if e["proof"])


def fails(tmp_path, body, vkey, capsys, message: str, *args: str) -> None:
    assert run(tmp_path, body, vkey, *args) == 1
    assert capsys.readouterr().out == f"FAIL: {message}\n"


def test_a_flipped_byte_in_an_events_canonical_text_fails(body, vkey, tmp_path, capsys):
    event = first_proven(body)
    event["canonical"] = event["canonical"].replace('"decision"', '"decisioN"', 1)
    fails(
        tmp_path,
        body,
        vkey,
        capsys,
        f"event #{event['seq']}: leaf_hash does not match its canonical text",
    )


def _alter_with_leaf_recomputed(event: dict) -> None:
    event["canonical"] = event["canonical"].replace('"decision"', '"decisioN"', 1)
    event["leaf_hash"] = merkle.leaf_hash(event["canonical"].encode()).hex()


def _flip_a_proof_hash(event: dict) -> None:
    first = event["proof"][0]
    event["proof"][0] = ("0" if first[0] != "0" else "1") + first[1:]


@pytest.mark.parametrize("tamper", [_alter_with_leaf_recomputed, _flip_a_proof_hash])
def test_an_event_that_does_not_lead_to_the_signed_root_fails(tamper, body, vkey, tmp_path, capsys):
    event = first_proven(body)
    tamper(event)
    fails(
        tmp_path,
        body,
        vkey,
        capsys,
        f"event #{event['seq']}: its inclusion proof does not lead to the signed root",
    )


def test_a_forged_note_fails_its_signature(body, vkey, tmp_path, capsys):
    mallory = note.generate_signer("oversight.local/audit")
    checkpoint = body["checkpoint"]
    root = bytes.fromhex(checkpoint["root"])
    checkpoint["note"] = note.sign(
        note.checkpoint_text("oversight.local/audit", checkpoint["size"], root), mallory
    )
    assert run(tmp_path, body, vkey) == 1
    assert capsys.readouterr().out.startswith("FAIL: checkpoint: no signature by ")


def test_a_note_whose_text_was_changed_has_a_bad_signature(body, vkey, tmp_path, capsys):
    checkpoint = body["checkpoint"]
    size = checkpoint["size"]
    checkpoint["note"] = checkpoint["note"].replace(f"\n{size}\n", f"\n{size + 1}\n", 1)
    assert run(tmp_path, body, vkey) == 1
    assert capsys.readouterr().out.startswith("FAIL: checkpoint: bad signature by ")


def test_a_checkpoint_size_other_than_the_signed_one_fails(body, vkey, tmp_path, capsys):
    body["checkpoint"]["size"] += 1
    assert run(tmp_path, body, vkey) == 1
    assert capsys.readouterr().out.startswith("FAIL: checkpoint: the signed note says size ")


def test_an_event_of_another_decision_is_named(body, decision, vkey, tmp_path, capsys):
    event = body["events"][0]
    message = f"event #{event['seq']}: it is filed under decision:{decision.pk}, not decision 999"
    fails(tmp_path, body, vkey, capsys, message, "--decision", "999")


def test_an_event_within_the_checkpoint_without_its_proof_fails(body, vkey, tmp_path, capsys):
    event = first_proven(body)
    event["proof"] = None
    size = body["checkpoint"]["size"]
    fails(
        tmp_path,
        body,
        vkey,
        capsys,
        f"event #{event['seq']}: no inclusion proof, yet checkpoint {size} covers it",
    )


def test_a_proof_with_nothing_covered_yet_proves_nothing(decision, dave, vkey, tmp_path, capsys):
    body = api(dave).get(f"/api/v1/decisions/{decision.pk}/proof/").json()
    assert body["checkpoint"] is None
    fails(tmp_path, body, vkey, capsys, "checkpoint: none was signed when the proof was fetched")


def test_usage_errors_exit_with_2(body, vkey, tmp_path, capsys):
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    assert main([str(other), "--key", vkey]) == 2
    assert "not a decision proof" in capsys.readouterr().err
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    assert main([str(bundle), "--key", vkey, "--decision", "1"]) == 2
    assert "--decision applies to a decision proof" in capsys.readouterr().err


def test_the_command_line_checks_a_proof_without_django(body, vkey, tmp_path):
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(body))
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-m", "audit.verify", str(path), "--key", vkey],
        cwd=PROJECT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("OK: ")
