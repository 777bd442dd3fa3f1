from django.contrib import admin

from appeals.models import Appeal, DecisionAccess
from core.admin import ReadOnlyAdmin


@admin.register(Appeal)
class AppealAdmin(ReadOnlyAdmin):
    list_display = ("id", "decision", "status", "filed_via", "filed_at", "due_at", "decided_at")
    list_filter = ("status", "filed_via")


@admin.register(DecisionAccess)
class DecisionAccessAdmin(ReadOnlyAdmin):
    list_display = ("decision", "reference", "code_issued_at", "code_expires_at", "locked_until")
    exclude = ("code_hash",)
