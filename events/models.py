"""Webhook endpoints of an organization, the messages sent to them, and every delivery attempt."""
from __future__ import annotations

from django.conf import settings
from django.db import models

EVENT_TYPES = ("media.created", "media.deleted", "media.purged", "upload.expired", "quota.exceeded")


class WebhookEndpoint(models.Model):
    """Where an organization wants its events. `secret` signs them (Standard Webhooks, `whsec_...`):
    it must be readable to sign, so it is kept as is and shown to the API caller once."""

    id = models.CharField(primary_key=True, max_length=40, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="webhooks")
    url = models.CharField(max_length=2000)  # checked by events.services.webhook_url_check
    description = models.CharField(max_length=200, blank=True)
    # The event types sent here; empty: all of them.
    event_types = models.JSONField(default=list, blank=True)
    secret = models.CharField(max_length=100, editable=False)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.id} → {self.url}"

    def wants(self, event_type: str) -> bool:
        return self.is_active and (not self.event_types or event_type in self.event_types)


class WebhookMessage(models.Model):
    """One event for one endpoint: the body is fixed when the event happens, and every attempt
    (and a redelivery) sends the same `id` so the receiver can drop duplicates."""

    class Status(models.TextChoices):
        PENDING = "pending"  # not yet delivered; attempts go on
        DELIVERED = "delivered"
        FAILED = "failed"  # every attempt failed; the admin may redeliver

    id = models.CharField(primary_key=True, max_length=40, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="messages")
    event_type = models.CharField(max_length=40)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.event_type} {self.id}"


class WebhookDelivery(models.Model):
    """One attempt to deliver a message: what the receiver answered, or why it could not."""

    message = models.ForeignKey(WebhookMessage, on_delete=models.CASCADE, related_name="deliveries")
    attempt = models.PositiveIntegerField()
    attempted_at = models.DateTimeField(auto_now_add=True)
    succeeded = models.BooleanField(default=False)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=1000, blank=True)
    response_body = models.CharField(max_length=1000, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-attempted_at", "-id"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"attempt {self.attempt} of {self.message_id}"
