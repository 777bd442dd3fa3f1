"""`python -m audit.verify`: bundles built here from scratch, intact and tampered with."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from audit import merkle, note
from audit.canonical import GENESIS_HASH, canonical_json, event_hash, event_text
from audit.verify import UsageError, VerifyError, main, verify_bundle

ORIGIN = "oversight.example/audit"
EVENT_COUNT = 12
PROJECT = Path(__file__).resolve().parents[2]


@dataclass
class Event:
    seq: int
    canonical: str
    hash: str

    def line(self) -> str:
        return json.dumps({"seq": self.seq, "canonical": self.canonical, "hash": self.hash})


def make_events(count: int) -> list[Event]:
    """A hash chain of `count` events from GENESIS_HASH, as the database would hold it."""
    events, prev = [], GENESIS_HASH
    for seq in range(1, count + 1):
        text = event_text(
            seq=seq,
            time=f"2025-01-01T00:00:{seq % 60:02d}.000000Z",
            actor=f"user{seq % 3}",
            action="review.decided",
            object_type="review",
            object_id=str(1000 + seq),
            payload=canonical_json({"decision": "approve" if seq % 2 else "reject", "n": seq}),
            prev_hash=prev,
        )
        prev = event_hash(text)
        events.append(Event(seq, text, prev))
    return events


def rehash(event: Event, canonical: str) -> Event:
    return Event(event.seq, canonical, event_hash(canonical))


def checkpoint_for(events: list[Event], signer: str, size: int | None = None) -> str:
    leaves = [merkle.leaf_hash(e.canonical.encode("utf-8")) for e in events]
    size = len(events) if size is None else size
    return note.sign(note.checkpoint_text(ORIGIN, size, merkle.root(leaves[:size])), signer)


def write_bundle(
    where: Path, events: list[Event], checkpoint: str, *, lines: list[str] | None = None
) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    body = lines if lines is not None else [e.line() for e in events]
    (where / "events.jsonl").write_text("".join(f"{line}\n" for line in body), encoding="utf-8")
    (where / "checkpoint.txt").write_text(checkpoint, encoding="utf-8")
    return where


def zip_bundle(source: Path, target: Path, folder: str = "") -> Path:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in ("events.jsonl", "checkpoint.txt"):
            archive.write(source / name, folder + name)
        if folder:
            # What an export zip also holds next to the bundle folder.
            archive.writestr("manifest.json", "{}")
            archive.writestr("data.csv", "a,b\n")
    return target


@pytest.fixture(scope="module")
def signer() -> str:
    return note.generate_signer(ORIGIN)


@pytest.fixture(scope="module")
def vkey(signer) -> str:
    return note.vkey_for(signer)


@pytest.fixture
def events() -> list[Event]:
    return make_events(EVENT_COUNT)


@pytest.fixture
def bundle(tmp_path, events, signer) -> Path:
    return write_bundle(tmp_path / "bundle", events, checkpoint_for(events, signer))


def fails_with(path: Path, vkey: str, message: str) -> None:
    with pytest.raises(VerifyError) as caught:
        verify_bundle(path, vkey)
    assert str(caught.value) == f"FAIL: {message}"


# ---------------------------------------------------------------------------------- intact


def test_an_intact_directory_bundle_verifies(bundle, events, vkey):
    root = merkle.root([merkle.leaf_hash(e.canonical.encode()) for e in events])
    name, key_id, _ = note.parse_vkey(vkey)
    assert verify_bundle(bundle, vkey) == (
        f"OK: {EVENT_COUNT} events, chain intact, Merkle root {root.hex()[:16]}… matches "
        f"checkpoint {ORIGIN} size {EVENT_COUNT} signed by {name}+{key_id.hex()}"
    )


@pytest.mark.parametrize("folder", ["", "bundle/"])
def test_an_intact_zip_bundle_verifies_with_files_at_the_root_or_in_one_folder(
    bundle, tmp_path, vkey, folder
):
    archive = zip_bundle(bundle, tmp_path / "export.zip", folder)
    assert verify_bundle(archive, vkey).startswith(f"OK: {EVENT_COUNT} events, chain intact")


def test_a_directory_holding_the_bundle_in_one_folder_verifies(bundle, vkey):
    assert verify_bundle(bundle.parent, vkey).startswith("OK: ")


def test_an_empty_log_with_an_empty_checkpoint_verifies(tmp_path, signer, vkey):
    path = write_bundle(tmp_path / "empty", [], checkpoint_for([], signer))
    assert verify_bundle(path, vkey).startswith("OK: 0 events, chain intact, Merkle root e3b0c442")


def test_every_size_of_a_small_log_verifies(tmp_path, signer, vkey):
    # Sizes around powers of two exercise every shape of the streamed Merkle root.
    all_events = make_events(17)
    for n in range(18):
        path = write_bundle(
            tmp_path / str(n), all_events[:n], checkpoint_for(all_events[:n], signer)
        )
        assert verify_bundle(path, vkey).startswith(f"OK: {n} events"), n


def test_a_canonical_text_with_non_ascii_characters_verifies(tmp_path, signer, vkey):
    text = event_text(
        seq=1,
        time="2025-01-01T00:00:00.000000Z",
        actor="zoë",
        action="note",
        object_type="review",
        object_id="1",
        payload=canonical_json({"text": "naïve — ✓"}),
        prev_hash=GENESIS_HASH,
    )
    events = [Event(1, text, event_hash(text))]
    path = write_bundle(tmp_path / "b", events, checkpoint_for(events, signer))
    assert verify_bundle(path, vkey).startswith("OK: 1 events")


# -------------------------------------------------------------------------------- tampered


def test_an_altered_canonical_text_fails_its_hash(tmp_path, events, signer, vkey):
    checkpoint = checkpoint_for(events, signer)
    events[6].canonical = events[6].canonical.replace("review.decided", "review.deleted")
    path = write_bundle(tmp_path / "b", events, checkpoint)
    fails_with(path, vkey, "event #7: hash does not match its canonical text")


def test_an_altered_event_with_a_recomputed_hash_breaks_the_chain_at_the_next_one(
    tmp_path, events, signer, vkey
):
    checkpoint = checkpoint_for(events, signer)
    events[6] = rehash(events[6], events[6].canonical.replace("approve", "reject"))
    path = write_bundle(tmp_path / "b", events, checkpoint)
    fails_with(
        path, vkey, "event #8: prev_hash does not match the hash of event #7: the chain is broken"
    )


def test_an_altered_last_event_with_a_recomputed_hash_fails_the_merkle_root(
    tmp_path, events, signer, vkey
):
    checkpoint = checkpoint_for(events, signer)
    signed_root = note.parse_checkpoint(note.open_note(checkpoint, vkey))[2]
    events[-1] = rehash(events[-1], events[-1].canonical.replace("reject", "approve"))
    actual = merkle.root([merkle.leaf_hash(e.canonical.encode()) for e in events])
    path = write_bundle(tmp_path / "b", events, checkpoint)
    fails_with(
        path,
        vkey,
        f"Merkle root {actual.hex()} of the {EVENT_COUNT} events does not match the "
        f"checkpoint's {signed_root.hex()}",
    )


def test_a_rewritten_chain_from_an_altered_event_on_fails_the_merkle_root(
    tmp_path, events, signer, vkey
):
    # Everything recomputed after the change: only the signed root still catches it.
    checkpoint = checkpoint_for(events, signer)
    rewritten, prev = [], GENESIS_HASH
    for e in events:
        fields = json.loads(e.canonical) | {"prev_hash": prev}
        if e.seq == 3:
            fields["actor"] = "someone-else"
        text = canonical_json(fields)
        rewritten.append(Event(e.seq, text, event_hash(text)))
        prev = event_hash(text)
    path = write_bundle(tmp_path / "b", rewritten, checkpoint)
    with pytest.raises(VerifyError, match=r"^FAIL: Merkle root [0-9a-f]{64} of the 12 events"):
        verify_bundle(path, vkey)


def test_a_deleted_event_leaves_a_gap(tmp_path, events, signer, vkey):
    checkpoint = checkpoint_for(events, signer)
    del events[4]
    path = write_bundle(tmp_path / "b", events, checkpoint)
    fails_with(path, vkey, "event #5 is missing: line 5 holds event #6")


def test_a_deleted_last_event_falls_short_of_the_checkpoint(tmp_path, events, signer, vkey):
    checkpoint = checkpoint_for(events, signer)
    path = write_bundle(tmp_path / "b", events[:-1], checkpoint)
    fails_with(path, vkey, f"{EVENT_COUNT - 1} events but the checkpoint covers {EVENT_COUNT}")


def test_events_beyond_the_checkpoint_are_reported(tmp_path, signer, vkey):
    events = make_events(EVENT_COUNT + 1)
    path = write_bundle(tmp_path / "b", events, checkpoint_for(events, signer, EVENT_COUNT))
    fails_with(path, vkey, f"{EVENT_COUNT + 1} events but the checkpoint covers {EVENT_COUNT}")


def test_two_swapped_events_are_out_of_order(tmp_path, events, signer, vkey):
    checkpoint = checkpoint_for(events, signer)
    events[3], events[4] = events[4], events[3]
    path = write_bundle(tmp_path / "b", events, checkpoint)
    fails_with(path, vkey, "event #4 is missing: line 4 holds event #5")


def test_two_swapped_events_renumbered_on_their_lines_fail_on_their_canonical_seq(
    tmp_path, events, signer, vkey
):
    checkpoint = checkpoint_for(events, signer)
    events[3], events[4] = events[4], events[3]
    events[3].seq, events[4].seq = 4, 5
    path = write_bundle(tmp_path / "b", events, checkpoint)
    fails_with(path, vkey, "event #4: its canonical text says seq 5, not 4")


def test_a_repeated_event_is_out_of_order(tmp_path, events, signer, vkey):
    checkpoint = checkpoint_for(events, signer)
    path = write_bundle(tmp_path / "b", [*events[:3], events[2], *events[3:]], checkpoint)
    fails_with(path, vkey, "event #3 is out of order: line 4 holds it after event #3")


def test_a_first_event_not_linked_to_genesis_fails(tmp_path, signer, vkey):
    events = make_events(3)
    fields = json.loads(events[0].canonical) | {"prev_hash": "1" * 64}
    events[0] = rehash(events[0], canonical_json(fields))
    path = write_bundle(tmp_path / "b", events, checkpoint_for(events, signer))
    fails_with(
        path, vkey, "event #1: prev_hash does not match the genesis hash: the chain is broken"
    )


def test_a_checkpoint_signed_by_another_key_fails(tmp_path, events, vkey):
    impostor = note.generate_signer(ORIGIN)
    path = write_bundle(tmp_path / "b", events, checkpoint_for(events, impostor))
    _, key_id, _ = note.parse_vkey(vkey)
    _, impostor_id, _ = note.parse_vkey(note.vkey_for(impostor))
    fails_with(
        path,
        vkey,
        f"checkpoint: no signature by {ORIGIN}+{key_id.hex()} "
        f"(signed by: {ORIGIN}+{impostor_id.hex()})",
    )


def test_a_checkpoint_signed_with_our_key_id_by_another_key_has_a_bad_signature(
    tmp_path, events, signer, vkey
):
    # The impostor copies our name and key id into its signature line.
    impostor = note.generate_signer(ORIGIN)
    forged = checkpoint_for(events, impostor)
    ours = checkpoint_for(events, signer)
    kid_and_sig = base64.b64decode(forged.rsplit(" ", 1)[1])
    our_kid = note.parse_vkey(vkey)[1]
    line = f"— {ORIGIN} " + base64.b64encode(our_kid + kid_and_sig[4:]).decode()
    path = write_bundle(tmp_path / "b", events, ours.split("\n\n")[0] + "\n\n" + line + "\n")
    fails_with(path, vkey, f"checkpoint: bad signature by {ORIGIN}+{our_kid.hex()}")


def test_a_forged_checkpoint_root_fails_the_signature(tmp_path, events, signer, vkey):
    signed = checkpoint_for(events, signer)
    origin, size, root = note.parse_checkpoint(note.open_note(signed, vkey))
    forged_text = note.checkpoint_text(origin, size, bytes(32))
    forged = forged_text + signed[len(note.checkpoint_text(origin, size, root)) :]
    path = write_bundle(tmp_path / "b", events, forged)
    name, key_id, _ = note.parse_vkey(vkey)
    fails_with(path, vkey, f"checkpoint: bad signature by {name}+{key_id.hex()}")


def test_a_forged_root_signed_by_the_right_key_fails_the_merkle_root(
    tmp_path, events, signer, vkey
):
    forged = note.sign(note.checkpoint_text(ORIGIN, EVENT_COUNT, bytes(32)), signer)
    path = write_bundle(tmp_path / "b", events, forged)
    with pytest.raises(VerifyError, match=f"does not match the checkpoint's {'0' * 64}$"):
        verify_bundle(path, vkey)


def test_a_signed_note_that_is_not_a_checkpoint_fails(tmp_path, events, signer, vkey):
    path = write_bundle(tmp_path / "b", events, note.sign("hello\n", signer))
    fails_with(path, vkey, "checkpoint: 1 lines, expected origin, size and root hash")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "events.jsonl line 2: not a JSON object"),
        ("[1, 2]", "events.jsonl line 2: not a JSON object"),
        ('{"seq": 2, "canonical": "x"}', 'events.jsonl line 2: expected the keys "seq"'),
        ('{"seq": "2", "canonical": "x", "hash": "' + "0" * 64 + '"}', "seq '2' is not"),
        ('{"seq": 2, "canonical": 5, "hash": "' + "0" * 64 + '"}', "canonical is not a string"),
        ('{"seq": 2, "canonical": "x", "hash": "' + "A" * 64 + '"}', "64 lowercase hex"),
        ('{"seq": 2, "seq": 2, "canonical": "x", "hash": "x"}', "repeated key 'seq'"),
        ("", "events.jsonl line 2: not a JSON object"),
    ],
)
def test_a_malformed_events_line_is_named(tmp_path, events, signer, vkey, line, message):
    lines = [e.line() for e in events]
    lines[1] = line
    path = write_bundle(tmp_path / "b", events, checkpoint_for(events, signer), lines=lines)
    with pytest.raises(VerifyError, match=re.escape(message)):
        verify_bundle(path, vkey)


def test_a_canonical_text_that_is_not_json_is_named(tmp_path, events, signer, vkey):
    events[1] = rehash(events[1], "not json")
    path = write_bundle(tmp_path / "b", events, checkpoint_for(events, signer))
    with pytest.raises(VerifyError, match=r"^FAIL: event #2: canonical text is not valid JSON"):
        verify_bundle(path, vkey)


def test_a_bundle_that_is_not_there_is_a_usage_error(tmp_path, vkey):
    with pytest.raises(UsageError, match="no such bundle"):
        verify_bundle(tmp_path / "missing", vkey)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "events.jsonl").write_text("")
    with pytest.raises(UsageError, match=re.escape("no events.jsonl and checkpoint.txt")):
        verify_bundle(tmp_path / "half", vkey)


def test_an_unreadable_key_is_a_usage_error(bundle):
    with pytest.raises(UsageError, match="unreadable key"):
        verify_bundle(bundle, "not-a-key")


# -------------------------------------------------------------------------------------- CLI


def test_main_reads_the_key_from_a_file_and_prints_one_line(bundle, tmp_path, vkey, capsys):
    key_file = tmp_path / "public-key.txt"
    key_file.write_text(f"  {vkey}\n\n")
    assert main([str(bundle), "--key", str(key_file)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: ")
    assert out.count("\n") == 1


def test_the_command_line_runs_without_django(bundle, tmp_path, events, signer, vkey):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "audit.verify", *args],
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    ok = run(str(bundle), "--key", vkey)
    assert (ok.returncode, ok.stderr) == (0, "")
    assert ok.stdout.startswith(f"OK: {EVENT_COUNT} events, chain intact")

    broken = write_bundle(tmp_path / "broken", events[:-1], checkpoint_for(events, signer))
    fail = run(str(broken), "--key", vkey)
    assert fail.returncode == 1
    assert (
        fail.stdout == f"FAIL: {EVENT_COUNT - 1} events but the checkpoint covers {EVENT_COUNT}\n"
    )

    missing = run(str(tmp_path / "nowhere"), "--key", vkey)
    assert missing.returncode == 2
    assert "no such bundle" in missing.stderr

    bad_key = run(str(bundle), "--key", "not-a-key")
    assert bad_key.returncode == 2
    assert "unreadable key" in bad_key.stderr


def test_the_verifier_modules_never_import_django():
    code = (
        "import sys, audit.verify, audit.merkle, audit.note, audit.canonical; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, env=env, capture_output=True, text=True
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "[]\n", "")
