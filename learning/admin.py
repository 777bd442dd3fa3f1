from django.contrib import admin

from core.admin import ReadOnlyAdmin
from learning.models import (
    Evaluation,
    LabelRecord,
    RetrainingRun,
    ShadowScore,
    TrainingExample,
    Webhook,
)


@admin.register(LabelRecord)
class LabelRecordAdmin(ReadOnlyAdmin):
    list_display = ("id", "model", "decision", "label", "source", "is_current", "holdout", "at")
    list_filter = ("source", "is_current", "holdout")


@admin.register(TrainingExample)
class TrainingExampleAdmin(ReadOnlyAdmin):
    list_display = ("id", "model", "record", "label", "source", "current", "stored_at")


@admin.register(Webhook)
class WebhookAdmin(ReadOnlyAdmin):
    list_display = ("model", "url", "active", "set_by", "set_at")
    exclude = ("secret_encrypted",)


@admin.register(RetrainingRun)
class RetrainingRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "model", "status", "trigger", "requested_at", "candidate")


@admin.register(Evaluation)
class EvaluationAdmin(ReadOnlyAdmin):
    list_display = ("id", "model", "candidate", "champion", "purpose", "passed", "created_at")


@admin.register(ShadowScore)
class ShadowScoreAdmin(ReadOnlyAdmin):
    list_display = ("decision", "version", "outcome", "agrees_with_model", "scored_at")
