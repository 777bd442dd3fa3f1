"""A log is tamper-evident only against checkpoints kept outside it. Rolled back by someone who
owns the database (triggers off, the last events, a checkpoint and their tree deleted, one event
appended and a new checkpoint signed), it still verifies against itself; against a checkpoint
kept in the mirror, by a witness or by an auditor, it does not."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

import audit
from audit import note, sealer, services, witness
from audit.db import drop_triggers, install_triggers
from audit.models import Alert, AuditEvent, Checkpoint, Cosignature, MerkleNode, TreeState
from audit.verification import Trusted, verify_log
from audit.verify import main as offline_verify
from tests.fixtures import api

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def append(n: int) -> None:
    for i in range(n):
        with transaction.atomic():
            audit.record(action="test.happened", actor="user:alice", payload={"i": i})
    sealer.seal_all()


def sign() -> Checkpoint:
    checkpoint = services.checkpoint_sign()
    services.checkpoint_publish(checkpoint=checkpoint)  # as after its commit
    return checkpoint


def roll_back_to(size: int) -> None:
    """What a database superuser can do: cut the log back to `size` events, with the
    checkpoints and the stored tree beyond it."""
    drop_triggers(connection)
    AuditEvent.objects.filter(seq__gt=size).delete()
    Cosignature.objects.filter(checkpoint__tree_size__gt=size).delete()
    Checkpoint.objects.filter(tree_size__gt=size).delete()
    for node in MerkleNode.objects.all():
        if (node.index + 1) << node.level > size:
            node.delete()
    TreeState.objects.filter(size__gt=size).delete()
    TreeState.objects.get_or_create(size=size, defaults={"updated_at": timezone.now()})
    install_triggers(connection)


@pytest.fixture
def mirror(settings, tmp_path) -> Path:
    settings.AUDIT_CHECKPOINT_MIRROR = str(tmp_path / "mirror")
    return tmp_path / "mirror"


@pytest.fixture
def vkey(signer) -> str:
    return note.vkey_for(signer)


def test_every_checkpoint_goes_to_the_mirror_once_and_a_fork_is_an_alert(mirror):
    append(5)
    first = sign()
    append(2)
    second = sign()
    files = sorted(mirror.iterdir())
    assert [f.name for f in files] == [
        f"{first.tree_size:020d}.txt",
        f"{second.tree_size:020d}.txt",
    ]
    assert files[0].read_text() == first.note
    services.checkpoint_publish(checkpoint=second)  # again: the same note, nothing to say
    assert not Alert.objects.exists()
    files[1].write_text(first.note)  # the mirror holds another note of that size
    problems = services.checkpoint_publish(checkpoint=second)
    assert "the log forked" in problems[0].message
    assert Alert.objects.get(kind="checkpoint_mirror").scope == str(mirror)[:100]


def test_a_jsonl_mirror_gets_a_line_per_checkpoint(settings, tmp_path, vkey):
    settings.AUDIT_CHECKPOINT_MIRROR = str(tmp_path / "checkpoints.jsonl")
    append(3)
    sign()
    append(1)
    sign()
    lines = [json.loads(line) for line in (tmp_path / "checkpoints.jsonl").read_text().splitlines()]
    assert [line["size"] for line in lines] == [3, 4]


def test_the_rolled_back_log_verifies_against_itself_but_not_against_the_mirror(mirror, vkey):
    append(40)
    kept = sign()
    roll_back_to(28)
    append(1)
    sign()
    assert verify_log().ok  # the database agrees with itself
    with pytest.raises(CommandError) as failed:
        call_command("audit_verify", "--trusted", str(mirror))
    message = str(failed.value)
    assert "rolled_back" in message and f"{kept.tree_size:020d}.txt" in message
    assert "the log has 29 events" in message
    one_file = mirror / f"{kept.tree_size:020d}.txt"
    report = verify_log(trusted=[Trusted(40, bytes.fromhex(kept.root), one_file.name)])
    assert (report.ok, report.problem) == (False, "rolled_back")


def test_a_rewrite_that_keeps_the_size_is_caught_by_the_trusted_root(mirror):
    append(12)
    kept = sign()
    roll_back_to(6)
    append(6)  # as many events again: the size is the same, the root is not
    sign()
    report = verify_log(trusted=[Trusted(12, bytes.fromhex(kept.root), "kept.txt")])
    assert (report.ok, report.problem, report.first_bad_seq) == (False, "rolled_back", 12)
    assert "not consistent with the trusted checkpoint kept.txt" in report.message


def test_trusted_checkpoints_the_log_extends_pass(mirror, capsys):
    append(7)
    sign()
    append(5)
    sign()
    call_command("audit_verify", "--trusted", str(mirror))
    assert "consistent with 2 trusted checkpoint(s)" in capsys.readouterr().out


def test_a_trusted_checkpoint_signed_by_another_key_is_refused(tmp_path):
    append(3)
    sign()
    forged = note.sign(note.checkpoint_text("oversight.local/audit", 3, b"\0" * 32),
                       note.generate_signer("oversight.local/audit"))  # fmt: skip
    path = tmp_path / "forged.txt"
    path.write_text(forged)
    with pytest.raises(CommandError, match=r"--trusted .*forged\.txt"):
        call_command("audit_verify", "--trusted", str(path))


def test_the_offline_verifier_refuses_a_bundle_of_the_rolled_back_log(mirror, vkey, tmp_path):
    from oversight import exports

    append(20)
    kept = sign()
    roll_back_to(10)
    append(2)
    now = sign()
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    exports.write_bundle_events(bundle / "events.jsonl", now.tree_size)
    (bundle / "checkpoint.txt").write_text(now.note)
    assert offline_verify([str(bundle), "--key", vkey]) == 0
    trusted = str(mirror / f"{kept.tree_size:020d}.txt")
    assert offline_verify([str(bundle), "--key", vkey, "--trusted", trusted]) == 1


# --- witnesses ------------------------------------------------------------------------------------


@pytest.fixture
def cosigner() -> str:
    return note.generate_cosigner("witness.example.org/w1")


def test_the_witness_cosigns_extensions_and_refuses_the_rollback(mirror, vkey, cosigner, tmp_path):
    from audit.tree import StoredTree

    state = tmp_path / "witness.json"
    append(16)
    first = sign()
    new, text = witness.update(None, first.note, vkey, 0, [])
    new.save(state)
    line = witness.cosign(text, cosigner)
    assert note.open_cosignature(first.note + line, note.cosigner_vkey_for(cosigner)) > 0
    append(4)
    second = sign()
    proof = StoredTree().consistency_proof(16, 20)
    new, _ = witness.update(witness.State.load(state), second.note, vkey, 16, proof)
    new.save(state)
    roll_back_to(12)
    append(1)
    rolled = sign()
    with pytest.raises(witness.Refused, match="rollback: the log now says size 13"):
        witness.update(witness.State.load(state), rolled.note, vkey, 20, [])
    with pytest.raises(witness.StaleOld):
        witness.update(witness.State.load(state), rolled.note, vkey, 13, [])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served_witness(settings, cosigner, vkey, tmp_path):
    """`python -m audit.witness serve` in a process of its own, known to the log."""
    key = tmp_path / "witness.key"
    key.write_text(cosigner)
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "audit.witness", "serve", "--log-key", vkey, "--key", str(key),
         "--state", str(tmp_path / "state.json"), "--port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    settings.AUDIT_WITNESS_URLS = [f"http://127.0.0.1:{port}"]
    settings.AUDIT_WITNESS_KEYS = [note.cosigner_vkey_for(cosigner)]
    yield process
    process.terminate()
    print(process.communicate(timeout=10)[0][-2000:])


def test_a_served_witness_cosigns_each_checkpoint_and_refuses_the_rolled_back_one(
    mirror, served_witness, dave
):
    append(9)
    first = sign()
    append(3)
    second = sign()
    cosigned = list(Cosignature.objects.values_list("checkpoint__tree_size", flat=True))
    assert cosigned == [second.tree_size, first.tree_size]  # each cosigning is an event too
    latest = api(dave).get("/api/v1/audit/checkpoints/latest/").json()
    assert latest["cosignatures"][0]["witness"] == "witness.example.org/w1"
    assert latest["cosigned_note"].startswith(second.note)
    assert AuditEvent.objects.filter(action="checkpoint.cosigned").count() == 2
    roll_back_to(6)
    append(1)
    sign()
    alert = Alert.objects.get(kind="witness_refused")
    assert "rolled back" in alert.message or "rollback" in alert.message


def test_a_cosignature_is_kept_only_when_a_known_witness_signed_it(settings, cosigner, dave):
    settings.AUDIT_WITNESS_KEYS = [note.cosigner_vkey_for(cosigner)]
    append(4)
    checkpoint = sign()
    text = note.open_note(checkpoint.note, note.vkey_for(settings.AUDIT_SIGNING_KEY))
    good = witness.cosign(text, cosigner)
    stranger = witness.cosign(text, note.generate_cosigner("stranger.example/w"))
    url = f"/api/v1/audit/checkpoints/{checkpoint.tree_size}/cosignatures/"
    refused = api(dave).post(url, {"cosignature": stranger}, format="json")
    assert refused.status_code == 400 and "not signed by any witness key" in str(refused.json())
    kept = api(dave).post(url, {"cosignature": good}, format="json")
    assert kept.status_code == 201 and kept.json()["witness"] == "witness.example.org/w1"
    missing = api(dave).post(
        "/api/v1/audit/checkpoints/999/cosignatures/", {"cosignature": good}, format="json"
    )
    assert missing.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_witness_pulls_from_oversight_and_gives_its_cosignature_back(
    live_server, settings, cosigner, tmp_path, capsys
):
    from accounts.services import service_token_create

    settings.AUDIT_WITNESS_KEYS = [note.cosigner_vkey_for(cosigner)]
    token = service_token_create(name="witness", actor="test")[1]
    append(5)
    first = services.checkpoint_sign()
    key, state = tmp_path / "w.key", tmp_path / "w.json"
    key.write_text(cosigner)
    vkey = note.vkey_for(settings.AUDIT_SIGNING_KEY)
    args = ["check", "--url", live_server.url, "--token", token, "--log-key", vkey,
            "--key", str(key), "--state", str(state), "--submit"]  # fmt: skip
    assert witness.main(args) == 0
    assert f"OK: cosigned size {first.tree_size}" in capsys.readouterr().out
    assert Cosignature.objects.get().checkpoint == first
    append(3)
    second = services.checkpoint_sign()
    assert witness.main(args) == 0
    assert json.loads(state.read_text())["size"] == second.tree_size
