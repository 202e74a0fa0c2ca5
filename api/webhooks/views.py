"""Webhooks of the caller's organization, `/v1/webhooks`: owners and admins only."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.principal import Principal, principal_for
from api.webhooks import serializers as s
from config.api import validated
from config.errors import NotFound, PermissionDenied
from events.models import WebhookEndpoint
from events.services import webhook_endpoint_create, webhook_endpoint_delete


def _admin(request: Request) -> Principal:
    principal = principal_for(request)
    if not principal.is_admin:
        raise PermissionDenied("Only organization owners and admins may manage webhooks.")
    return principal


def _endpoint(request: Request, webhook_id: str) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(pk=webhook_id, organization=_admin(request).organization).first()
    if endpoint is None:
        raise NotFound("No such webhook.")
    return endpoint


class WebhookCollectionView(APIView):
    @extend_schema(operation_id="webhooks_list", tags=["webhooks"], summary="List the organization's webhooks",
                   responses={200: s.WebhookList})
    def get(self, request: Request) -> Response:
        endpoints = WebhookEndpoint.objects.filter(organization=_admin(request).organization)
        return Response({"object": "list", "data": [s.webhook_data(endpoint) for endpoint in endpoints]})

    @extend_schema(operation_id="webhooks_create", tags=["webhooks"], summary="Register a webhook",
                   description="The answer carries the signing secret; it is not shown again.",
                   request=s.WebhookCreate, responses={201: s.WebhookCreated})
    def post(self, request: Request) -> Response:
        principal = _admin(request)
        data = validated(s.WebhookCreate, request.data)
        endpoint = webhook_endpoint_create(organization=principal.organization, url=data["url"],
                                           event_types=data["events"], description=data["description"],
                                           created_by=principal.user)
        return Response(s.webhook_data(endpoint, with_secret=True), status=201)


class WebhookDetailView(APIView):
    @extend_schema(operation_id="webhooks_retrieve", tags=["webhooks"], summary="A webhook",
                   responses={200: s.Webhook})
    def get(self, request: Request, webhook_id: str) -> Response:
        return Response(s.webhook_data(_endpoint(request, webhook_id)))

    @extend_schema(operation_id="webhooks_destroy", tags=["webhooks"], summary="Delete a webhook",
                   responses={204: None})
    def delete(self, request: Request, webhook_id: str) -> Response:
        webhook_endpoint_delete(endpoint=_endpoint(request, webhook_id))
        return Response(status=204)
