"""State changes of decisions and review tasks. Each runs in one transaction with its audit.

ingest: predictions in; claims: leases; answers: reviews and settlement; escalation: to a
senior; gold: known-answer checks."""

from reviews.services.answers import review_submit
from reviews.services.claims import leases_expire, task_claim_next, task_release, task_renew
from reviews.services.escalation import task_escalate
from reviews.services.gold import gold_mark
from reviews.services.ingest import Ingested, decisions_ingest

__all__ = [
    "Ingested",
    "decisions_ingest",
    "gold_mark",
    "leases_expire",
    "review_submit",
    "task_claim_next",
    "task_escalate",
    "task_release",
    "task_renew",
]
