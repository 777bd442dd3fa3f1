from django.contrib import admin

from audit.models import AuditEvent, ChainVerification
from core.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("seq", "time", "actor", "action", "object_type", "object_id")
    list_filter = ("action",)
    search_fields = ("object_id", "actor")


@admin.register(ChainVerification)
class ChainVerificationAdmin(ReadOnlyAdmin):
    list_display = ("requested_at", "requested_by", "status", "ok", "events_checked", "message")
