from __future__ import annotations

import base64

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit import merkle, note, sealer
from audit.canonical import leaf_hash_hex as event_hash  # the hash of a format-2 event
from audit.db import drop_triggers, install_triggers
from audit.models import Alert, AuditEvent, Checkpoint
from audit.services import checkpoint_sign
from audit.verification import verify_log
from core.errors import ApplicationError
from tests.audit.test_chain import append
from tests.fixtures import api

pytestmark = pytest.mark.django_db


def leaves() -> list[bytes]:
    return [merkle.leaf_hash(e.canonical.encode()) for e in AuditEvent.objects.order_by("seq")]


def test_it_signs_a_checkpoint_when_the_log_grows_and_only_then(signer):
    assert checkpoint_sign() is None  # nothing to sign
    append(5)
    checkpoint = checkpoint_sign()
    assert checkpoint.tree_size == 5
    assert checkpoint.root == merkle.root(leaves()).hex()
    origin, size, root = note.parse_checkpoint(
        note.open_note(checkpoint.note, note.vkey_for(signer))
    )
    assert (origin, size, root.hex()) == ("oversight.local/audit", 5, checkpoint.root)
    assert checkpoint.note.startswith("oversight.local/audit\n5\n")
    assert checkpoint_sign() is None  # not grown
    append(3)
    assert checkpoint_sign().tree_size == 8


def test_the_command_signs_one_at_once(capsys):
    append(2)
    call_command("audit_checkpoint")
    assert "oversight.local/audit\n2\n" in capsys.readouterr().out
    call_command("audit_checkpoint")
    assert "nothing signed" in capsys.readouterr().out


def test_without_a_key_it_says_how_to_make_one(settings, tmp_path):
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "missing.key"
    append(1)
    with pytest.raises(ApplicationError, match="audit_keygen"):
        checkpoint_sign()


def test_keygen_writes_a_private_key_file_once(settings, tmp_path, capsys):
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "keys" / "signing.key"
    call_command("audit_keygen")
    assert "Created" in capsys.readouterr().out
    key_file = settings.AUDIT_SIGNING_KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    first = key_file.read_text()
    call_command("audit_keygen")
    assert key_file.read_text() == first and "Created" not in capsys.readouterr().out


# --- the API ------------------------------------------------------------------------------------


def test_the_public_key_is_published_in_both_forms(dave, signer):
    body = api(dave).get("/api/v1/audit/public-key/").json()
    name, key_id, raw = note.parse_vkey(body["vkey"])
    assert body["vkey"] == note.vkey_for(signer)
    assert (body["origin"], body["key_id"]) == (name, key_id.hex())
    assert base64.b64decode(body["public_key"]) == raw and len(raw) == 32


def test_every_inclusion_proof_verifies_against_the_checkpoint(dave):
    append(13)
    checkpoint = checkpoint_sign()
    root = bytes.fromhex(checkpoint.root)
    client = api(dave)
    assert client.get("/api/v1/audit/checkpoints/latest/").json()["note"] == checkpoint.note
    for seq, leaf in enumerate(leaves(), start=1):
        body = client.get("/api/v1/audit/proofs/inclusion/", {"seq": seq, "size": 13}).json()
        assert body["leaf_hash"] == leaf.hex() and body["leaf_index"] == seq - 1
        proof = [bytes.fromhex(h) for h in body["proof"]]
        assert merkle.verify_inclusion(leaf, seq - 1, 13, proof, root)


def test_consistency_proofs_link_successive_checkpoints(dave):
    append(6)
    old = checkpoint_sign()
    append(11)
    new = checkpoint_sign()
    body = api(dave).get("/api/v1/audit/proofs/consistency/", {"from": 6, "to": 17}).json()
    assert (body["old_root"], body["new_root"]) == (old.root, new.root)
    proof = [bytes.fromhex(h) for h in body["proof"]]
    assert merkle.verify_consistency(6, 17, bytes.fromhex(old.root), bytes.fromhex(new.root), proof)
    listed = api(dave).get("/api/v1/audit/checkpoints/").json()["results"]
    assert [c["size"] for c in listed] == [17, 6]


def test_proof_requests_name_their_bad_parameters(dave):
    append(3)
    checkpoint_sign()
    client = api(dave)
    response = client.get("/api/v1/audit/proofs/inclusion/", {"seq": "x"})
    assert response.status_code == 400 and "seq" in response.json()["error"]["fields"]
    assert client.get("/api/v1/audit/proofs/inclusion/", {"seq": 9}).status_code == 400
    response = client.get("/api/v1/audit/proofs/inclusion/", {"seq": 1, "size": 50})
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_sealed"
    assert client.get("/api/v1/audit/proofs/consistency/", {"from": 3, "to": 2}).status_code == 400


def test_a_decisions_events_come_with_proofs_a_client_can_check(tiny_model, service, dave):
    from reviews.services import decisions_ingest
    from tests.fixtures import item

    decision = decisions_ingest(items=[item(1)], actor=service.user)[0].decision
    checkpoint = checkpoint_sign()
    api(dave).get(f"/api/v1/decisions/{decision.pk}/")  # a read: logged after the checkpoint
    sealer.seal_all()  # as the commit of that request would have
    body = service.client().get(f"/api/v1/decisions/{decision.pk}/proof/").json()
    assert body["checkpoint"]["note"] == checkpoint.note
    proven = [e for e in body["events"] if e["proof"] is not None]
    assert proven and any('"action":"decision.ingested"' in e["canonical"] for e in proven)
    for event in proven:
        leaf = merkle.leaf_hash(event["canonical"].encode())
        assert leaf.hex() == event["leaf_hash"]
        proof = [bytes.fromhex(h) for h in event["proof"]]
        assert merkle.verify_inclusion(leaf, event["leaf_index"], body["checkpoint"]["size"], proof,
                                       bytes.fromhex(body["checkpoint"]["root"]))  # fmt: skip
    # Who read it is not the service's to know (reviews.selectors.decision_log); the auditor's
    # proof has the read, logged after the checkpoint.
    assert not [e for e in body["events"] if e["action"].endswith(".viewed")]
    audited = api(dave).get(f"/api/v1/decisions/{decision.pk}/proof/").json()
    assert [e["proof"] for e in audited["events"] if e["action"] == "decision.viewed"] == [None]


@pytest.mark.parametrize(
    ("who", "code"), [("dave", 200), ("alice", 403), ("erin", 403), (None, 401)]
)
def test_the_audit_api_is_for_auditors_and_services(who, code, alice, dave, erin):
    user = {"alice": alice, "dave": dave, "erin": erin, None: None}[who]
    assert api(user).get("/api/v1/audit/public-key/").status_code == code


def test_a_service_sees_proofs_only_of_its_own_decisions(tiny_model, service, other_service):
    from reviews.services import decisions_ingest
    from tests.fixtures import item

    decision = decisions_ingest(items=[item(1)], actor=service.user)[0].decision
    assert other_service.client().get(f"/api/v1/decisions/{decision.pk}/proof/").status_code == 404


# --- refusing and detecting rewrites -----------------------------------------------------


def _rewrite(seq: int, **changes) -> None:
    """Change an event as someone with the database would: columns, then its own hash."""
    event = AuditEvent.objects.get(seq=seq)
    for field, value in changes.items():
        setattr(event, field, value)
    new_hash = event_hash(event.canonical)
    drop_triggers(connection)
    AuditEvent.objects.filter(seq=seq).update(hash=new_hash, **changes)
    install_triggers(connection)


def test_it_refuses_to_sign_over_a_rewritten_log_and_raises_an_alert():
    append(5)
    checkpoint_sign()
    _rewrite(5, payload='{"i":"forged"}')
    append(1)
    with pytest.raises(ApplicationError, match="Checkpoint refused"):
        checkpoint_sign()
    alert = Alert.objects.get(kind="checkpoint_refused")
    assert "rewritten" in alert.message
    assert Checkpoint.objects.count() == 1
    assert AuditEvent.objects.filter(action="alert.raised").count() == 1
    with pytest.raises(ApplicationError):
        checkpoint_sign()
    assert Alert.objects.count() == 1  # raised once, not on every attempt


def test_verify_names_a_tampered_event(capsys):
    append(6)
    checkpoint_sign()
    drop_triggers(connection)
    AuditEvent.objects.filter(seq=4).update(actor="user:mallory")
    install_triggers(connection)
    report = verify_log()
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 4, "altered")
    with pytest.raises(CommandError, match=r"#4 \(altered\)"):
        call_command("audit_verify")


def test_verify_catches_deleted_last_events_with_the_checkpoint():
    append(8)
    checkpoint_sign()
    drop_triggers(connection)
    AuditEvent.objects.filter(seq__gte=7).delete()
    install_triggers(connection)
    report = verify_log()
    assert (report.ok, report.problem, report.first_bad_seq) == (False, "missing", 7)
    assert "covers events #7–#8" in report.message


def test_verify_catches_two_events_swapped_and_the_chain_rehashed():
    events = append(6)
    checkpoint_sign()
    # Swap the contents of #3 and #4 and rebuild every hash from #3 on: the chain is valid again.
    rows = {e.seq: e for e in AuditEvent.objects.order_by("seq")}
    rows[3].payload, rows[4].payload = rows[4].payload, rows[3].payload
    drop_triggers(connection)
    prev = rows[2].hash
    for seq in range(3, 7):
        event = rows[seq]
        event.prev_hash = prev
        event.hash = event_hash(event.canonical)
        AuditEvent.objects.filter(seq=seq).update(
            payload=event.payload, prev_hash=prev, hash=event.hash
        )
        prev = event.hash
    install_triggers(connection)
    assert len(events) == 6
    report = verify_log()
    assert not report.ok and report.first_bad_seq == 3
    assert "sealed" in report.message or "checkpoint" in report.message


def test_verify_catches_the_rewrite_by_the_checkpoint_even_with_the_tree_rebuilt():
    from audit.models import MerkleNode, TreeState

    append(6)
    checkpoint_sign()
    _rewrite(2, payload='{"i":"rewritten"}')
    drop_triggers(connection)
    for seq in range(3, 7):  # re-chain after #2
        prev = AuditEvent.objects.get(seq=seq - 1).hash
        event = AuditEvent.objects.get(seq=seq)
        event.prev_hash = prev
        AuditEvent.objects.filter(seq=seq).update(prev_hash=prev, hash=event_hash(event.canonical))
    MerkleNode.objects.all().delete()  # the attacker also throws away the stored tree
    TreeState.objects.all().delete()
    install_triggers(connection)
    report = verify_log()
    assert (report.ok, report.problem, report.first_bad_seq) == (False, "checkpoint", 6)


def test_verify_catches_a_forged_checkpoint():
    append(4)
    checkpoint_sign()
    append(2)
    mallory = note.generate_signer("oversight.local/audit")
    root = merkle.root(leaves())
    Checkpoint.objects.create(
        tree_size=6, root=root.hex(), origin="oversight.local/audit", key_id="00000000",
        note=note.sign(note.checkpoint_text("oversight.local/audit", 6, root), mallory),
        created_at=Checkpoint.objects.get().created_at,
    )  # fmt: skip
    report = verify_log()
    assert (report.ok, report.problem) == (False, "checkpoint")
    assert "bad signature" in report.message


def test_verify_reports_checkpoints_ok(capsys):
    append(3)
    checkpoint_sign()
    append(2)
    checkpoint_sign()
    call_command("audit_verify")
    out = capsys.readouterr().out
    assert "OK: 5 events, chain intact; 2 signed checkpoints verified" in out


@pytest.mark.parametrize("value", ["²", "١", "1²", "9" * 5000, " 1", "-1", "1.0"])
def test_proof_parameters_take_only_plain_ascii_whole_numbers(dave, value):
    append(3)
    checkpoint_sign()
    client = api(dave)
    response = client.get("/api/v1/audit/proofs/inclusion/", {"seq": value})
    assert response.status_code == 400 and set(response.json()["error"]["fields"]) == {"seq"}
    response = client.get("/api/v1/audit/proofs/consistency/", {"from": value, "to": 3})
    assert response.status_code == 400 and set(response.json()["error"]["fields"]) == {"from"}


# --- the key and the origin ----------------------------------------------------------------


def test_it_refuses_to_sign_with_a_key_not_named_after_the_origin(settings):
    settings.AUDIT_SIGNING_KEY = note.generate_signer("elsewhere.example/log")
    append(2)
    with pytest.raises(ApplicationError, match=r"named 'elsewhere\.example/log'") as refused:
        checkpoint_sign()
    assert refused.value.code == "key_origin_mismatch"
    assert "oversight.local/audit" in refused.value.message
    assert not Checkpoint.objects.exists()
    alert = Alert.objects.get(kind="checkpoint_refused")
    assert "elsewhere.example/log" in alert.message


def test_the_public_key_gives_the_checkpoints_origin_and_says_when_the_key_differs(settings, dave):
    client = api(dave)
    body = client.get("/api/v1/audit/public-key/").json()
    assert (body["origin"], body["key_name"]) == (settings.AUDIT_ORIGIN, settings.AUDIT_ORIGIN)
    assert "warning" not in body
    settings.AUDIT_SIGNING_KEY = note.generate_signer("elsewhere.example/log")
    body = client.get("/api/v1/audit/public-key/").json()
    assert (body["origin"], body["key_name"]) == ("oversight.local/audit", "elsewhere.example/log")
    assert "no checkpoint is signed" in body["warning"]


# --- spot checks before signing, and the daily verification --------------------------------


def test_it_refuses_to_sign_over_an_older_sealed_event_rewritten(signer):
    append(10)
    checkpoint_sign()
    _rewrite(4, payload='{"i":"forged"}')  # not the last sealed event, which is re-checked anyway
    append(1)
    with pytest.raises(ApplicationError, match="event #4 no longer matches the leaf sealed"):
        checkpoint_sign()
    assert Checkpoint.objects.count() == 1
    assert "event #4" in Alert.objects.get(kind="checkpoint_refused").message


def test_a_spot_check_of_a_large_log_reads_a_bounded_sample_with_both_ends():
    from audit import tree

    sample = tree.spot_sample(1_000_000)
    assert {1, 1_000_000} <= sample and len(sample) == tree.SPOT_RANDOM + 2
    assert all(1 <= seq <= 1_000_000 for seq in sample)
    assert tree.spot_sample(tree.SPOT_ALL) == set(range(1, tree.SPOT_ALL + 1))


def test_a_spot_check_costs_the_same_few_queries_whatever_the_log_size(
    django_assert_max_num_queries,
):
    from audit import tree

    append(80)
    checkpoint_sign()
    with django_assert_max_num_queries(2):
        tree.spot_check(80)


def test_the_daily_verification_keeps_its_result_and_alerts_when_the_chain_breaks():
    from audit import tasks
    from audit.models import ChainVerification

    append(4)
    checkpoint_sign()
    assert tasks.verify_chain_daily.delay().get() is True
    assert not Alert.objects.exists()
    drop_triggers(connection)
    AuditEvent.objects.filter(seq=2).update(actor="user:mallory")
    install_triggers(connection)
    assert tasks.verify_chain_daily.delay().get() is False
    verification = ChainVerification.objects.filter(requested_by="schedule:daily").first()
    assert (verification.ok, verification.first_bad_seq) == (False, 2)
    alert = Alert.objects.get(kind="verification_failed")
    assert "event #2 (altered)" in alert.message


def test_the_daily_verification_is_on_the_beat_schedule(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "audit.tasks.verify_chain_daily" in tasks


# --- audit_verify --key --------------------------------------------------------------------


def test_audit_verify_checks_signatures_against_a_key_given_to_it(signer, tmp_path, capsys):
    append(3)
    checkpoint_sign()
    key_file = tmp_path / "public-key.txt"
    key_file.write_text(note.vkey_for(signer) + "\n")
    call_command("audit_verify", "--key", str(key_file))
    assert "1 signed checkpoints verified" in capsys.readouterr().out
    call_command("audit_verify", "--key", note.vkey_for(signer))
    other = note.vkey_for(note.generate_signer("oversight.local/audit"))
    with pytest.raises(CommandError, match=r"\(checkpoint\): checkpoint of size 3: bad signature"):
        call_command("audit_verify", "--key", other)
    with pytest.raises(CommandError, match="unreadable key"):
        call_command("audit_verify", "--key", "not-a-key")
