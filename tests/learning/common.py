"""Helpers of the label-loop tests: decisions, answers, settlements and small pipelines."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import skops.io as sio
from django.db import transaction
from django.utils import timezone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from audit.models import AuditEvent
from models_registry import services as registry
from reviews import hooks
from reviews.models import Decision
from reviews.services import decisions_ingest, review_submit, task_claim_next
from tests.fixtures import item, tiny_training_data


def ingest(model, service, erin, n: int = 1, start: int = 1, bodies=None, **policy):
    """n decisions of the tiny model under the given policy changes."""
    if policy:
        registry.policy_update(model=model, changes=policy, actor=erin, note="test")
    bodies = bodies or [item(i) for i in range(start, start + n)]
    return [r.decision for r in decisions_ingest(items=bodies, actor=service.user)]


def answer(reviewer, *, outcome: str | None = None, **claim):
    """Claim the next task and answer it: agree, or override with `outcome`."""
    task = task_claim_next(reviewer=reviewer, **claim)
    assert task is not None, "nothing to claim"
    if outcome is None:
        return review_submit(task_id=task.pk, reviewer=reviewer, verdict="agree")
    decision = Decision.objects.get(pk=task.decision_id)
    if outcome == decision.model_outcome:
        return review_submit(task_id=task.pk, reviewer=reviewer, verdict="agree")
    return review_submit(
        task_id=task.pk,
        reviewer=reviewer,
        verdict="override",
        outcome=outcome,
        reason_code="model_error",
        rationale="The documents say otherwise.",
    )


def settle(decision: Decision, outcome: str, by, *, source: str = "review", **extra):
    """A settlement as reviews or appeals report it (the listener's own transaction)."""
    with transaction.atomic():
        hooks.settled(
            hooks.Settlement(
                decision=decision, outcome=outcome, source=source, by=by, at=timezone.now(),
                **extra,
            )
        )  # fmt: skip


def events(action: str) -> list[dict]:
    return [json.loads(e.payload) for e in AuditEvent.objects.filter(action=action)]


def parquet(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return sink.getvalue()


def tiny_data_parquet(n: int = 600, seed: int = 3, groups: bool = False) -> bytes:
    X, y = tiny_training_data(n, seed)
    frame = X.assign(label=y)
    if groups:
        frame = frame.assign(race=np.where(np.arange(n) % 2, "black", "white"))
    return parquet(frame)


def pipeline_on(X: pd.DataFrame, y) -> Pipeline:
    """The tiny model's pipeline shape, fitted on the given rows."""
    X = X.astype({"bankrupt": float})
    pipeline = Pipeline(
        [
            ("prepare", ColumnTransformer([
                ("scale", StandardScaler(), ["income", "debt", "years", "bankrupt"]),
                ("encode", OneHotEncoder(handle_unknown="ignore"), ["history"]),
            ])),
            ("classify", LogisticRegression(C=100, max_iter=5000)),
        ]
    )  # fmt: skip
    return pipeline.fit(X, y)


def rule_data(n: int = 800, seed: int = 1, *, poor_denied: bool) -> tuple[pd.DataFrame, list]:
    """Approve when income > 100; with poor_denied, never when the history is poor."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "income": rng.uniform(0, 200, n),
            "debt": np.full(n, 10.0),
            "years": np.full(n, 5.0),
            "history": rng.choice(["good", "poor"], n),
            "bankrupt": np.zeros(n, dtype=bool),
        }
    )
    approve = X["income"] > 100
    if poor_denied:
        approve &= X["history"] != "poor"
    return X, list(np.where(approve, "approve", "deny"))


def rule_artifact(*, poor_denied: bool, seed: int = 1) -> bytes:
    return sio.dumps(pipeline_on(*rule_data(seed=seed, poor_denied=poor_denied)))
