"""Canonical bytes of audit events.

Standard library only: the offline verifier (`python -m audit.verify`) imports this module
without Django. An event's canonical form is its JSON object with sorted keys, no whitespace,
UTF-8, and the payload embedded as already-canonical JSON; its hash is SHA-256 over those bytes,
which include `prev_hash`, so each event commits to the whole history before it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64

# json's own string escaper (C-accelerated), the one json.dumps(..., ensure_ascii=False) uses.
_quote = json.encoder.encode_basestring


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text, NaN and infinities refused."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


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


def event_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
