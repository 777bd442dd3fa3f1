"""Shadow scoring: while a model has a candidate, its new decisions are scored by it too,
after commit, in a Celery task; the ingest itself only hands over ids."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit import record
from core import queueing
from learning import tasks
from learning.models import ShadowScore
from models_registry import scoring
from models_registry.artifacts import estimator_for
from models_registry.models import ModelVersion
from reviews.models import Decision

logger = logging.getLogger(__name__)


def on_ingested(decisions: list[Decision]) -> None:
    """reviews.hooks listener, in the ingest's transaction: one query for the whole ingest
    (which of its models have a candidate), then ids handed to a task after commit."""
    model_ids = {decision.model_id for decision in decisions}
    candidates = dict(
        ModelVersion.objects.filter(model_id__in=model_ids, status=ModelVersion.Status.CANDIDATE)
        .values("model_id")
        .annotate(newest=Max("pk"))
        .values_list("model_id", "newest")
    )
    for model_id, version_id in candidates.items():
        ids = [decision.pk for decision in decisions if decision.model_id == model_id]
        queueing.send_after_commit(tasks.shadow_score, version_id, ids)


def shadow_scores_write(*, version_id: int, decision_ids: list[int]) -> int:
    """Score the decisions with the candidate; returns how many new scores were stored. Safe
    to run twice (one score per decision and version)."""
    version = ModelVersion.objects.select_related("model").get(pk=version_id)
    rows = list(
        Decision.objects.filter(pk__in=decision_ids, model_id=version.model_id)
        .exclude(pk__in=ShadowScore.objects.filter(version=version).values("decision_id"))
        .values_list("pk", "features", "model_outcome")
    )
    if not rows:
        return 0
    scores = scoring.score(estimator_for(version), version.model.features, [r[1] for r in rows])
    now = timezone.now()
    with transaction.atomic():
        created = ShadowScore.objects.bulk_create(
            [
                ShadowScore(
                    decision_id=pk,
                    version=version,
                    outcome=score.outcome,
                    confidence=score.confidence,
                    agrees_with_model=score.outcome == model_outcome,
                    scored_at=now,
                )
                for (pk, _, model_outcome), score in zip(rows, scores, strict=True)
            ],
            ignore_conflicts=True,
        )
        record(
            action="shadow.scored",
            obj=version,
            payload={
                "model": version.model.name,
                "number": version.number,
                "decisions": len(created),
            },
        )
    return len(rows)
