"""Canonical bytes of audit events.

Standard library only: the offline verifier (`python -m audit.verify`) imports this module
without Django. An event's canonical form is its JSON object with sorted keys, no whitespace,
UTF-8, and the payload embedded as already-canonical JSON. It includes `prev_hash`, so each
event commits to the whole history before it.

Two formats, told apart by the text itself:
- format 1 (events sealed before sequencing moved out of the commit path): no "v" key; the
  event's hash is SHA-256(text) and its Merkle leaf SHA-256(0x00 ‖ text), three hashes per
  event to verify;
- format 2: "v":2 and "recorded_at", the time the change was made (its transaction), beside
  "time", when the sealer put it into the log (never earlier than the event before it); the
  event's hash IS its Merkle leaf, SHA-256(0x00 ‖ text): two hashes per event to verify.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64

# json's own string escaper (C-accelerated), the one json.dumps(..., ensure_ascii=False) uses.
_quote = json.encoder.encode_basestring


# The encoder json.dumps would build for these arguments on every call, built once.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text, NaN and infinities refused."""
    return _CANONICAL.encode(value)


def format_time(moment: datetime) -> str:
    """UTC, microseconds, `Z`: one spelling per instant."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_text(
    *,
    seq: int,
    time: str,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    payload: str,
    prev_hash: str,
) -> str:
    """The event's canonical JSON text; `payload` is canonical JSON text already.

    Built by hand because verification runs this a million times; a test checks it equals
    canonical_json() of the same event as a dict.
    """
    return (
        '{"action":' + _quote(action)
        + ',"actor":' + _quote(actor)
        + ',"object_id":' + _quote(object_id)
        + ',"object_type":' + _quote(object_type)
        + ',"payload":' + payload
        + ',"prev_hash":' + _quote(prev_hash)
        + ',"seq":' + str(int(seq))
        + ',"time":' + _quote(time)
        + "}"
    )  # fmt: skip


def event_text_v2(
    *,
    seq: int,
    time: str,
    recorded_at: str,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    payload: str,
    prev_hash: str,
) -> str:
    """The canonical text of a format-2 event (see the module docstring)."""
    return (
        '{"action":' + _quote(action)
        + ',"actor":' + _quote(actor)
        + ',"object_id":' + _quote(object_id)
        + ',"object_type":' + _quote(object_type)
        + ',"payload":' + payload
        + ',"prev_hash":' + _quote(prev_hash)
        + ',"recorded_at":' + _quote(recorded_at)
        + ',"seq":' + str(int(seq))
        + ',"time":' + _quote(time)
        + ',"v":2}'
    )  # fmt: skip


def event_hash(text: str) -> str:
    """The hash of a format-1 event."""
    return hashlib.sha256(text.encode()).hexdigest()


LEAF_PREFIX = b"\x00"


def leaf_hash_hex(text: str) -> str:
    """The Merkle leaf of an event's text: RFC 6962 SHA-256(0x00 ‖ text); a format-2 event's
    hash."""
    return hashlib.sha256(LEAF_PREFIX + text.encode()).hexdigest()


def is_v2(text: str) -> bool:
    """Whether an event's canonical text is of format 2 (it ends with its "v" key)."""
    return text.endswith(',"v":2}')
