"""A candidate and the champion measured on the same holdout, in the same run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from learning import data, gate
from learning.metrics import measure
from learning.models import Evaluation
from models_registry.artifacts import estimator_for
from models_registry.models import MLModel, ModelVersion


@dataclass
class Measured:
    report: dict
    holdout: dict
    failed: list[dict]

    @property
    def candidate_metrics(self) -> dict:
        return self.report["candidate"]


def tolerances() -> gate.Tolerances:
    return gate.Tolerances(
        overall=settings.LEARNING_GATE_TOLERANCE,
        gap=settings.LEARNING_GATE_GAP_TOLERANCE,
        min_count=settings.LEARNING_MIN_GROUP_COUNT,
    )


def compare(
    model: MLModel, candidate: Any, champion: ModelVersion | None, *, base: ModelVersion | None
) -> Measured:
    """Measure the candidate estimator and the champion on the holdout (the holdout labels,
    plus the test split of `base`'s data) and run the gate's checks."""
    rows = data.holdout(model, base)
    limits = tolerances()
    summary = {
        "rows": rows.n,
        "labels": len(rows.label_ids),
        "test_split_rows": rows.from_file,
        "label_ids_sha256": data.digest(rows.label_ids),
    }
    if rows.n == 0:
        empty = {"overall": {}, "by_group": {}}
        failed = gate.check(empty, empty, 0, limits)
        report = {
            "candidate": empty,
            "champion": empty,
            "checks": failed,
            "tolerances": limits.as_dict(),
        }
        return Measured(report, summary, failed)

    def run(estimator: Any) -> dict:
        return measure(
            estimator,
            rows.X,
            rows.y,
            rows.groups,
            favourable=model.favourable_label,
            min_count=limits.min_count,
        )

    new = run(candidate)
    old = run(estimator_for(champion)) if champion is not None else None
    failed = gate.check(new, old, rows.n, limits) if old is not None else []
    report = {"candidate": new, "champion": old, "checks": failed, "tolerances": limits.as_dict()}
    return Measured(report, summary, failed)


def evaluation_save(
    *,
    model: MLModel,
    candidate: ModelVersion,
    champion: ModelVersion | None,
    measured: Measured,
    purpose: str,
) -> Evaluation:
    """Store an evaluation (in the caller's transaction, which audits it)."""
    return Evaluation.objects.create(
        model=model,
        candidate=candidate,
        champion=champion,
        purpose=purpose,
        holdout=measured.holdout,
        report=measured.report,
        passed=not measured.failed,
        created_at=timezone.now(),
    )
