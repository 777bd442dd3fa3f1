"""Answers and settlement: a review confirms or overrides; agreement settles the decision,
disagreement opens an adjudication, and the final outcome is set once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit import batched, record_many
from core.errors import ApplicationError, invalid
from reviews import hooks
from reviews.models import Decision, GoldLabel, Review, ReviewTask
from reviews.services.common import (
    ADJUDICATION_PRIORITY,
    CANCELLED,
    CLAIMED,
    DONE,
    OPEN,
    appeal_task_refused,
    event,
    held,
    lock_decision,
    open_adjudication,
)


@dataclass
class Answer:
    verdict: str | None
    outcome: str | None
    reason_code: str
    rationale: str
    explanation_for_person: str = ""


EXPLANATION_LIMIT = 2000


def _check_answer(task: ReviewTask, decision: Decision, given: Answer) -> Answer:
    """Agree, or override with an outcome, a reason code and a rationale. A blind reviewer does
    not know the model's answer, so gives an outcome and a rationale, and the verdict follows."""
    labels = decision.model.labels
    verdict, outcome = given.verdict, given.outcome
    reason, rationale = (given.reason_code or "").strip(), (given.rationale or "").strip()
    errors: dict[str, list[str]] = {}
    if task.blind:
        if outcome not in labels:
            errors["outcome"] = [f"give your own outcome: one of {', '.join(labels)}"]
        if not rationale:
            errors["rationale"] = ["is required in blind review: say why"]
        verdict = (
            Review.Verdict.AGREE if outcome == decision.model_outcome else Review.Verdict.OVERRIDE
        )
        reason = reason or ("" if verdict == Review.Verdict.AGREE else "other")
    elif verdict == Review.Verdict.AGREE:
        outcome = decision.model_outcome
    elif verdict == Review.Verdict.OVERRIDE:
        if outcome not in labels:
            errors["outcome"] = [f"must be one of {', '.join(labels)}"]
        elif outcome == decision.model_outcome:
            errors["outcome"] = [
                f"the model already said {outcome}: that is agreeing, not overriding"
            ]
        if not rationale:
            errors["rationale"] = ["is required when overriding: say why the model is wrong"]
    else:
        errors["verdict"] = ['must be "agree" or "override"']
    codes = settings.REVIEW_REASON_CODES
    if verdict == Review.Verdict.OVERRIDE and reason not in codes:
        errors["reason_code"] = [f"must be one of {', '.join(codes)}"]
    if len(rationale) > 5000:
        errors["rationale"] = ["must be at most 5000 characters"]
    explanation = _explanation_for_person(task, verdict, given, errors)
    if errors:
        raise invalid(errors)
    overriding = verdict == Review.Verdict.OVERRIDE
    return Answer(verdict, outcome, reason if overriding else "", rationale, explanation)


def _explanation_for_person(task: ReviewTask, verdict: str | None, given: Answer, errors) -> str:
    """Words for the person, kept with an override only: agreeing leaves the model's reasons
    in their notice. In blind review the verdict follows the outcome, so it is dropped there
    when the reviewer turns out to agree."""
    text = (given.explanation_for_person or "").strip()
    if not text:
        return ""
    if len(text) > EXPLANATION_LIMIT:
        errors["explanation_for_person"] = [f"must be at most {EXPLANATION_LIMIT} characters"]
    if verdict == Review.Verdict.OVERRIDE:
        return text
    if not task.blind and verdict == Review.Verdict.AGREE:
        errors["explanation_for_person"] = [
            "goes with an override: when you agree, the person is given the model's reasons"
        ]
    return ""


def review_submit(
    *,
    task_id: int,
    reviewer: User,
    verdict: str | None = None,
    outcome: str | None = None,
    reason_code: str = "",
    rationale: str = "",
    explanation_for_person: str = "",
) -> Review:
    """Record the reviewer's answer; settle the decision when the answer settles it.

    `verdict` is "agree" or "override" (with `outcome`, `reason_code` and `rationale`, and
    optionally `explanation_for_person`: words for the person the decision is about); in
    blind review the reviewer gives `outcome` and `rationale`, and the verdict follows.
    An appeal task is not answered here: the appeals app decides it, with its own rules."""
    now = timezone.now()
    given = Answer(verdict, outcome, reason_code, rationale, explanation_for_person)
    with transaction.atomic(), batched():
        # One insert for the answer's events and those the settlement's listeners record
        # (the label's), in that order, at the end of the block.
        decision = lock_decision(task_id)  # the decision first, then the task (see there)
        task = held(task_id, reviewer, now)
        if task.kind == ReviewTask.Kind.APPEAL:
            raise appeal_task_refused()
        answer = _check_answer(task, decision, given)
        review = _store_review(task, decision, answer, reviewer, now)
        task.state, task.closed_at = DONE, now
        task.save(update_fields=["state", "closed_at"])
        events = [
            event(
                "review.submitted",
                reviewer,
                task,
                review=review.pk,
                verdict=review.verdict,
                outcome=review.outcome,
                agrees_with_model=review.agrees_with_model,
                reason_code=review.reason_code,
                rationale=review.rationale,
                explanation_for_person=review.explanation_for_person,
                seconds_spent=review.seconds_spent,
                model_hidden=review.model_hidden,
                gold=review.is_gold,
            )
        ]
        if not task.is_gold:
            events += _settle(decision, task, review, now)
        record_many(events)
        if decision.finalized_at == now:  # this answer settled it
            hooks.settled(
                hooks.Settlement(
                    decision=decision,
                    outcome=review.outcome,
                    source=SOURCES[decision.finalized_by],
                    by=reviewer,
                    at=now,
                    review=review,
                )
            )
    return review


# What kind of human outcome settled a decision, by who finalized it.
SOURCES = {
    Decision.FinalizedBy.REVIEWER: "review",
    Decision.FinalizedBy.ADJUDICATOR: "adjudication",
    Decision.FinalizedBy.APPEAL: "appeal",
}


def _store_review(
    task: ReviewTask, decision: Decision, answer: Answer, reviewer: User, now: datetime
) -> Review:
    gold = GoldLabel.objects.filter(decision=decision).first() if task.is_gold else None
    return Review.objects.create(
        task=task,
        decision=decision,
        reviewer=reviewer,
        kind=task.kind,
        verdict=answer.verdict,
        outcome=answer.outcome,
        agrees_with_model=answer.outcome == decision.model_outcome,
        reason_code=answer.reason_code,
        rationale=answer.rationale,
        explanation_for_person=answer.explanation_for_person,
        seconds_spent=round((now - task.claimed_at).total_seconds(), 3),
        model_hidden=task.blind,
        is_gold=task.is_gold,
        gold_correct=(answer.outcome == gold.outcome) if gold else None,
        created_at=now,
    )


@dataclass(frozen=True)
class _Sibling:
    """A task of the decision, as settlement weighs it, with its answer's outcome if any."""

    pk: int
    kind: str
    state: str
    outcome: str | None


def _settle(decision: Decision, task: ReviewTask, review: Review, now: datetime) -> list[dict]:
    """After a review: finalize, open an adjudication, or wait for the other reviewer."""
    K, By = ReviewTask.Kind, Decision.FinalizedBy
    # The decision's tasks and their answers' outcomes, in one query (the decision is locked).
    tasks = [
        _Sibling(*row)
        for row in decision.tasks.filter(is_gold=False)
        .order_by("id")
        .values_list("id", "kind", "state", "review__outcome")
    ]
    if task.kind == K.ADJUDICATION:
        return _finalize(decision, review, By.ADJUDICATOR, now, tasks)
    if any(t.kind == K.ADJUDICATION and t.state in (OPEN, CLAIMED) for t in tasks):
        # Someone escalated, or the reviewers already disagreed: a senior settles it. This
        # answer is on record for them, and never overrules them.
        return []
    sibling_kind = K.SECOND_OPINION if task.kind == K.INITIAL else K.INITIAL
    siblings = [t for t in tasks if t.kind == sibling_kind and t.state != CANCELLED]
    if not siblings:
        return _finalize(decision, review, By.REVIEWER, now, tasks)
    other = next((t.outcome for t in siblings if t.outcome is not None), None)
    if other is None:
        return []  # two independent reviews are required; wait for the other one
    if other == review.outcome:
        return _finalize(decision, review, By.REVIEWER, now, tasks)
    adjudication = open_adjudication(
        decision,
        now,
        priority=ADJUDICATION_PRIORITY,
        note=f"The reviewers disagree: {other} and {review.outcome}.",
    )
    return [
        event(
            "task.opened",
            None,
            adjudication,
            reason="disagreement",
            outcomes=sorted([other, review.outcome]),
        )
    ]


def _finalize(
    decision: Decision, review: Review, by: str, now: datetime, tasks: list[_Sibling]
) -> list[dict]:
    """Set the final outcome, once; close the decision's other open work."""
    settled = Decision.objects.filter(pk=decision.pk, finalized_at=None).update(
        status=Decision.Status.FINAL,
        final_outcome=review.outcome,
        finalized_by=by,
        finalized_by_user=review.reviewer,
        finalized_at=now,
    )
    if not settled:
        raise ApplicationError("This decision was already final; nothing was changed.")
    decision.status, decision.final_outcome, decision.finalized_by = (
        Decision.Status.FINAL,
        review.outcome,
        by,
    )
    decision.finalized_by_user, decision.finalized_at = review.reviewer, now
    leftovers = [t.pk for t in tasks if t.state in (OPEN, CLAIMED) and t.pk != review.task_id]
    if leftovers:
        ReviewTask.objects.filter(pk__in=leftovers).update(state=CANCELLED, closed_at=now)
    return [
        {
            "action": "decision.finalized",
            "actor": review.reviewer,
            "obj": decision,
            "payload": {
                "final_outcome": review.outcome,
                "model_outcome": decision.model_outcome,
                "overridden": review.outcome != decision.model_outcome,
                "finalized_by": by,
                "review": review.pk,
                "cancelled_tasks": leftovers,
            },
        }
    ]
