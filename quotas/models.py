from __future__ import annotations

from django.conf import settings
from django.db import models

GIB = 1024**3
MIB = 1024**2


class Plan(models.Model):
    """What an organization may store. Seeded: `individual`, `organization`."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    storage_limit_bytes = models.BigIntegerField()
    max_file_bytes = models.BigIntegerField()
    # None: the deployment's MEDIA_RETENTION_DAYS.
    retention_days = models.PositiveIntegerField(null=True, blank=True)
    # How far PATCH may extend a file's retain_until; None with allow_keep_forever means no cap.
    max_retention_days = models.PositiveIntegerField(null=True, blank=True)
    allow_keep_forever = models.BooleanField(default=False)
    allowed_categories = models.JSONField(default=list, blank=True)
    # Requests per minute (config/ratelimit.py): per API key (or signed-in user), and for the whole
    # organization; 0: no limit. Past either: 429 with Retry-After.
    requests_per_minute = models.PositiveIntegerField(default=600)
    organization_requests_per_minute = models.PositiveIntegerField(default=3000)

    class Meta:
        ordering = ["storage_limit_bytes"]

    def __str__(self) -> str:
        return self.name

    def effective_retention_days(self) -> int:
        return self.retention_days or settings.MEDIA_RETENTION_DAYS


class Quota(models.Model):
    """One per organization. Changed only by `quotas.services` with conditional updates."""

    organization = models.OneToOneField("accounts.Organization", on_delete=models.CASCADE, related_name="quota")
    limit_override_bytes = models.BigIntegerField(null=True, blank=True)
    used_bytes = models.BigIntegerField(default=0)
    reserved_bytes = models.BigIntegerField(default=0)
    file_count = models.BigIntegerField(default=0)
    recalculated_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(used_bytes__gte=0), name="quota_used_non_negative"),
            models.CheckConstraint(condition=models.Q(reserved_bytes__gte=0), name="quota_reserved_non_negative"),
            models.CheckConstraint(condition=models.Q(file_count__gte=0), name="quota_file_count_non_negative"),
        ]

    def __str__(self) -> str:
        return f"Quota of {self.organization}"
