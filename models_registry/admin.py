from django.contrib import admin

from core.admin import ReadOnlyAdmin
from models_registry.models import MLModel, ModelVersion, RoutingPolicy, TrainingData


@admin.register(MLModel)
class MLModelAdmin(ReadOnlyAdmin):
    list_display = ("name", "task", "owner", "created_at")


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ("model", "number", "status", "sha256", "created_at")
    exclude = ("artifact",)


@admin.register(RoutingPolicy)
class RoutingPolicyAdmin(ReadOnlyAdmin):
    list_display = ("model", "version", "confidence_threshold", "random_audit_rate", "created_at")


@admin.register(TrainingData)
class TrainingDataAdmin(ReadOnlyAdmin):
    list_display = ("version", "split", "rows", "sha256", "created_at")
    exclude = ("data",)
