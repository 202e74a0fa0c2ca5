"""Webhook endpoints, the messages an event makes, and their delivery (one attempt at a time).

An event makes one message per endpoint of its organization that wants it, in the transaction
that records it; delivery is a Celery task started once that commits (`events.tasks`), which
calls `webhook_message_deliver` for each attempt and retries with exponential backoff. Target
URLs pass the SSRF guard of remote fetches when registered, and again (resolved and pinned) at
every delivery, through the shared HTTP client.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from ulid import ULID

from accounts.models import Organization
from config import metrics
from config.errors import InvalidRequest, RemoteFetchFailed, ServiceError
from config.http_client import AddressPolicy, UrlNotAllowed, check_url, post
from config.prebuilt import Prebuilt
from events import signing
from events.models import EVENT_TYPES, WebhookDelivery, WebhookEndpoint, WebhookMessage

MAX_ENDPOINTS = 20  # per organization
ERROR_LENGTH = 1000


def _new_id(prefix: str) -> str:
    return f"{prefix}{str(ULID()).lower()}"


def _allow_networks() -> list[str]:
    return settings.WEBHOOK_ALLOW_NETWORKS


# -- endpoints ----------------------------------------------------------------------------
def webhook_url_check(*, url: str) -> str:
    """The URL if events may be sent there: http(s), and a host whose every address is public
    (or in WEBHOOK_ALLOW_NETWORKS); else 400 `url_not_allowed` on `url`."""
    try:
        return check_url(url, allow_networks=_allow_networks(), timeout=settings.WEBHOOK_TIMEOUT).url
    except UrlNotAllowed as exc:
        raise InvalidRequest(exc.message, code="url_not_allowed", param="url") from None
    except RemoteFetchFailed:
        raise InvalidRequest("The URL's host could not be resolved.", code="url_not_resolvable", param="url") from None


def webhook_endpoint_create(*, organization: Organization, url: str, event_types: Sequence[str] = (),
                            description: str = "", created_by: object | None = None) -> WebhookEndpoint:
    """A new endpoint with a new signing secret (`whsec_...`)."""
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise InvalidRequest(f"Unknown event type {unknown[0]!r}; known: {', '.join(EVENT_TYPES)}.",
                             code="invalid_event_type", param="events")
    url = webhook_url_check(url=url)
    if WebhookEndpoint.objects.filter(organization=organization).count() >= MAX_ENDPOINTS:
        raise InvalidRequest(f"An organization may have at most {MAX_ENDPOINTS} webhooks.",
                             code="too_many_webhooks")
    return WebhookEndpoint.objects.create(
        id=_new_id("whe_"), organization=organization, url=url, event_types=sorted(set(event_types)),
        description=description, secret=signing.secret_new(), created_by=created_by)


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """The endpoint, its messages and their delivery records go; an attempt under way finds nothing."""
    endpoint.delete()


# -- events -------------------------------------------------------------------------------
# Read on every upload and delete, and built once: most organizations have no endpoint, and the ORM
# spent more building this select than the database answering it (docs/benchmarks.md, row 12).
_ACTIVE_ENDPOINTS = Prebuilt(WebhookEndpoint, lambda variant, organization_id: WebhookEndpoint.objects.filter(
    organization_id=organization_id, is_active=True).order_by("created_at", "id"))


def webhook_event_publish(*, organization_id: int, event_type: str,
                          data: dict | Callable[[], dict | None]) -> list[WebhookMessage]:
    """A message for every endpoint of the organization that wants `event_type`; each is
    delivered once the current transaction commits.

    `data` may be a function, called only when some endpoint wants the event (None: no event):
    most organizations have no webhook, and every upload would read its file back for nothing."""
    endpoints = [endpoint for endpoint in _ACTIVE_ENDPOINTS.all(organization_id) if endpoint.wants(event_type)]
    if not endpoints:
        return []
    if callable(data):
        data = data()
        if data is None:
            return []
    payload = {"type": event_type, "timestamp": timezone.now().isoformat(), "data": data}
    messages = [WebhookMessage.objects.create(id=_new_id("msg_"), endpoint=endpoint, event_type=event_type,
                                              payload=payload)
                for endpoint in endpoints]
    for message in messages:
        _enqueue(message.pk)
    return messages


def _enqueue(message_id: str) -> None:
    from events.tasks import deliver_webhook

    transaction.on_commit(lambda: deliver_webhook.delay(message_id))


# -- delivery -----------------------------------------------------------------------------
def webhook_message_deliver(*, message: WebhookMessage) -> WebhookDelivery:
    """One attempt: POST the signed body, record what happened; delivered on any 2xx."""
    endpoint = message.endpoint
    body = json.dumps(message.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = signing.headers(endpoint.secret, message_id=message.pk, timestamp=int(time.time()), body=body)
    started = time.perf_counter()
    status, answer, error = _send(endpoint.url, body, headers)
    succeeded = status is not None and 200 <= status < 300
    delivery = WebhookDelivery.objects.create(
        message=message, attempt=message.attempts + 1, succeeded=succeeded, status_code=status,
        error="" if succeeded else (error or f"HTTP {status}")[:ERROR_LENGTH], response_body=answer[:ERROR_LENGTH],
        duration_ms=int((time.perf_counter() - started) * 1000))
    message.attempts += 1
    if succeeded:
        message.status, message.delivered_at = WebhookMessage.Status.DELIVERED, timezone.now()
    message.save(update_fields=["attempts", "status", "delivered_at"])
    metrics.WEBHOOK_DELIVERIES.labels(event=message.event_type, outcome="delivered" if succeeded else "failed").inc()
    return delivery


def _send(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str, str]:
    """(status, the start of the answer, error): a refused or unreachable URL is an error, not a raise."""
    try:
        result = post(url, body=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT,
                      policy=AddressPolicy.allowing(_allow_networks()))
    except ServiceError as exc:
        return None, "", exc.message
    return result.status, result.body.decode("utf-8", "replace"), ""


def webhook_retry_delay(*, attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones: doubling from WEBHOOK_RETRY_BASE."""
    return min(settings.WEBHOOK_RETRY_BASE * 2 ** max(attempts - 1, 0), settings.WEBHOOK_RETRY_MAX)


def webhook_message_give_up(*, message: WebhookMessage) -> None:
    WebhookMessage.objects.filter(pk=message.pk, status=WebhookMessage.Status.PENDING).update(
        status=WebhookMessage.Status.FAILED)


def webhook_message_redeliver(*, message: WebhookMessage) -> None:
    """Send a message again (the admin's action), as a new series of attempts with the same id."""
    WebhookMessage.objects.filter(pk=message.pk).update(status=WebhookMessage.Status.PENDING, delivered_at=None)
    _enqueue(message.pk)
