"""Shapes of `/v1/webhooks`: input checked here, URLs and secrets by `events.services`."""
from __future__ import annotations

from rest_framework import serializers

from events.models import EVENT_TYPES, WebhookEndpoint


class WebhookCreate(serializers.Serializer):
    url = serializers.CharField(max_length=2000, help_text="http(s) URL that receives the events (POST).")
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_TYPES), required=False, default=list,
                                   help_text="Event types to send; empty or absent: all of them.")
    description = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class Webhook(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.ChoiceField(choices=["webhook"])
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField(), help_text="Empty: every event type.")
    description = serializers.CharField()
    created_at = serializers.DateTimeField()


class WebhookCreated(Webhook):
    secret = serializers.CharField(
        help_text="`whsec_...`: verifies the `webhook-signature` header (Standard Webhooks). Shown only now.")


class WebhookList(serializers.Serializer):
    object = serializers.ChoiceField(choices=["list"])
    data = Webhook(many=True)


def webhook_data(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict:
    data = {"id": endpoint.pk, "object": "webhook", "url": endpoint.url, "events": endpoint.event_types,
            "description": endpoint.description, "created_at": endpoint.created_at}
    if with_secret:
        data["secret"] = endpoint.secret
    return data
