"""The person's receipt: their decision's record in the audit log, with RFC 6962 inclusion
proofs against the latest signed checkpoint, in the form `python -m audit.verify` checks
offline (a decision proof file with its "key" and "decision").

The intake event is given in full: it carries the model's outcome and, for a decision the
model settled alone, its final outcome (there is no later event of the model's). Every other
event of the decision is given by its leaf hash and proof only: most are made by people
(reviews, settlements, the appeal's result) and their text names them. Reads (`*.viewed`) are
left out: they are about who looked, not about the decision."""

from __future__ import annotations

import json

from audit import keys
from audit.selectors import object_proof
from reviews.models import Decision

SHOWN = {"decision.ingested"}


def receipt_for(decision: Decision) -> dict | None:
    """The receipt, or None while it cannot be proven yet (no signing key, or the intake is
    not under a signed checkpoint: checkpoints are signed every minute or so)."""
    if not keys.configured():
        return None
    proof = object_proof(object_type="decision", object_id=decision.pk)
    events = []
    for event in proof["events"]:
        text = json.loads(event["canonical"])
        if text["action"].endswith(".viewed"):
            continue
        if text["action"] not in SHOWN or text["actor"].startswith("user:"):
            event = {**event, "canonical": None}
        events.append(event)
    intake_proven = any(e["canonical"] is not None and e["proof"] is not None for e in events)
    if proof["checkpoint"] is None or not intake_proven:
        return None
    return {
        "decision": str(decision.pk),
        "key": keys.vkey(),
        "checkpoint": proof["checkpoint"],
        "events": events,
    }


def receipt_bytes(receipt: dict) -> bytes:
    return (json.dumps(receipt, indent=1, ensure_ascii=False) + "\n").encode()
