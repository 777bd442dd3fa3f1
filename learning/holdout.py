"""The holdout that the loop cannot bias.

Labels of random-audit decisions are an unbiased sample: the audit draw is fixed by the
decision's identity (reviews.routing.audit_draw), independent of the model's output and of
what reviewers said. The draw also splits them, for good: a label whose draw lies in the
lower LEARNING_HOLDOUT_FRACTION of the audit rate is held out (never trained on); the rest
may be trained on. Active-learning and low-confidence labels are never in the holdout: they
were chosen because the model was unsure, and would flatter or punish it unfairly.
"""

from __future__ import annotations

from django.conf import settings


def audit_draw(routing: dict) -> tuple[float | None, float | None]:
    """The (draw, rate) of the random audit when it fired for this decision; else Nones."""
    for condition in routing.get("conditions", []):
        if condition.get("name") == "random_audit" and condition.get("fired"):
            return condition.get("draw"), condition.get("rate")
    return None, None


def in_holdout(draw: float | None, rate: float | None) -> bool:
    if draw is None or not rate:
        return False
    return draw / rate < settings.LEARNING_HOLDOUT_FRACTION
