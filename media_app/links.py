"""The URLs a client is handed for a file: its stable content address and fresh signed download URLs.

Surfaces render these; they never sign anything themselves. One store and one clock per
response, so a page of 100 files is signed in one pass with one expiry.

With a `transform`, `variant(media)` adds the URLs of an image variant: a variant already
rendered is signed under its own key where the store serves it (S3); one not rendered yet gets
an app-signed URL whose signature covers the transform, rendered when first fetched.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.utils import timezone

from media_app.derivatives import ready_variants, variant_encrypted
from media_app.models import MediaFile, MediaVariant
from media_app.transforms import Transform, transformable
from storage_app import signing
from storage_app.backends import get_store


class MediaLinks:
    def __init__(self, *, absolute: Callable[[str], str] = str, transform: Transform | None = None) -> None:
        """`absolute` turns an API path into the URL the client called us on (`request.build_absolute_uri`);
        `transform`, the image variant the client asked for, if any."""
        self.absolute = absolute
        self.transform = transform
        self.store = get_store()
        self.now = timezone.now()
        self._ready: dict[tuple[int, str], MediaVariant] | None = None

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

    # -- variants ------------------------------------------------------------------------------
    def prefetch(self, medias: list[MediaFile]) -> None:
        """Look up the page's rendered variants in one query (a list, a resolve)."""
        if self.transform is not None:
            self._ready = ready_variants(medias, self.transform)

    def variant(self, media: MediaFile, ttl: int | None = None) -> dict | None:
        """The URLs of `media`'s variant for the transform; None for a file that is not a raster image."""
        if self.transform is None or not transformable(media.mime) or media.status != MediaFile.Status.ACTIVE:
            return None
        url, expires_at = self.variant_download(media, ttl)
        return {"url": self.variant_content_url(media), "presigned_url": url, "expires_at": expires_at,
                "mime": self.transform.mime, "transform": self.transform.query()}

    def variant_content_url(self, media: MediaFile) -> str:
        return self.absolute(f"/v1/media/{media.pk}/content?{urlencode(self.transform.query())}")

    def variant_download(self, media: MediaFile, ttl: int | None = None,
                         variant: MediaVariant | None = None) -> tuple[str, datetime]:
        """A signed URL of the variant: its own key where the store serves it (rendered already),
        else an app-signed URL of the original's key that names the transform inside its signature."""
        ttl = ttl or int(settings.MEDIA_S3_PRESIGN_TTL)
        variant = variant or self._known_variant(media)
        if variant is not None and self.store.serves_presigned_downloads(encrypted=variant_encrypted(variant)):
            url = self.store.signed_download_url(variant.storage_key, ttl, content_type=variant.mime)
        else:
            url = self.app_signed_variant_url(media, ttl)
        return url, self.now + timedelta(seconds=ttl)

    def app_signed_variant_url(self, media: MediaFile, ttl: int) -> str:
        """The app's own URL of the variant (rendered on first fetch), without looking the variant up."""
        return signing.signed_url(signing.make_grant("get", media.object_key, ttl, transform=self.transform.name))

    def _known_variant(self, media: MediaFile) -> MediaVariant | None:
        ready = self._ready if self._ready is not None else ready_variants([media], self.transform)
        return ready.get((media.organization_id, media.sha256))
