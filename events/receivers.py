"""The media layer's domain signals (media_app/signals.py), turned into webhook events."""
from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from accounts.models import Organization
from events.services import webhook_event_publish
from media_app import signals
from media_app.models import MediaFile
from quotas.models import Quota
from quotas.services import quota_limit


def _media_data(media_id: str) -> dict[str, Any] | None:
    """What an event tells of a file: its id and facts, never a URL (a receiver asks the API for one)."""
    media = MediaFile.objects.select_related("organization", "owner").filter(pk=media_id).first()
    if media is None:
        return None
    return {
        "id": media.pk, "organization": media.organization.slug, "owner": media.owner.get_username(),
        "status": media.status, "mime": media.mime or None, "bytes": media.bytes, "sha256": media.sha256 or None,
        "category": media.category, "original_name": media.original_name or None,
        "created_at": media.created_at, "completed_at": media.completed_at, "deleted_at": media.deleted_at,
        "purged_at": media.purged_at,
    }


def _publish_media(event_type: str, media_id: str, organization_id: int, **extra: Any) -> None:
    def data() -> dict[str, Any] | None:  # read only when an endpoint wants the event
        found = _media_data(media_id)
        return None if found is None else _jsonable({**found, **extra})

    webhook_event_publish(organization_id=organization_id, event_type=event_type, data=data)


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value.isoformat() if hasattr(value, "isoformat") else value for key, value in data.items()}


@receiver(signals.media_created, dispatch_uid="events.media_created")
def media_created(media_id: str, organization_id: int, **kwargs: Any) -> None:
    _publish_media("media.created", media_id, organization_id)


@receiver(signals.media_deleted, dispatch_uid="events.media_deleted")
def media_deleted(media_id: str, organization_id: int, reason: str, **kwargs: Any) -> None:
    _publish_media("media.deleted", media_id, organization_id, reason=reason)


@receiver(signals.media_purged, dispatch_uid="events.media_purged")
def media_purged(media_id: str, organization_id: int, **kwargs: Any) -> None:
    _publish_media("media.purged", media_id, organization_id)


@receiver(signals.upload_expired, dispatch_uid="events.upload_expired")
def upload_expired(media_id: str, organization_id: int, **kwargs: Any) -> None:
    _publish_media("upload.expired", media_id, organization_id)


@receiver(signals.quota_exceeded, dispatch_uid="events.quota_exceeded")
def quota_exceeded(organization_id: int, **kwargs: Any) -> None:
    organization = Organization.objects.select_related("plan").get(pk=organization_id)
    quota = Quota.objects.get(organization=organization)
    webhook_event_publish(organization_id=organization_id, event_type="quota.exceeded", data={
        "organization": organization.slug, "used_bytes": quota.used_bytes, "reserved_bytes": quota.reserved_bytes,
        "limit_bytes": quota_limit(organization=organization, quota=quota), "file_count": quota.file_count,
    })
