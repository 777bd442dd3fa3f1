from django.contrib import admin

from core.admin import ReadOnlyAdmin
from reviews.models import Decision, ReviewTask


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ("id", "model", "external_id", "model_outcome", "confidence", "routed", "status")
    list_filter = ("status", "routed", "model")


@admin.register(ReviewTask)
class ReviewTaskAdmin(ReadOnlyAdmin):
    list_display = ("id", "decision", "kind", "state", "priority", "due_at", "assignee")
    list_filter = ("state", "kind")
