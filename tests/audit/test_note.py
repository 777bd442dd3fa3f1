"""C2SP signed notes and tlog checkpoints: audit.note against the spec and Go's reference."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from audit import note
from audit.note import NoteError

NAME = "oversight.example/audit"
TEXT = "oversight.example/audit\n42\n" + base64.b64encode(bytes(range(32))).decode() + "\n"

# The example key and note of golang.org/x/mod/sumdb/note (its note_test.go and docs).
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


@pytest.fixture(scope="module")
def signer() -> str:
    return note.generate_signer(NAME)


@pytest.fixture(scope="module")
def vkey(signer) -> str:
    return note.vkey_for(signer)


@pytest.fixture(scope="module")
def signed(signer) -> str:
    return note.sign(TEXT, signer)


def independent_key_strings(name: str, private: Ed25519PrivateKey) -> tuple[str, str]:
    """Signer and verifier key strings computed from the spec's formulas, not audit.note's."""
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    seed = private.private_bytes_raw()
    kid = hashlib.sha256(name.encode("utf-8") + b"\n" + b"\x01" + public).digest()[:4].hex()
    signer = f"PRIVATE+KEY+{name}+{kid}+" + base64.b64encode(b"\x01" + seed).decode()
    vkey = f"{name}+{kid}+" + base64.b64encode(b"\x01" + public).decode()
    return signer, vkey


def signature_line(name: str, blob: bytes) -> str:
    return f"— {name} {base64.b64encode(blob).decode()}\n"


# ------------------------------------------------------------------------------------- keys


def test_it_reproduces_the_go_reference_note_byte_for_byte():
    # Ed25519 is deterministic, so the same key and text must give the published signature.
    assert note.vkey_for(GO_SIGNER) == GO_VKEY
    assert note.sign(GO_TEXT, GO_SIGNER) == GO_NOTE
    assert note.open_note(GO_NOTE, GO_VKEY) == GO_TEXT


def test_key_ids_and_key_strings_match_an_independent_computation():
    private = Ed25519PrivateKey.generate()
    signer, vkey = independent_key_strings(NAME, private)
    assert note.vkey_for(signer) == vkey
    name, parsed = note.parse_signer(signer)
    assert name == NAME
    assert parsed.private_bytes_raw() == private.private_bytes_raw()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    kid = hashlib.sha256(NAME.encode() + b"\n\x01" + public).digest()[:4]
    assert note.parse_vkey(vkey) == (NAME, kid, public)
    assert note.key_id(NAME, public) == kid


def test_generated_signers_have_the_go_format_and_their_own_verifier_key(signer, vkey):
    prefix, key, name, hex_id, material = signer.split("+", 4)
    assert (prefix, key, name) == ("PRIVATE", "KEY", NAME)
    assert len(hex_id) == 8
    assert base64.b64decode(material)[:1] == b"\x01"
    assert len(base64.b64decode(material)) == 33
    _, private = note.parse_signer(signer)
    assert (signer, vkey) == independent_key_strings(NAME, private)
    assert note.generate_signer(NAME) != signer


@pytest.mark.parametrize("name", ["", "has space", "a+b", "tab\tbed", "new\nline", "nb\u00a0sp"])
def test_it_refuses_key_names_the_spec_forbids(name):
    with pytest.raises(NoteError, match="key name"):
        note.generate_signer(name)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda v: v.replace("+", "-", 1), "expected"),
        (lambda v: "x" + v, "key id .* does not match"),
        (lambda v: v[:-4], "key is 30 bytes, expected 33"),
        (lambda v: v[:-1], "base64"),
        (lambda v: v + "=", "base64"),
        (lambda v: v + " ", "base64"),
        (lambda v: v.split("+")[0] + "+C74F20A3+" + v.split("+", 2)[2], "lowercase hex"),
        (lambda v: v.split("+")[0] + "+c74f20a+" + v.split("+", 2)[2], "lowercase hex"),
        (lambda v: v.split("+")[0] + "+c74f20a4+" + v.split("+", 2)[2], "does not match"),
        (lambda v: "Peter Neumann+" + v.split("+", 1)[1], "key name"),
    ],
)
def test_it_refuses_mangled_verifier_keys_with_a_clear_message(mangle, message):
    with pytest.raises(NoteError, match=message):
        note.parse_vkey(mangle(GO_VKEY))


def test_it_refuses_a_verifier_key_for_another_algorithm():
    public = base64.b64decode(GO_VKEY.split("+")[2])[1:]
    other = "PeterNeumann+c74f20a3+" + base64.b64encode(b"\x02" + public).decode()
    with pytest.raises(NoteError, match="not Ed25519"):
        note.parse_vkey(other)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda s: s.replace("PRIVATE+KEY+", ""), "expected"),
        (lambda s: s.replace("PRIVATE", "PUBLIC"), "expected"),
        (lambda s: s.replace("c74f20a3", "c74f20a4"), "does not match"),
        (lambda s: s[:-3], "base64"),
        (lambda s: s.replace("+AYEK", "+AiEK"), "not Ed25519|base64"),
        (lambda s: GO_VKEY, "expected"),
    ],
)
def test_it_refuses_mangled_signer_keys_with_a_clear_message(mangle, message):
    with pytest.raises(NoteError, match=message):
        note.parse_signer(mangle(GO_SIGNER))


# ------------------------------------------------------------------------------------ notes


def test_a_signed_note_opens_to_its_text(signed, vkey):
    assert signed.startswith(TEXT + "\n— " + NAME + " ")
    assert signed.endswith("\n")
    assert note.open_note(signed, vkey) == TEXT


def test_the_signature_covers_exactly_the_text_bytes(signer, signed):
    _, private = note.parse_signer(signer)
    blob = base64.b64decode(signed.rsplit(" ", 1)[1])
    public = private.public_key()
    public.verify(blob[4:], TEXT.encode())  # raises if the text signed were anything else
    assert len(blob) == 4 + 64


def test_a_note_also_signed_by_other_keys_still_opens(signed, vkey):
    witness = note.generate_signer("witness.example")
    cosigned = signed + note.sign(TEXT, witness)[len(TEXT) + 1 :]
    assert note.open_note(cosigned, vkey) == TEXT
    assert note.open_note(cosigned, note.vkey_for(witness)) == TEXT


def test_a_text_with_blank_lines_signs_and_opens_as_the_spec_allows(signer, vkey):
    text = "first paragraph\n\nsecond paragraph\n"
    assert note.open_note(note.sign(text, signer), vkey) == text


def test_a_forged_signature_by_another_key_with_the_same_name_fails(vkey):
    forged = note.sign(TEXT, note.generate_signer(NAME))
    # Another key under the same name has (all but surely) another key id: it is unknown.
    with pytest.raises(NoteError, match=re.escape(f"no signature by {NAME}+")):
        note.open_note(forged, vkey)


def test_a_forged_signature_under_the_right_name_and_key_id_fails(signed, vkey):
    impostor = Ed25519PrivateKey.generate()
    kid = note.parse_vkey(vkey)[1]
    forged = TEXT + "\n" + signature_line(NAME, kid + impostor.sign(TEXT.encode()))
    with pytest.raises(NoteError, match=re.escape(f"bad signature by {NAME}+")):
        note.open_note(forged, vkey)


def test_a_flipped_byte_in_the_text_fails(signed, vkey):
    for position in (0, len(TEXT) // 2, len(TEXT) - 2):
        char = signed[position]
        tampered = signed[:position] + chr(ord(char) ^ 1) + signed[position + 1 :]
        with pytest.raises(NoteError, match="bad signature"):
            note.open_note(tampered, vkey)


def test_a_flipped_bit_in_the_signature_fails(signed, vkey):
    head, encoded = signed[:-1].rsplit(" ", 1)
    blob = bytearray(base64.b64decode(encoded))
    blob[-1] ^= 0x01
    with pytest.raises(NoteError, match="bad signature"):
        note.open_note(head + " " + base64.b64encode(bytes(blob)).decode() + "\n", vkey)


def test_a_wrong_key_id_in_the_signature_line_means_no_signature_by_that_key(signed, vkey):
    head, encoded = signed[:-1].rsplit(" ", 1)
    blob = bytearray(base64.b64decode(encoded))
    blob[0] ^= 0xFF
    with pytest.raises(NoteError, match="no signature by"):
        note.open_note(head + " " + base64.b64encode(bytes(blob)).decode() + "\n", vkey)


def test_a_verifier_key_with_another_name_finds_no_signature(signed, signer):
    _, private = note.parse_signer(signer)
    _, renamed = independent_key_strings("another.example", private)
    with pytest.raises(NoteError, match=re.escape("no signature by another.example+")):
        note.open_note(signed, renamed)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda s: s.split("\n\n")[0] + "\n", "no blank line"),
        (lambda s: s.split("\n\n")[0] + "\n\n", "no signature lines"),
        (lambda s: s[:-1], "does not end with a newline"),
        (lambda s: s[:-1] + " \n", "single spaces"),
        (lambda s: s.replace("— ", "—  "), "single spaces|key name"),
        (lambda s: s.replace("— ", "- "), "em dash"),
        (lambda s: s.replace(f"{NAME} ", f"{NAME}  "), "single spaces"),
        (lambda s: s.replace("\n", "\r\n"), "control character U\\+000D"),
        (lambda s: "\t" + s, "control character U\\+0009"),
        (lambda s: s[:-6] + "\n", "base64"),
        (lambda s: s[:-2] + "\n", "base64"),
        (lambda s: s + "\n", "no signature lines"),
        (lambda s: s.replace("\n\n", "\n \n"), "no blank line"),
        (lambda s: s + "— x\n", "single spaces"),
        (lambda s: s + "— x AAAA!\n", "signature line 2: signature: not valid base64"),
        (lambda s: s + "— x AAAA\n", "signature line 2: signature is 3 bytes, too short"),
    ],
)
def test_a_malformed_note_is_refused_with_a_precise_message(signed, vkey, mangle, message):
    with pytest.raises(NoteError, match=message):
        note.open_note(mangle(signed), vkey)


def test_a_truncated_signature_is_refused(signed, vkey):
    head, encoded = signed[:-1].rsplit(" ", 1)
    short = base64.b64encode(base64.b64decode(encoded)[:40]).decode()
    with pytest.raises(NoteError, match="bad signature"):
        note.open_note(f"{head} {short}\n", vkey)


def test_too_many_signature_lines_are_refused(signed, vkey):
    line = signed[len(TEXT) + 1 :]
    with pytest.raises(NoteError, match="more than 100 signatures"):
        note.open_note(TEXT + "\n" + line * 101, vkey)
    assert note.open_note(TEXT + "\n" + line * 16, vkey) == TEXT


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("no newline", "newline"), ("a\rb\n", "control"), ("\ud800\n", "UTF-8")],
)
def test_it_refuses_to_sign_text_the_spec_forbids(signer, text, message):
    with pytest.raises(NoteError, match=message):
        note.sign(text, signer)


def test_open_note_refuses_a_bad_verifier_key(signed):
    with pytest.raises(NoteError, match="verifier key"):
        note.open_note(signed, "not a key")


# ------------------------------------------------------------------------------ checkpoints


def test_checkpoint_text_has_origin_size_and_padded_base64_root():
    root = hashlib.sha256(b"root").digest()
    text = note.checkpoint_text(NAME, 1234, root)
    assert text == f"{NAME}\n1234\n{base64.b64encode(root).decode()}\n"
    assert text.split("\n")[2].endswith("=")
    assert note.parse_checkpoint(text) == (NAME, 1234, root)


def test_the_empty_checkpoint_round_trips():
    empty = hashlib.sha256(b"").digest()
    assert note.parse_checkpoint(note.checkpoint_text(NAME, 0, empty)) == (NAME, 0, empty)


def test_a_signed_checkpoint_round_trips(signer, vkey):
    root = hashlib.sha256(b"x").digest()
    signed = note.sign(note.checkpoint_text(NAME, 7, root), signer)
    assert note.parse_checkpoint(note.open_note(signed, vkey)) == (NAME, 7, root)


def test_checkpoint_extension_lines_are_allowed_and_ignored():
    root = bytes(32)
    text = note.checkpoint_text(NAME, 3, root) + "extension\n"
    assert note.parse_checkpoint(text) == (NAME, 3, root)


ROOT_B64 = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{NAME}\n5\n", "2 lines"),
        (f"{NAME}\n5\n{ROOT_B64}", "newline"),
        (f"\n5\n{ROOT_B64}\n", "line 1 is empty"),
        (f"{NAME}\n05\n{ROOT_B64}\n", "leading zeros"),
        (f"{NAME}\n00\n{ROOT_B64}\n", "leading zeros"),
        (f"{NAME}\n-5\n{ROOT_B64}\n", "decimal"),
        (f"{NAME}\n+5\n{ROOT_B64}\n", "decimal"),
        (f"{NAME}\n 5\n{ROOT_B64}\n", "decimal"),
        (f"{NAME}\n5.0\n{ROOT_B64}\n", "decimal"),
        (f"{NAME}\n\u0665\n{ROOT_B64}\n", "decimal"),  # ARABIC-INDIC DIGIT FIVE
        (f"{NAME}\n{2**64}\n{ROOT_B64}\n", "64 bits"),
        (f"{NAME}\n5\n{ROOT_B64.rstrip('=')}\n", "base64"),
        (f"{NAME}\n5\n{base64.b64encode(bytes(31)).decode()}\n", "31 bytes"),
        (f"{NAME}\n5\n{base64.b64encode(bytes(33)).decode()}\n", "33 bytes"),
        (f"{NAME}\n5\n{bytes(32).hex()}\n", "48 bytes"),
        (f"{NAME}\n5\n{ROOT_B64[:-2]}B=\n", "base64"),  # non-canonical trailing bits
        (f"{NAME}\n5\n{ROOT_B64}\n\n", "line 4 is empty"),
        (f"{NAME}\r\n5\n{ROOT_B64}\n", "control"),
    ],
)
def test_a_bad_checkpoint_is_refused(text, message):
    with pytest.raises(NoteError, match=message):
        note.parse_checkpoint(text)


@pytest.mark.parametrize(
    ("origin", "size", "root"),
    [("", 1, bytes(32)), ("a\nb", 1, bytes(32)), (NAME, -1, bytes(32)), (NAME, 1, bytes(31))],
)
def test_it_refuses_to_write_a_bad_checkpoint(origin, size, root):
    with pytest.raises(NoteError, match="checkpoint"):
        note.checkpoint_text(origin, size, root)
