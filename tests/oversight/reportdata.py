"""Decisions made directly in the database for the report tests, with every field a report
reads under the test's control (the read path is under test here, not ingestion), and the
same data as a pandas frame for the reference computations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.utils import timezone

from models_registry.models import MLModel
from reviews.models import Decision, ProtectedAttribute

HUMAN = ("reviewer", "adjudicator", "appeal")


@dataclass
class Row:
    groups: dict[str, str]
    model_outcome: str = "approve"
    final_outcome: str | None = "approve"  # None: pending review
    finalized_by: str = "model"  # model, reviewer, adjudicator, appeal; "" when pending
    routed: bool = False
    reasons: tuple[str, ...] = ()
    received_at: datetime | None = None
    version: object = None


def store(model: MLModel, rows: list[Row], *, start: int = 0) -> list[Decision]:
    now = timezone.now()
    decisions = []
    for i, row in enumerate(rows, start=start):
        pending = row.final_outcome is None
        decisions.append(
            Decision(
                model=model,
                model_version=row.version,
                external_id=f"r-{i}",
                subject_ref=f"s-{i}",
                features={},
                scored_by="client",
                model_outcome=row.model_outcome,
                confidence=0.9,
                routed=row.routed or bool(row.reasons),
                reason_tags=("," + ",".join(row.reasons) + ",") if row.reasons else "",
                routing={"reasons": list(row.reasons)},
                status="pending_review" if pending else "final",
                final_outcome="" if pending else row.final_outcome,
                finalized_by="" if pending else row.finalized_by,
                finalized_at=None if pending else now,
                request_sha256="0" * 64,
                received_at=row.received_at or now,
            )
        )
    Decision.objects.bulk_create(decisions)
    ProtectedAttribute.objects.bulk_create(
        [
            ProtectedAttribute(decision=d, name=name, value=value)
            for d, row in zip(decisions, rows, strict=True)
            for name, value in row.groups.items()
        ]
    )
    return decisions


def random_rows(
    n: int, seed: int = 11, *, override_by_race: dict | None = None, start: datetime | None = None
) -> list[Row]:
    """A realistic mix: three races, two sexes, some pending, overrides that differ by race."""
    rng = np.random.default_rng(seed)
    override_by_race = override_by_race or {"black": 0.35, "hispanic": 0.25, "white": 0.12}
    races = rng.choice(list(override_by_race), n, p=[0.25, 0.15, 0.6])
    sexes = rng.choice(["female", "male"], n, p=[0.4, 0.6])
    start = start or timezone.now() - timedelta(days=27)
    rows = []
    for i in range(n):
        model_outcome = "approve" if rng.random() < 0.7 else "deny"
        routed = rng.random() < 0.45
        reasons = ()
        if routed:
            reasons = ("random_audit",) if rng.random() < 0.3 else ("low_confidence",)
        if not routed:
            final, by = model_outcome, "model"
        elif rng.random() < 0.1:
            final, by = None, ""
        else:
            flipped = "deny" if model_outcome == "approve" else "approve"
            final = flipped if rng.random() < override_by_race[races[i]] else model_outcome
            by = rng.choice(HUMAN, p=[0.8, 0.15, 0.05])
        rows.append(
            Row(
                groups={"race": str(races[i]), "sex": str(sexes[i])},
                model_outcome=model_outcome,
                final_outcome=final,
                finalized_by=str(by),
                routed=routed,
                reasons=reasons,
                received_at=start + timedelta(hours=int(rng.integers(0, 27 * 24))),
            )
        )
    return rows


def frame(rows: list[Row]) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "race": [r.groups.get("race") for r in rows],
            "sex": [r.groups.get("sex") for r in rows],
            "model_outcome": [r.model_outcome for r in rows],
            "final_outcome": [r.final_outcome for r in rows],
            "finalized_by": [r.finalized_by for r in rows],
            "routed": [r.routed or bool(r.reasons) for r in rows],
            "random_audit": ["random_audit" in r.reasons for r in rows],
        }
    )
    out["reviewed"] = out["finalized_by"].isin(HUMAN)
    out["overridden"] = out["reviewed"] & (out["final_outcome"] != out["model_outcome"])
    out["final"] = out["final_outcome"].notna()
    return out
