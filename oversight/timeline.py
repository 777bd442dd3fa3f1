"""A decision's audit events as a timeline an auditor reads: who did what, when, in words, with
each event's canonical text and inclusion proof one click away. Built from what
reviews.selectors.decision_log gives an auditor (the events as logged, with their proofs)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.utils.dateparse import parse_datetime

from reviews.presentation import KIND_WORDS, reason_label

Words = Callable[[str, dict], str]


def _who(actor: str) -> str:
    """ "user:alice" → alice; "service:svc-x" → the service svc-x; the system as such."""
    kind, _, name = actor.partition(":")
    if kind == "user":
        return name
    if kind == "service":
        return f"the service {name}"
    if kind == "command":
        return f"the command {name}"
    return actor or "the system"


def _kind(payload: dict) -> str:
    return KIND_WORDS.get(payload.get("kind", ""), "task")


def _pct(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, int | float) else "?"


def _ingested(who: str, p: dict) -> str:
    version = f" (version {p['version']})" if p.get("version") else ""
    said = f"the model{version} said {p.get('model_outcome')}, {_pct(p.get('confidence'))} sure"
    if p.get("routed"):
        reasons = ", ".join(r.replace("_", " ") for r in p.get("reasons", []))
        then = f"sent to a person ({reasons})"
    else:
        then = f"final at once: {p.get('final_outcome') or p.get('model_outcome')}"
    return f"Received from {who}: {said}; {then}."


def _answered(who: str, p: dict) -> str:
    verdict = "agreeing with" if p.get("agrees_with_model") else "overriding"
    reason = f", reason: {reason_label(p['reason_code']).lower()}" if p.get("reason_code") else ""
    blind = " (blind)" if p.get("model_hidden") else ""
    gold = " It was a known-answer check." if p.get("gold") else ""
    seconds = p.get("seconds_spent")
    spent = f" after {seconds:.0f} s" if isinstance(seconds, int | float) else ""
    return (
        f"{who} answered the {_kind(p)}{blind}: {p.get('outcome')}, {verdict} the model{reason}"
        f"{spent}.{gold}"
    )


def _finalized(who: str, p: dict) -> str:
    by = {"reviewer": "a reviewer", "adjudicator": "a senior (adjudication)"}.get(
        p.get("finalized_by", ""), p.get("finalized_by", "")
    )
    turned = " The model's answer was overturned." if p.get("overridden") else ""
    return f"Final outcome {p.get('final_outcome')}, set by {by} ({who}).{turned}"


WORDS: dict[str, Words] = {
    "decision.ingested": lambda who, p: _ingested(who, p),
    "task.opened": lambda who, p: (
        f"A {_kind(p)} task opened"
        + (f" ({p['reason']})" if p.get("reason") else "")
        + (f": the reviewers said {' and '.join(p['outcomes'])}" if p.get("outcomes") else "")
        + "."
    ),
    "task.claimed": lambda who, p: f"{who} took the {_kind(p)} (task {p.get('task')}).",
    "task.renewed": lambda who, p: f"{who} renewed the lease on task {p.get('task')}.",
    "task.released": lambda who, p: f"{who} handed task {p.get('task')} back to the queue.",
    "task.expired": lambda who, p: (
        f"The lease on task {p.get('task')} ran out; it went back to the queue."
    ),
    "task.escalated": lambda who, p: (
        f"{who} escalated the {_kind(p)} to a senior: “{p.get('note', '')}”."
    ),
    "review.submitted": lambda who, p: _answered(who, p),
    "decision.finalized": lambda who, p: _finalized(who, p),
    "gold.marked": lambda who, p: (
        f"{who} made it a known-answer check: the right answer is "
        f"{p.get('outcome')}, served to {p.get('copies')} reviewer(s)."
    ),
    "label.recorded": lambda who, p: (
        f"Recorded as a training label: {p.get('outcome')} (from the {p.get('source')})."
    ),
    "appeal.filed": lambda who, p: (
        f"Appealed by the person ({p.get('via', '')}), against {p.get('outcome_appealed')}."
    ),
    "appeal.in_review": lambda who, p: f"{who} took the appeal.",
    "appeal.decided": lambda who, p: (
        f"{who} decided the appeal: {p.get('result')}; the outcome is {p.get('final_outcome')}."
    ),
    "appeal.withdrawn": lambda who, p: "The person withdrew the appeal.",
    "access_code.issued": lambda who, p: f"{who} issued the person an access code.",
    "decision.reference_assigned": lambda who, p: "The person's reference was assigned.",
    "shadow.scored": lambda who, p: "Scored by a candidate version in the shadow.",
}
READS = {"decision.viewed", "case.viewed", "notice.viewed", "appeal.viewed"}


def words_for(action: str, actor: str, payload: dict) -> str:
    who = _who(actor)
    if action in WORDS:
        try:
            return WORDS[action](who, payload)
        except (KeyError, TypeError, ValueError, AttributeError):
            pass  # an older payload of another shape: said plainly below
    if action in READS:
        return f"{who} looked at it ({action.split('.')[0].replace('_', ' ')} page)."
    return f"{action.replace('.', ' ').replace('_', ' ').capitalize()}, by {who}."


def timeline(log: dict) -> list[dict]:
    """decision_log's events as entries: time, who, what (in words), whether it settled the
    decision, and the event as logged (canonical text, leaf hash, proof) to unfold."""
    entries = []
    for event in log["events"]:
        logged = json.loads(event["canonical"])
        payload = logged.get("payload") if isinstance(logged.get("payload"), dict) else {}
        action, actor = logged.get("action", ""), logged.get("actor", "")
        entries.append(
            {
                "seq": event["seq"],
                "time": parse_datetime(logged.get("recorded_at") or logged.get("time") or ""),
                "action": action,
                "who": _who(actor),
                "words": words_for(action, actor, payload),
                "settled": action in ("decision.finalized", "appeal.decided"),
                "read": action in READS,
                "canonical": event["canonical"],
                "leaf_hash": event.get("leaf_hash"),
                "proof": event.get("proof"),
            }
        )
    return entries
