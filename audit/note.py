"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519, and tlog checkpoints
(https://c2sp.org/tlog-checkpoint).

Standard library plus `cryptography` only: the offline verifier (`python -m audit.verify`)
imports this module without Django.

A signed note is its text (UTF-8 lines, each ending in "\\n"), a blank line, then signature
lines "— <key name> <base64(key ID ‖ signature)>\\n". The key ID is
SHA-256(name ‖ "\\n" ‖ 0x01 ‖ Ed25519 public key)[:4]; the signature is Ed25519 over the text
bytes, final newline included, blank line excluded. Keys travel as the strings of Go's
golang.org/x/mod/sumdb/note, so other tlog tools read them:

    verifier key  <name>+<key ID hex>+base64(0x01 ‖ public key)
    signer key    PRIVATE+KEY+<name>+<key ID hex>+base64(0x01 ‖ 32-byte seed)

Rules enforced, from the spec: key names are non-empty, without Unicode spaces, "+" or control
characters; a note is valid UTF-8 without control characters other than newline; the text ends
in a newline and is separated from the signatures by the *last* blank line (so, as the spec
allows, the text itself may contain blank lines; a checkpoint's may not); base64 is standard,
padded and canonical; at most MAX_SIGNATURES signature lines. Signatures by other keys, even
with the same name or the same key ID, are ignored, as the spec requires; a signature by the
given key that does not verify rejects the note.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = 0x01
DASH = "— "  # U+2014 EM DASH, then a space: how every signature line starts
MAX_SIGNATURES = 100  # the spec asks verifiers for a limit of at least 16; Go uses 100
KEY_ID_SIZE = 4
SIGNATURE_SIZE = 64
ROOT_SIZE = 32
MAX_TREE_SIZE = 2**64 - 1  # tlog tree sizes are uint64

_HEX_ID = re.compile(r"[0-9a-f]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class NoteError(ValueError):
    """A key, note or checkpoint is malformed, or a note's signature does not check out."""


# ---------------------------------------------------------------------------------- keys


def key_id(name: str, public_key: bytes) -> bytes:
    """SHA-256(name ‖ "\\n" ‖ 0x01 ‖ public key)[:4], the Ed25519 key ID of the spec."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


def generate_signer(name: str) -> str:
    """A new signer key string "PRIVATE+KEY+<name>+<key ID>+<base64(0x01 ‖ seed)>"."""
    _check_name(name)
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    kid = key_id(name, _public_bytes(private))
    return f"PRIVATE+KEY+{name}+{kid.hex()}+{_b64(bytes([ED25519]) + seed)}"


def parse_signer(signer: str) -> tuple[str, Ed25519PrivateKey]:
    """(name, private key) of a signer key string; NoteError names what is wrong."""
    return _parse_private(signer, ED25519, key_id)


def _parse_private(signer: str, algorithm: int, id_of) -> tuple[str, Ed25519PrivateKey]:
    if not isinstance(signer, str):
        raise NoteError("signer key: not a string")
    parts = signer.split("+", 4)  # the base64 part may itself contain "+"
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise NoteError('signer key: expected "PRIVATE+KEY+<name>+<key id>+<key>"')
    _, _, name, hex_id, encoded = parts
    _check_name(name, "signer key")
    kid = _parse_hex_id(hex_id, "signer key")
    raw = _key_material(encoded, "signer key", algorithm)
    private = Ed25519PrivateKey.from_private_bytes(raw)
    if id_of(name, _public_bytes(private)) != kid:
        raise NoteError(f"signer key: key id {hex_id} does not match the name and key")
    return name, private


def vkey_for(signer: str) -> str:
    """The verifier key string "<name>+<key ID>+<base64(0x01 ‖ public key)>" of a signer."""
    name, private = parse_signer(signer)
    public = _public_bytes(private)
    return f"{name}+{key_id(name, public).hex()}+{_b64(bytes([ED25519]) + public)}"


def parse_vkey(vkey: str) -> tuple[str, bytes, bytes]:
    """(name, 4-byte key ID, 32-byte public key) of a verifier key string; NoteError names
    what is wrong."""
    return _parse_public(vkey, ED25519, key_id)


def _parse_public(vkey: str, algorithm: int, id_of) -> tuple[str, bytes, bytes]:
    if not isinstance(vkey, str):
        raise NoteError("verifier key: not a string")
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise NoteError('verifier key: expected "<name>+<key id>+<key>"')
    name, hex_id, encoded = parts
    _check_name(name, "verifier key")
    kid = _parse_hex_id(hex_id, "verifier key")
    public = _key_material(encoded, "verifier key", algorithm)
    if id_of(name, public) != kid:
        raise NoteError(f"verifier key: key id {hex_id} does not match the name and key")
    try:
        Ed25519PublicKey.from_public_bytes(public)
    except ValueError:
        raise NoteError("verifier key: not an Ed25519 public key") from None
    return name, kid, public


def _check_name(name: object, where: str = "key name") -> None:
    if not isinstance(name, str) or not name:
        raise NoteError(f"{where}: the key name is empty")
    for ch in name:
        if ch.isspace() or ch == "+" or ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise NoteError(
                f"{where}: key name {name!r} contains {ch!r}; names must not contain "
                "spaces, '+' or control characters"
            )


def _parse_hex_id(hex_id: str, where: str) -> bytes:
    if not _HEX_ID.fullmatch(hex_id):
        raise NoteError(f"{where}: key id {hex_id!r} is not 8 lowercase hex digits")
    return bytes.fromhex(hex_id)


def _key_material(encoded: str, where: str, algorithm: int = ED25519) -> bytes:
    """The 32 key bytes after the algorithm byte (0x01: Ed25519 note signatures, 0x04:
    Ed25519 cosignatures)."""
    data = _unb64(encoded, f"{where}: key")
    if len(data) != 1 + 32:
        raise NoteError(
            f"{where}: key is {len(data)} bytes, expected 33 ({algorithm:#04x} and 32 bytes)"
        )
    if data[0] != algorithm:
        what = "Ed25519 (0x01)" if algorithm == ED25519 else f"cosignature/v1 ({algorithm:#04x})"
        raise NoteError(f"{where}: algorithm byte {data[0]:#04x} is not {what}")
    return data[1:]


def _public_bytes(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


# --------------------------------------------------------------------------------- notes


def sign(text: str, signer: str) -> str:
    """The signed note: `text`, a blank line, and one signature line by `signer`."""
    _check_text(text)
    name, private = parse_signer(signer)
    kid = key_id(name, _public_bytes(private))
    signature = private.sign(text.encode())
    return f"{text}\n{DASH}{name} {_b64(kid + signature)}\n"


def open_note(note: str, vkey: str) -> str:
    """The text of `note` if it carries a valid signature by the key `vkey` (same name AND
    key ID). Raises NoteError naming the problem: a bad key, a malformed note, no signature
    by this key, or a signature by this key that does not verify."""
    name, kid, public = parse_vkey(vkey)
    text, signatures = _split(note)
    mine = [sig for signer, sig in signatures if signer == name and sig[:KEY_ID_SIZE] == kid]
    if not mine:
        others = ", ".join(f"{s}+{sig[:KEY_ID_SIZE].hex()}" for s, sig in signatures)
        raise NoteError(f"no signature by {name}+{kid.hex()} (signed by: {others})")
    key = Ed25519PublicKey.from_public_bytes(public)
    for sig in mine:
        try:
            if len(sig) != KEY_ID_SIZE + SIGNATURE_SIZE:
                raise InvalidSignature
            key.verify(sig[KEY_ID_SIZE:], text.encode())
        except InvalidSignature:
            raise NoteError(f"bad signature by {name}+{kid.hex()}") from None
    return text


def _split(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """(text, [(key name, key ID ‖ signature)]) of a well-formed signed note."""
    if not isinstance(note, str):
        raise NoteError("malformed note: not a string")
    _check_chars(note, "malformed note")
    if not note.endswith("\n"):
        raise NoteError("malformed note: it does not end with a newline")
    blank = note.rfind("\n\n")
    if blank < 0:
        raise NoteError("malformed note: no blank line between the text and the signatures")
    text, block = note[: blank + 1], note[blank + 2 :]
    lines = block.split("\n")[:-1]
    if not lines:
        raise NoteError("malformed note: no signature lines after the blank line")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    return text, [_signature_line(line, n) for n, line in enumerate(lines, 1)]


def _signature_line(line: str, n: int) -> tuple[str, bytes]:
    where = f"malformed note: signature line {n}"
    if not line.startswith(DASH):
        raise NoteError(f'{where} does not start with "— " (em dash, space)')
    fields = line[len(DASH) :].split(" ")
    if len(fields) != 2:
        raise NoteError(f'{where} is not "— <key name> <signature>" (single spaces)')
    name, encoded = fields
    _check_name(name, where)
    data = _unb64(encoded, f"{where}: signature")
    if len(data) <= KEY_ID_SIZE:
        raise NoteError(f"{where}: signature is {len(data)} bytes, too short")
    return name, data


def _check_text(text: object) -> None:
    if not isinstance(text, str) or not text:
        raise NoteError("note text: empty")
    _check_chars(text, "note text")
    if not text.endswith("\n"):
        raise NoteError("note text: it does not end with a newline")


def _check_chars(value: str, where: str) -> None:
    try:
        value.encode()
    except UnicodeEncodeError:
        raise NoteError(f"{where}: not valid UTF-8") from None
    for ch in value:
        if ord(ch) < 0x20 and ch != "\n":
            raise NoteError(f"{where}: control character U+{ord(ch):04X} is not allowed")


# ---------------------------------------------------------------------------- checkpoints


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    """The checkpoint note text "<origin>\\n<size>\\n<base64(root)>\\n"."""
    if not isinstance(origin, str) or not origin or "\n" in origin:
        raise NoteError("checkpoint: the origin must be one non-empty line")
    _check_chars(origin, "checkpoint: origin")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_TREE_SIZE:
        raise NoteError(f"checkpoint: tree size {size!r} is not a non-negative 64-bit integer")
    if not isinstance(root, bytes) or len(root) != ROOT_SIZE:
        raise NoteError("checkpoint: the root hash must be 32 bytes")
    return f"{origin}\n{size}\n{_b64(root)}\n"


def parse_checkpoint(text: str) -> tuple[str, int, bytes]:
    """(origin, tree size, root hash) of checkpoint note text; extension lines, allowed by the
    spec, are checked to be non-empty and otherwise ignored. NoteError names what is wrong."""
    if not isinstance(text, str):
        raise NoteError("checkpoint: not a string")
    _check_chars(text, "checkpoint")
    if not text.endswith("\n"):
        raise NoteError("checkpoint: it does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError(f"checkpoint: {len(lines)} lines, expected origin, size and root hash")
    if "" in lines:
        raise NoteError(f"checkpoint: line {lines.index('') + 1} is empty")
    origin, size_line, root_line = lines[:3]
    if not _DECIMAL.fullmatch(size_line) or len(size_line) > 20:
        raise NoteError(
            f"checkpoint: tree size {size_line!r} is not a decimal number without leading zeros"
        )
    size = int(size_line)
    if size > MAX_TREE_SIZE:
        raise NoteError(f"checkpoint: tree size {size} does not fit in 64 bits")
    root = _unb64(root_line, "checkpoint: root hash")
    if len(root) != ROOT_SIZE:
        raise NoteError(f"checkpoint: root hash is {len(root)} bytes, expected 32")
    return origin, size, root


# -------------------------------------------------------------------------------- base64


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(encoded: str, where: str) -> bytes:
    """Strict standard base64: alphabet, padding, and the one canonical spelling of the bytes."""
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{where}: not valid base64") from None
    if not encoded or _b64(data) != encoded:
        raise NoteError(f"{where}: not valid base64")
    return data


# ---------------------------------------------------------------------------- cosignatures
#
# https://c2sp.org/tlog-cosignature: a witness's statement that, as of `time`, the checkpoint
# is the largest consistent tree head it has seen of the log. Its signature line is an
# ordinary note signature whose key ID uses the algorithm byte 0x04, and whose signature is
# the 8-byte big-endian timestamp then the Ed25519 signature over
# "cosignature/v1\ntime <timestamp>\n" followed by the checkpoint's text.

COSIGNATURE_V1 = 0x04


def cosigner_key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([COSIGNATURE_V1]) + public_key).digest()[
        :KEY_ID_SIZE
    ]


def generate_cosigner(name: str) -> str:
    """A new witness key, as a signer string (PRIVATE+KEY+name+id+base64(0x04 ‖ seed))."""
    _check_name(name)
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    kid = cosigner_key_id(name, _public_bytes(private))
    return f"PRIVATE+KEY+{name}+{kid.hex()}+{_b64(bytes([COSIGNATURE_V1]) + seed)}"


def parse_cosigner(signer: str) -> tuple[str, Ed25519PrivateKey]:
    return _parse_private(signer, COSIGNATURE_V1, cosigner_key_id)


def cosigner_vkey_for(signer: str) -> str:
    name, private = parse_cosigner(signer)
    public = _public_bytes(private)
    kid = cosigner_key_id(name, public)
    return f"{name}+{kid.hex()}+{_b64(bytes([COSIGNATURE_V1]) + public)}"


def parse_cosigner_vkey(vkey: str) -> tuple[str, bytes, bytes]:
    """(name, key ID, public key) of a witness's verifier key (algorithm byte 0x04)."""
    return _parse_public(vkey, COSIGNATURE_V1, cosigner_key_id)


def _cosigned_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()


def cosign(text: str, signer: str, timestamp: int) -> str:
    """The cosignature line ("— <name> <base64>\\n") of checkpoint text `text` at `timestamp`
    (seconds since the epoch)."""
    _check_text(text)
    if not isinstance(timestamp, int) or not 0 <= timestamp < 2**63:
        raise NoteError("cosignature: the timestamp must be a non-negative 63-bit integer")
    name, private = parse_cosigner(signer)
    kid = cosigner_key_id(name, _public_bytes(private))
    signature = private.sign(_cosigned_message(text, timestamp))
    return f"{DASH}{name} {_b64(kid + timestamp.to_bytes(8, 'big') + signature)}\n"


def open_cosignature(note: str, vkey: str) -> int:
    """The timestamp of the valid cosignature by the witness key `vkey` on `note` (a signed
    checkpoint carrying it among its signature lines); NoteError when there is none, or it
    does not verify."""
    name, kid, public = parse_cosigner_vkey(vkey)
    text, signatures = _split(note)
    mine = [sig for signer, sig in signatures if signer == name and sig[:KEY_ID_SIZE] == kid]
    if not mine:
        raise NoteError(f"no cosignature by {name}+{kid.hex()}")
    key = Ed25519PublicKey.from_public_bytes(public)
    for sig in mine:
        if len(sig) != KEY_ID_SIZE + 8 + SIGNATURE_SIZE:
            raise NoteError(f"bad cosignature by {name}+{kid.hex()}: wrong length")
        timestamp = int.from_bytes(sig[KEY_ID_SIZE : KEY_ID_SIZE + 8], "big")
        try:
            key.verify(sig[KEY_ID_SIZE + 8 :], _cosigned_message(text, timestamp))
        except InvalidSignature:
            raise NoteError(f"bad cosignature by {name}+{kid.hex()}") from None
        return timestamp
    raise NoteError(f"no cosignature by {name}+{kid.hex()}")  # pragma: no cover
