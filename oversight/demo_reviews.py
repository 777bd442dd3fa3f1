"""Simulated review work for the demo, so that its pages have real numbers to show.

The demo's reviewers alice and bob work the queue through the same services as the review
pages (task_claim_next, review_submit, task_escalate), and the senior carol adjudicates what
they escalate and where they disagree. Their answers are SIMULATED: each override is drawn at
random with a chance that depends on the applicant's race (see OVERRIDE), which real
reviewers never see. The simulated reviewers overturn approvals of black and hispanic
applicants more often and denials of white applicants more often, so the report has a gap to
find: override rates that differ by group, and a selection-rate gap that review widens
instead of narrowing. Every simulated answer says so in its rationale, and the report pages
say that demo reviews are simulated.

The work comes as a few days would (simulate_days): the first part of the applications is
reviewed by one reviewer each; then the owner, erin, marks a few applications the model
settled as known-answer (gold) checks, with the outcome the data set records, and alice and
bob answer them (right most of the time); then erin asks for two independent reviewers for a
while, the rest of the applications arrive, the two reviewers sometimes disagree, and carol
settles those. A part of the last work (LEFT_OPEN), and the last adjudications
(ADJUDICATIONS_LEFT), are left in the queues for people trying the demo.

What is not simulated, and why: the services stamp every claim, answer and audit event with
the real time, so the simulated work happens when the demo loads (a few seconds), not over a
few days, and `seconds_spent` is the real time between claim and answer (a fraction of a
second). Back-dating either would mean writing times the audit log contradicts.

Loading the demo again does nothing here once simulated reviews exist.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User

from core.lazy import lazy_module
from models_registry import drift_baseline as drift_shape
from models_registry.models import MLModel
from models_registry.services import policy_update
from reviews.models import Decision, ProtectedAttribute, Review, ReviewTask
from reviews.services import gold_mark, review_submit, task_claim_next, task_escalate
from reviews.stats import SIMULATED_MARK

np = lazy_module("numpy")
pd = lazy_module("pandas")

MARK = SIMULATED_MARK  # the statistics pages find simulated answers by it
SEED = "oversight-demo-reviews"
# The chance that a simulated reviewer overturns the model's outcome, by race and outcome.
OVERRIDE = {
    "black": {"approve": 0.60, "deny": 0.20},
    "hispanic": {"approve": 0.50, "deny": 0.20},
    "white": {"approve": 0.03, "deny": 0.35},
}
ESCALATE = 0.06  # of the cases a reviewer claims
LEFT_OPEN = 0.15  # of the last days' tasks, left in the queue
ADJUDICATIONS_LEFT = 2  # left for a senior trying the demo
FIRST_DAYS = 0.75  # of the applications, reviewed by one reviewer each
GOLD_ITEMS, GOLD_COPIES, GOLD_RIGHT = 6, 2, 0.8  # known-answer checks, and how often right
REASONS = ("model_error", "missing_information", "policy_exception")
NOTE = (
    "Demo reviews are simulated: the demo's reviewers (alice, bob, carol) overturned the model "
    "at random, more or less often depending on the applicant's race, so that this report has "
    "differences to show. Their answers were given through the same services as real ones, all "
    "when the demo was loaded; real review work has no such rule."
)


def simulated_note(model: MLModel) -> str | None:
    """The note the report pages show when the model's reviews include simulated ones."""
    simulated = Review.objects.filter(decision__model=model, rationale__startswith=MARK)
    return NOTE if simulated.exists() else None


def _draw(external_id: str, salt: str) -> float:
    """A number in [0, 1) fixed by the application (its external id, the same on every
    database), so that every load of the demo simulates the same answers."""
    digest = hashlib.sha256(f"{SEED}:{salt}:{external_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _answer(task: ReviewTask, race: str) -> dict:
    decision = task.decision
    chance = OVERRIDE.get(race, {"approve": 0.1, "deny": 0.1}).get(decision.model_outcome, 0.1)
    if _draw(decision.external_id, f"override:{task.kind}") >= chance:
        return {"verdict": "agree", "rationale": f"{MARK} agrees with the model."}
    other = next(label for label in decision.model.labels if label != decision.model_outcome)
    reason = REASONS[int(_draw(decision.external_id, "reason") * len(REASONS))]
    return {
        "verdict": "override",
        "outcome": other,
        "reason_code": reason,
        "rationale": f"{MARK} overturned to {other} ({reason}).",
    }


def _races(model: MLModel) -> dict[int, str]:
    rows = ProtectedAttribute.objects.filter(decision__model=model, name="race")
    return dict(rows.values_list("decision_id", "value"))


def simulated(model: MLModel) -> bool:
    return Review.objects.filter(decision__model=model, rationale__startswith=MARK).exists()


def simulate(model: MLModel) -> int:
    """Work the model's queue as the demo's reviewers would, leaving LEFT_OPEN of it (and the
    last adjudications) for people; returns the answers given (0 when the simulation ran
    before)."""
    if simulated(model):
        return 0
    return _work(model, leave_open=LEFT_OPEN, adjudications_left=ADJUDICATIONS_LEFT)


def simulate_days(
    model: MLModel, items: list[dict], *, send: Callable[[list[dict]], int], truths: dict
) -> int:
    """The demo's few days, as the module docstring tells them: `items` (applications not
    sent yet) arrive through `send` in two parts, with the reviews, the known-answer checks
    and a spell of double review between; `truths` maps external ids to the outcome the data
    set records. Returns how many decisions were created."""
    cut = round(len(items) * FIRST_DAYS)
    created = send(items[:cut])
    _work(model, leave_open=0, adjudications_left=0)
    _gold_checks(model, truths)
    erin = User.objects.get(username="erin")
    policy_update(model=model, changes={"reviewers_required": 2}, actor=erin, note=DOUBLE_ON)
    created += send(items[cut:])
    policy_update(model=model, changes={"reviewers_required": 1}, actor=erin, note=DOUBLE_OFF)
    _work(model, leave_open=LEFT_OPEN, adjudications_left=ADJUDICATIONS_LEFT)
    return created


DOUBLE_ON = (
    "Demo: two independent reviewers on this week's applications, to measure how often "
    "reviewers agree (kappa) before trusting single reviews."
)
DOUBLE_OFF = "Demo: back to one reviewer per case after the week of double review."


def _work(model: MLModel, *, leave_open: float, adjudications_left: int) -> int:
    """alice and bob take turns on the reviewers' tasks (first reviews and second opinions)
    until only `leave_open` of them is left; carol then settles the adjudications but
    `adjudications_left`."""
    reviewers = [User.objects.get(username=name) for name in ("alice", "bob")]
    races = _races(model)
    waiting = ReviewTask.objects.filter(model=model, state=ReviewTask.State.OPEN)
    budget = round(waiting.exclude(kind="adjudication").count() * (1 - leave_open))
    answers = 0
    for turn in range(budget):
        reviewer = reviewers[turn % len(reviewers)]
        task = task_claim_next(reviewer=reviewer, model=model.name)
        if task is None:  # only tasks of decisions this one took part in: the other's turn
            reviewer = reviewers[(turn + 1) % len(reviewers)]
            task = task_claim_next(reviewer=reviewer, model=model.name)
        if task is None:
            break
        if _draw(task.decision.external_id, "escalate") < ESCALATE:
            task_escalate(
                task_id=task.pk, reviewer=reviewer, note=f"{MARK} unsure; a senior should decide."
            )
            continue
        review_submit(
            task_id=task.pk, reviewer=reviewer, **_answer(task, races.get(task.decision_id, ""))
        )
        answers += 1
    return answers + _adjudicate(model, races, adjudications_left)


def _adjudicate(model: MLModel, races: dict[int, str], left: int) -> int:
    senior = User.objects.get(username="carol")
    waiting = ReviewTask.objects.filter(model=model, kind="adjudication", state="open")
    answers = 0
    for _ in range(max(0, waiting.count() - left)):
        task = task_claim_next(reviewer=senior, model=model.name, kind="adjudication")
        if task is None:
            break
        answer = _answer(task, races.get(task.decision_id, ""))
        answer["rationale"] = f"{MARK} settled: {answer['rationale'].removeprefix(MARK).strip()}"
        review_submit(task_id=task.pk, reviewer=senior, **answer)
        answers += 1
    return answers


def _gold_checks(model: MLModel, truths: dict) -> int:
    """erin marks GOLD_ITEMS applications the model settled alone as known-answer checks, with
    the outcome the data set records; alice and bob answer the copies, right GOLD_RIGHT of the
    time. Returns the answers given."""
    erin = User.objects.get(username="erin")
    settled = Decision.objects.filter(
        model=model, finalized_by=Decision.FinalizedBy.MODEL, final_outcome="approve"
    ).order_by("pk")[1:]  # the first is the demo's "approved by the model alone" notice
    chosen = sorted(settled, key=lambda d: _draw(d.external_id, "gold"))[:GOLD_ITEMS]
    for decision in chosen:
        note = f"{MARK} the data set records {truths[decision.external_id]}."
        gold_mark(
            decision=decision,
            outcome=truths[decision.external_id],
            actor=erin,
            copies=GOLD_COPIES,
            note=note,
        )
    reviewers = [User.objects.get(username=name) for name in ("alice", "bob")]
    answers, more = 0, True
    while more:  # the queue holds only the copies now: each takes turns until none is left
        more = False
        for reviewer in reviewers:
            task = task_claim_next(reviewer=reviewer, model=model.name)
            if task is not None:
                answer = _gold_answer(task, truths, reviewer)
                review_submit(task_id=task.pk, reviewer=reviewer, **answer)
                answers, more = answers + 1, True
    return answers


def _gold_answer(task: ReviewTask, truths: dict, reviewer: User) -> dict:
    decision = task.decision
    truth = truths[decision.external_id]
    right = _draw(decision.external_id, f"gold:{reviewer.username}") < GOLD_RIGHT
    outcome = truth if right else next(x for x in decision.model.labels if x != truth)
    if outcome == decision.model_outcome:
        return {"verdict": "agree", "rationale": f"{MARK} agrees with the model."}
    return {
        "verdict": "override",
        "outcome": outcome,
        "reason_code": "model_error",
        "rationale": f"{MARK} overturned to {outcome} (model_error).",
    }


def training_drift_baseline(
    features: pd.DataFrame, specs: list[dict], pipeline: Any, favourable: str = "approve"
) -> dict:
    """The demo version's drift baseline: deciles of its training rows and of its score (the
    probability of the favourable label), value shares of its categories and booleans."""
    numeric = {s["name"]: float for s in specs if s["type"] in ("number", "boolean")}
    column = list(pipeline.classes_).index(favourable)
    scores = pipeline.predict_proba(features.astype(numeric))[:, column]
    return drift_shape.build(features, specs, scores=np.asarray(scores))
