"""Simulated review work for the demo, so that its group report has real numbers to show.

The demo's reviewers alice and bob work the queue through the same services as the review
pages (task_claim_next, review_submit, task_escalate), and the senior carol adjudicates what
they escalate. Their answers are SIMULATED: each override is drawn at random with a chance
that depends on the applicant's race (see OVERRIDE), which real reviewers never see. The
simulated reviewers overturn approvals of black and hispanic applicants more often and
denials of white applicants more often, so the report has a gap to find: override rates that
differ by group, and a selection-rate gap that review widens instead of narrowing. Every
simulated answer says so in its rationale, and the report pages say that demo reviews are
simulated.

What is not simulated, and why: the services stamp every claim, answer and audit event with
the real time, so the simulated work happens when the demo loads (a few seconds), not over a
few days, and `seconds_spent` is the real time between claim and answer (a fraction of a
second). Back-dating either would mean writing times the audit log contradicts.

A part of the routed decisions (LEFT_OPEN) is left in the queue for people trying the demo.
Loading the demo again does nothing here once simulated reviews exist.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd
from django.contrib.auth.models import User

from models_registry import drift_baseline as drift_shape
from models_registry.models import MLModel
from reviews.models import ProtectedAttribute, Review, ReviewTask
from reviews.services import review_submit, task_claim_next, task_escalate

MARK = "Simulated review (demo):"
SEED = "oversight-demo-reviews"
# The chance that a simulated reviewer overturns the model's outcome, by race and outcome.
OVERRIDE = {
    "black": {"approve": 0.60, "deny": 0.20},
    "hispanic": {"approve": 0.50, "deny": 0.20},
    "white": {"approve": 0.03, "deny": 0.35},
}
ESCALATE = 0.06  # of the cases a reviewer claims
LEFT_OPEN = 0.15  # of the routed decisions, left in the queue
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


def simulate(model: MLModel) -> int:
    """Work the model's queue as the demo's reviewers would; returns the answers given (0 when
    the simulation ran before)."""
    if Review.objects.filter(decision__model=model, rationale__startswith=MARK).exists():
        return 0
    reviewers = [User.objects.get(username=name) for name in ("alice", "bob")]
    senior = User.objects.get(username="carol")
    races = _races(model)
    open_tasks = ReviewTask.objects.filter(model=model, state=ReviewTask.State.OPEN).count()
    budget = round(open_tasks * (1 - LEFT_OPEN))
    answers = 0
    for turn in range(budget):
        reviewer = reviewers[turn % len(reviewers)]
        task = task_claim_next(reviewer=reviewer, model=model.name, kind="initial")
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
    while (
        task := task_claim_next(reviewer=senior, model=model.name, kind="adjudication")
    ) is not None:
        review_submit(
            task_id=task.pk, reviewer=senior, **_answer(task, races.get(task.decision_id, ""))
        )
        answers += 1
    return answers


def training_drift_baseline(
    features: pd.DataFrame, specs: list[dict], pipeline: Any, favourable: str = "approve"
) -> dict:
    """The demo version's drift baseline: deciles of its training rows and of its score (the
    probability of the favourable label), value shares of its categories and booleans."""
    numeric = {s["name"]: float for s in specs if s["type"] in ("number", "boolean")}
    column = list(pipeline.classes_).index(favourable)
    scores = pipeline.predict_proba(features.astype(numeric))[:, column]
    return drift_shape.build(features, specs, scores=np.asarray(scores))
