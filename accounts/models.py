from __future__ import annotations

from django.conf import settings
from django.db import models


class Organization(models.Model):
    class Kind(models.TextChoices):
        INDIVIDUAL = "individual"
        ORGANIZATION = "organization"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.ORGANIZATION)
    plan = models.ForeignKey("quotas.Plan", on_delete=models.PROTECT, related_name="organizations")
    retention_days = models.PositiveIntegerField(null=True, blank=True, help_text="Overrides the plan's retention.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def retention_days_effective(self) -> int:
        return self.retention_days or self.plan.effective_retention_days()


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        MEMBER = "member"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.ADMIN)


class ApiKey(models.Model):
    """An API key. Only a SHA-256 of the secret is kept; `prefix` is what operators see."""

    class Kind(models.TextChoices):
        USER = "user"
        SERVICE = "service"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.USER)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.kind})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AuthVersion(models.Model):
    """One row whose number moves whenever an API key may no longer do what it did (accounts/keycache.py).

    Processes caching authenticated keys read it to learn that their cache is stale; used when
    REDIS_URL is not set."""

    version = models.BigIntegerField(default=0)
