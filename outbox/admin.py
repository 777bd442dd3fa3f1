from django.contrib import admin

from core.admin import ReadOnlyAdmin
from outbox.models import Message


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "scope", "status", "attempts", "next_attempt_at", "created_at")
    list_filter = ("kind", "status")
