"""Domain events of the media layer, for the layers above it (webhooks: the `events` app).

Each signal is sent once its change is committed (`transaction.on_commit`), so a receiver never
hears of a change that was rolled back, and it carries ids, not rows: a receiver reads the row
as committed. media_app never imports its receivers.

    media_created   media_id, organization_id         a file became active (upload, ingest, completion)
    media_deleted   media_id, organization_id, reason  an active file was deleted ("deleted") or expired ("expired")
    media_purged    media_id, organization_id         a deleted file's object is gone for good
    upload_expired  media_id, organization_id         a pending upload passed its window unfinished
    quota_exceeded  organization_id, requested        an upload or restore was refused for the quota
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import transaction
from django.dispatch import Signal

from config.errors import QuotaExceeded

media_created = Signal()
media_deleted = Signal()
media_purged = Signal()
upload_expired = Signal()
quota_exceeded = Signal()

Service = TypeVar("Service", bound=Callable[..., Any])


def emit(signal: Signal, **fields: Any) -> None:
    """Send `signal` with `fields` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: signal.send(sender=None, **fields))


def emits_quota_exceeded(service: Service) -> Service:
    """A service whose QuotaExceeded is also told as `quota_exceeded`: the organization comes from
    its `organization=` argument or its `media=`'s."""
    @functools.wraps(service)
    def wrapper(**kwargs: Any) -> Any:
        try:
            return service(**kwargs)
        except QuotaExceeded as exc:
            if not getattr(exc, "told", False):  # a service calling another tells once
                exc.told = True
                organization = kwargs.get("organization") or kwargs["media"].organization
                emit(quota_exceeded, organization_id=organization.pk)
            raise

    return wrapper  # type: ignore[return-value]
