"""The demo's label loop: once people have labelled enough of the demo's decisions (the
simulated review work), a retraining run of the champion, so that the learning page
(/models/mortgage-approval/learning/) shows a candidate against the champion. Idempotent:
one run, ever."""

from __future__ import annotations

from django.contrib.auth.models import User

from learning.models import LabelRecord, RetrainingRun
from learning.services import retraining_request
from models_registry.models import MLModel

MIN_LABELS = 20


def load(model: MLModel) -> RetrainingRun | None:
    if RetrainingRun.objects.filter(model=model).exists():
        return None
    labels = LabelRecord.objects.filter(model=model, is_current=True, holdout=False)
    if labels.count() < MIN_LABELS or labels.values("label").distinct().count() < 2:
        return None  # too few labels (or one class only) to fit anything
    owner = User.objects.get(username="erin")
    # Celery runs it at commit in the embedded mode (make run); a worker does otherwise.
    return retraining_request(model=model, actor=owner)
