"""Retraining: the champion's estimator cloned (sklearn.base.clone of the skops-loaded
pipeline, never a pickle) and fitted on its base training data plus the current human
labels, registered as a candidate with its provenance, and evaluated against the champion."""

from __future__ import annotations

import logging
import platform
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from audit import record
from audit.log import Actor
from core import queueing
from core.errors import ApplicationError
from core.lazy import lazy_module
from learning import data, tasks
from learning.metrics import as_version_metrics
from learning.models import Evaluation, LabelRecord, RetrainingRun, TrainingExample
from learning.services.evaluation import compare, evaluation_save
from models_registry import services as registry
from models_registry.artifacts import estimator_for
from models_registry.models import MLModel, ModelVersion
from models_registry.selectors import current_policy

np = lazy_module("numpy")
pd = lazy_module("pandas")
scipy = lazy_module("scipy")
sklearn = lazy_module("sklearn")
skops = lazy_module("skops")
sio = lazy_module("skops.io")
sklearn_base = lazy_module("sklearn.base")

logger = logging.getLogger(__name__)
QUEUED, RUNNING = RetrainingRun.Status.QUEUED, RetrainingRun.Status.RUNNING
DONE, FAILED = RetrainingRun.Status.DONE, RetrainingRun.Status.FAILED


def champion_of(model: MLModel) -> ModelVersion | None:
    return model.versions.filter(status=ModelVersion.Status.CHAMPION).first()


def retraining_request(
    *, model: MLModel, actor: Actor, trigger: str = RetrainingRun.Trigger.MANUAL
) -> RetrainingRun:
    """Queue a retraining run of the model's champion; a 409 while one is queued or running."""
    with transaction.atomic():
        MLModel.objects.select_for_update().get(pk=model.pk)
        return _request(model, actor, trigger)


def _request(model: MLModel, actor: Actor, trigger: str) -> RetrainingRun:
    champion = champion_of(model)
    if champion is None:
        raise ApplicationError(f"{model.name} has no champion to retrain: promote one first.")
    active = RetrainingRun.objects.filter(model=model, status__in=[QUEUED, RUNNING]).first()
    if active is not None:
        raise ApplicationError(
            f"Retraining run {active.pk} of {model.name} is already {active.status}.",
            code="retraining_active",
        )
    cutoff = LabelRecord.objects.filter(model=model).aggregate(top=Max("pk"))["top"] or 0
    run = RetrainingRun.objects.create(
        model=model,
        trigger=trigger,
        requested_by=actor if getattr(actor, "pk", None) else None,
        requested_at=timezone.now(),
        label_cutoff=cutoff,
        parent=champion,
    )
    record(
        action="retraining.requested",
        actor=actor,
        obj=run,
        payload={
            "model": model.name,
            "trigger": trigger,
            "parent": champion.number,
            "label_cutoff": cutoff,
        },
    )
    queueing.send_after_commit(tasks.retrain, run.pk)
    return run


def retraining_if_due(*, model_id: int) -> RetrainingRun | None:
    """Queue an automatic run when the policy's retrain_min_new_labels labels have arrived in
    the training store since the last run's cutoff (0 turns this off)."""
    model = MLModel.objects.get(pk=model_id)
    wanted = current_policy(model).retrain_min_new_labels
    if not wanted:
        return None
    last = RetrainingRun.objects.filter(model=model).order_by("-requested_at", "-pk").first()
    if last is not None and last.status in (QUEUED, RUNNING):
        return None
    since = last.label_cutoff if last else 0
    arrived = TrainingExample.objects.filter(model=model, record_id__gt=since).count()
    if arrived < wanted:
        return None
    try:
        with transaction.atomic():
            MLModel.objects.select_for_update().get(pk=model.pk)
            return _request(model, "system:retraining", RetrainingRun.Trigger.AUTOMATIC)
    except (ApplicationError, IntegrityError):
        return None  # another worker queued it first, or there is no champion


def retraining_execute(*, run_id: int) -> str:
    """Run a queued retraining: "done", "failed" or "skipped" (not queued: another worker has
    it, or it ran). Failures are recorded on the run with their reason."""
    now = timezone.now()
    if not RetrainingRun.objects.filter(pk=run_id, status=QUEUED).update(
        status=RUNNING, started_at=now
    ):
        return "skipped"
    run = RetrainingRun.objects.select_related("model", "parent").get(pk=run_id)
    try:
        candidate, evaluation = _train_and_register(run)
    except Exception as exc:
        logger.exception("retraining run %s failed", run_id)
        _finish_failed(run, f"{type(exc).__name__}: {exc}"[:2000])
        return "failed"
    with transaction.atomic():
        RetrainingRun.objects.filter(pk=run.pk).update(
            status=DONE, finished_at=timezone.now(), candidate=candidate, evaluation=evaluation
        )
        record(
            action="retraining.done",
            obj=run,
            payload={
                "model": run.model.name,
                "candidate": candidate.number,
                "evaluation": evaluation.pk,
                "gate_passed": evaluation.passed,
                "failed_checks": [c["code"] for c in evaluation.report["checks"]],
            },
        )
    return "done"


def _finish_failed(run: RetrainingRun, error: str) -> None:
    with transaction.atomic():
        RetrainingRun.objects.filter(pk=run.pk).update(
            status=FAILED, finished_at=timezone.now(), error=error
        )
        record(
            action="retraining.failed",
            obj=run,
            payload={"model": run.model.name, "error": error[:500]},
        )


def libraries() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "skops": skops.__version__,
    }


def _train_and_register(run: RetrainingRun) -> tuple[ModelVersion, Evaluation]:
    model, parent = run.model, run.parent
    base_set = data.base_dataset(parent, "train")
    base = data.file_rows(model, base_set)
    labels = list(data.current_labels(model, holdout=False, up_to=run.label_cutoff))
    if not labels:
        raise ApplicationError("there are no human labels to learn from yet (holdout aside)")
    train = data.concat(model, base, data.label_rows(model, labels))
    if len(set(train.y)) < 2:
        raise ApplicationError("the training data holds one class only")
    estimator = sklearn_base.clone(estimator_for(parent))
    started = time.perf_counter()
    _fit(estimator, train)
    seconds = round(time.perf_counter() - started, 3)
    measured = compare(model, estimator, parent, base=parent)
    provenance = _provenance(run, base_set, labels, seconds)
    RetrainingRun.objects.filter(pk=run.pk).update(
        labels_by_source=provenance["labels_by_source"], base_rows=base.n, training_seconds=seconds
    )
    candidate = registry.version_upload(
        model=model,
        artifact=sio.dumps(estimator),
        actor="system:retraining",
        metrics=as_version_metrics(measured.candidate_metrics) if measured.holdout["rows"] else {},
        baseline=parent.baseline,
        label_count=len(labels),
        data_window=(min(lb.at for lb in labels), max(lb.at for lb in labels)),
        notes=f"Retrained from version {parent.number} on {base.n} base rows and "
        f"{len(labels)} human labels (run {run.pk}).",
        parent=parent,
        provenance=provenance,
    )
    with transaction.atomic():
        evaluation = evaluation_save(
            model=model,
            candidate=candidate,
            champion=parent,
            measured=measured,
            purpose=Evaluation.Purpose.RETRAINING,
        )
        LabelRecord.trained_into.through.objects.bulk_create(
            [
                LabelRecord.trained_into.through(labelrecord_id=lb.pk, modelversion_id=candidate.pk)
                for lb in labels
            ]
        )
        record(
            action="evaluation.recorded",
            obj=evaluation,
            payload={
                "candidate": candidate.number,
                "champion": parent.number,
                "holdout": measured.holdout,
                "passed": evaluation.passed,
            },
        )
    return candidate, evaluation


def _fit(estimator: Any, train: data.Rows) -> None:
    if np.all(train.weights == 1.0):
        estimator.fit(train.X, train.y)
        return
    # Weights go to the final step of a pipeline (scikit-learn's step__param convention).
    steps = getattr(estimator, "steps", None)
    key = f"{steps[-1][0]}__sample_weight" if steps else "sample_weight"
    estimator.fit(train.X, train.y, **{key: train.weights})


def _provenance(run: RetrainingRun, base_set, labels: list[LabelRecord], seconds: float) -> dict:
    by_source: dict[str, int] = {}
    for label in labels:
        by_source[label.source] = by_source.get(label.source, 0) + 1
    return {
        "run": run.pk,
        "parent": run.parent.number,
        "trigger": run.trigger,
        "labels_by_source": by_source,
        "label_count": len(labels),
        "label_ids_sha256": data.digest([label.pk for label in labels]),
        "label_cutoff": run.label_cutoff,
        "base_data": {
            "version": base_set.version.number,
            "sha256": base_set.sha256,
            "rows": base_set.rows,
        }
        if base_set
        else None,
        "data_window": [
            min(lb.at for lb in labels).isoformat(),
            max(lb.at for lb in labels).isoformat(),
        ],
        "libraries": libraries(),
        "training_seconds": seconds,
    }


def retraining_sweep() -> dict[str, int]:
    """Beat, every minute: hand queued runs to a worker again (a lost hand-off), fail runs
    whose worker died, and queue automatic runs that are due."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.LEARNING_RETRAIN_TIMEOUT_SECONDS)
    resent = 0
    for run_id in RetrainingRun.objects.filter(
        status=QUEUED, requested_at__lt=now - timedelta(seconds=60)
    ).values_list("pk", flat=True):
        resent += queueing.send(tasks.retrain, run_id)
    lost = 0
    for run in RetrainingRun.objects.filter(status=RUNNING, started_at__lt=stale).select_related(
        "model"
    ):
        _finish_failed(
            run,
            "the worker running it stopped (no result within "
            f"{settings.LEARNING_RETRAIN_TIMEOUT_SECONDS} s)",
        )
        lost += 1
    due = 0
    for model_id in _models_with_auto_retraining():
        due += retraining_if_due(model_id=model_id) is not None
    return {"resent": resent, "failed": lost, "queued": due}


def _models_with_auto_retraining() -> list[int]:
    latest: dict[int, int] = {}
    for model_id, wanted in (
        MLModel.objects.filter(policies__isnull=False)
        .order_by("pk", "policies__version")
        .values_list("pk", "policies__retrain_min_new_labels")
    ):
        latest[model_id] = wanted
    return [model_id for model_id, wanted in latest.items() if wanted]
