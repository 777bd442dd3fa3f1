from __future__ import annotations

from django.conf import settings
from django.db import models


class ServiceToken(models.Model):
    """An API token of a model service. Only its SHA-256 is stored; the token is shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="service_tokens"
    )
    name = models.CharField(max_length=100)
    # The first characters, so a person can tell tokens apart without the secret.
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
