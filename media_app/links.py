"""The URLs a client is handed for a file: its stable content address and fresh signed download URLs.

Surfaces render these; they never sign anything themselves. One store and one clock per
response, so a page of 100 files is signed in one pass with one expiry.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from media_app.models import MediaFile
from storage_app.backends import get_store


class MediaLinks:
    def __init__(self, *, absolute: Callable[[str], str] = str) -> None:
        """`absolute` turns an API path into the URL the client called us on (`request.build_absolute_uri`)."""
        self.absolute = absolute
        self.store = get_store()
        self.now = timezone.now()

    def content_url(self, media: MediaFile) -> str:
        """The stable address: the CDN for public files where it can serve them, else the API."""
        if media.visibility == MediaFile.Visibility.PUBLIC and media.encryption != MediaFile.Encryption.APP:
            public = self.store.public_url(media.object_key)  # None where the backend has no public endpoint
            if public is not None:
                return public
        return self.absolute(f"/v1/media/{media.pk}/content")

    def download(self, media: MediaFile, ttl: int | None = None, *,
                 attachment_name: bool = True) -> tuple[str | None, datetime | None]:
        """A signed URL of the bytes valid for `ttl` seconds, and when it expires; none for a file not active.
        `attachment_name=False` leaves the original name out (inline previews)."""
        if media.status != MediaFile.Status.ACTIVE:
            return None, None
        ttl = ttl or int(settings.MEDIA_S3_PRESIGN_TTL)
        url = self.store.signed_download_url(media.object_key, ttl,
                                             encrypted=media.encryption == MediaFile.Encryption.APP,
                                             filename=media.original_name if attachment_name else "",
                                             content_type=media.mime)
        return url, self.now + timedelta(seconds=ttl)

    def redirect_target(self, media: MediaFile) -> str | None:
        """Where `/content` sends a client when the store serves the bytes itself: the CDN or a signed URL."""
        if media.visibility == MediaFile.Visibility.PUBLIC and settings.MEDIA_S3_PUBLIC_ENDPOINT:
            return self.content_url(media)
        return self.download(media)[0]
