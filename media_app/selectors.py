"""Reads of MediaFile rows, always scoped to what the caller may see."""
from __future__ import annotations

from django.db.models import QuerySet

from accounts.principal import Principal
from config.errors import NotFound
from media_app.models import MediaFile

LIVE = (MediaFile.Status.ACTIVE,)


def media_visible_to(principal: Principal, *, statuses=LIVE) -> QuerySet[MediaFile]:  # noqa: ANN001
    """The caller's files; admins, owners and service keys see their whole organization."""
    rows = MediaFile.objects.filter(organization=principal.organization, status__in=statuses)
    if not principal.sees_whole_organization:
        rows = rows.filter(owner=principal.user)
    return rows


def media_get(principal: Principal, media_id: str, *, statuses=LIVE) -> MediaFile:  # noqa: ANN001
    """One file by id; another owner's or organization's is as absent as a missing one (404)."""
    media = (media_visible_to(principal, statuses=statuses)
             .select_related("organization", "organization__plan", "owner", "duplicate_of")
             .filter(pk=media_id).first())
    if media is None:
        raise NotFound("No such media file.", code="media_not_found")
    return media


def media_get_by_key(principal: Principal, key: str) -> MediaFile:
    media = (media_visible_to(principal).select_related("organization", "owner", "duplicate_of")
             .filter(storage_key=key).first())
    if media is None:
        raise NotFound("No such object.", code="object_not_found")
    return media
