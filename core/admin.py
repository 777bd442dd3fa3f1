"""Admin pages are read-only for Oversight's records: changes go through services, which audit
them. (Users and groups keep Django's admin for account housekeeping.)"""

from __future__ import annotations

from django.contrib import admin

from core.models import ServiceToken


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ServiceToken)
class ServiceTokenAdmin(ReadOnlyAdmin):
    list_display = ("name", "prefix", "user", "created_at", "last_used_at", "revoked_at")
    exclude = ("digest",)
