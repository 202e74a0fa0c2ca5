"""Webhooks for operators: endpoints, the messages sent to them with every attempt, and redelivery."""
from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from config.errors import ServiceError
from events.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from events.services import webhook_endpoint_create, webhook_message_redeliver, webhook_url_check


class WebhookEndpointForm(ModelForm):
    class Meta:
        model = WebhookEndpoint
        fields = ["organization", "url", "description", "event_types", "is_active"]

    def clean_url(self) -> str:
        """The SSRF guard of the API, as a form error."""
        try:
            return webhook_url_check(url=self.cleaned_data["url"])
        except ServiceError as exc:
            raise ValidationError(exc.message) from None


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["id", "organization", "url", "event_types", "is_active", "created_at"]
    list_filter = ["is_active", "organization"]
    search_fields = ["=id", "url", "organization__slug"]
    list_select_related = ["organization"]
    readonly_fields = ["id", "secret", "created_by", "created_at"]
    fields = ["id", "organization", "url", "description", "event_types", "is_active", "secret", "created_by",
              "created_at"]

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: ModelForm, change: bool) -> None:
        """New endpoints are made by the service (id, secret); the form checked the URL."""
        if change:
            obj.save()
            return
        created = webhook_endpoint_create(organization=obj.organization, url=obj.url,
                                          event_types=obj.event_types or [], description=obj.description,
                                          created_by=request.user)
        obj.pk, obj.secret, obj.created_at = created.pk, created.secret, created.created_at


class DeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    extra = 0
    can_delete = False
    fields = readonly_fields = ["attempt", "attempted_at", "succeeded", "status_code", "error", "duration_ms"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(WebhookMessage)
class WebhookMessageAdmin(admin.ModelAdmin):
    list_display = ["id", "event_type", "endpoint", "status", "attempts", "created_at", "delivered_at"]
    list_filter = ["status", "event_type"]
    search_fields = ["=id", "endpoint__url", "endpoint__organization__slug"]
    list_select_related = ["endpoint"]
    readonly_fields = ["id", "endpoint", "event_type", "payload", "status", "attempts", "created_at", "delivered_at"]
    inlines = [DeliveryInline]
    actions = ["redeliver"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # messages come from events

    @admin.action(description="Redeliver the selected messages")
    def redeliver(self, request: HttpRequest, queryset: QuerySet) -> None:
        for message in queryset:
            webhook_message_redeliver(message=message)
        self.message_user(request, f"{queryset.count()} message(s) queued for delivery.")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """Every attempt; filter on `succeeded` = No for the failures."""

    list_display = ["message", "attempt", "attempted_at", "succeeded", "status_code", "error", "duration_ms"]
    list_filter = ["succeeded", "message__event_type"]
    search_fields = ["=message__id", "message__endpoint__url"]
    list_select_related = ["message"]
    readonly_fields = ["message", "attempt", "attempted_at", "succeeded", "status_code", "error", "response_body",
                       "duration_ms"]
    actions = ["redeliver"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Redeliver the messages of the selected attempts")
    def redeliver(self, request: HttpRequest, queryset: QuerySet) -> None:
        messages_ = WebhookMessage.objects.filter(pk__in=queryset.values("message_id"))
        for message in messages_:
            webhook_message_redeliver(message=message)
        self.message_user(request, f"{len(messages_)} message(s) queued for delivery.")
