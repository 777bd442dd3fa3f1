"""Points where apps above reviews act inside the transaction of a change made here.

The layers forbid reviews from importing the apps above it, yet some of their records must
be written in the same transaction as an outcome decided here (a training label and its
outbox message, when a review settles a decision). So reviews calls the functions registered
here, in order, inside its transaction, and the apps above register them in their
AppConfig.ready(). A listener that raises rolls the whole change back, as any part of it would.
This is the only such mechanism in Oversight; README's layout section lists who listens:
settlements (learning: labels; appeals raise their own), ingests, and claims (appeals: an
appeal is in review once a senior takes its task).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User

from reviews.models import Decision, Review, ReviewTask


@dataclass(frozen=True)
class Settlement:
    """A person's outcome for a decision: the final review (one reviewer, or two who agreed),
    an adjudication, or an appeal's result (which overturns or confirms the outcome)."""

    decision: Decision
    outcome: str
    source: str  # "review", "adjudication" or "appeal"
    by: User | None
    at: datetime
    review: Review | None = None
    appeal_id: int | None = None
    appeal_result: str = ""  # "upheld" or "overturned" when source is "appeal"


SettledListener = Callable[[Settlement], None]
_settled: list[SettledListener] = []


def on_settled(listener: SettledListener) -> None:
    """Call `listener` in the transaction of every settlement (registered once per process)."""
    if listener not in _settled:
        _settled.append(listener)


def settled(settlement: Settlement) -> None:
    for listener in _settled:
        listener(settlement)


IngestedListener = Callable[[list[Decision]], None]
_ingested: list[IngestedListener] = []


def on_ingested(listener: IngestedListener) -> None:
    """Call `listener` with the new decisions in the transaction that stores them (to send
    work after commit, such as shadow scoring)."""
    if listener not in _ingested:
        _ingested.append(listener)


def ingested(decisions: list[Decision]) -> None:
    for listener in _ingested:
        listener(decisions)


ClaimedListener = Callable[[ReviewTask], None]
_claimed: list[ClaimedListener] = []


def on_claimed(listener: ClaimedListener) -> None:
    """Call `listener` with the task in the transaction of every claim (an appeal is in
    review from the moment a senior takes its task)."""
    if listener not in _claimed:
        _claimed.append(listener)


def claimed(task: ReviewTask) -> None:
    for listener in _claimed:
        listener(task)
