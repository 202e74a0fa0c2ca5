"""Image variants: rendered on first request, stored next to the original, reused after.

    variant = media_variant_get(media=media, transform=transform)   # renders at most once
    view = variant_object(variant, media)                            # serve it like any object

A variant belongs to its organization and its original's SHA-256 (two files of the same bytes
share their variants), under `organizations/{org}/variants/{sha256}/{transform}.{ext}`, written
through the same store, so in the same encryption mode. The `MediaVariant` row's unique
constraint is the claim: the request that inserts it renders, concurrent ones wait for it to be
`ready`; a renderer that died leaves a stale claim the next request takes over. No database
transaction is held while rendering or writing.
"""
from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import InvalidRequest, NotFound, ServiceError, TooLarge
from media_app.imaging import HEADER_BYTES, image_dimensions
from media_app.models import MediaFile, MediaVariant
from media_app.rendering import render_variant
from media_app.transforms import Transform, require_transformable
from storage_app.backends import MediaStore, get_store
from storage_app.http import ObjectView
from storage_app.keys import safe_stem, variant_key

logger = logging.getLogger("mediastore.variants")

RENDER_WAIT = 30.0  # seconds a request waits for another's render, or for a render slot
STALE_CLAIM = timedelta(minutes=2)  # a claim this old belongs to a renderer that died
POLL = 0.05
PUBLIC_CACHE = "public, max-age=31536000, immutable"  # a variant's bytes never change
PRIVATE_CACHE = "private, max-age=86400"
Ready = MediaVariant.Status.READY


class SourceTooLarge(TooLarge):
    code = "image_too_large"
    message = "The image has too many pixels to be transformed."


class VariantBusy(ServiceError):
    status = 503
    code = "transform_busy"
    type = "storage_error"
    message = "Too many images are being rendered; retry shortly."


# -- the one entry point ----------------------------------------------------------------------
def media_variant_get(*, media: MediaFile, transform: Transform) -> MediaVariant:
    """The ready variant of `media` for `transform`, rendered now if no request did before.

    415 for files that are not raster images, 413 for sources over MEDIA_TRANSFORM_MAX_PIXELS
    (decided from the header, before any pixel is decoded)."""
    require_transformable(media.mime)
    if not media.sha256:
        raise InvalidRequest("This file has no content hash yet; it cannot be transformed.", code="not_an_image")
    ready = MediaVariant.objects.filter(**_identity(media, transform), status=Ready).first()
    if ready is not None:
        return ready
    store = get_store()
    check_source_pixels(media, store)
    for _ in range(3):  # a claim whose renderer failed is gone: claim again
        row, mine = _claim(media, transform)
        if mine:
            return _render_into(row, media, transform, store)
        row = _await(row)
        if row is not None and row.status == Ready:
            return row
        if row is not None:  # a stale claim, now ours
            return _render_into(row, media, transform, store)
    raise VariantBusy()


def _identity(media: MediaFile, transform: Transform) -> dict:
    return {"organization_id": media.organization_id, "sha256": media.sha256, "transform": transform.name}


# -- bounds ----------------------------------------------------------------------------------
def check_source_pixels(media: MediaFile, store: MediaStore) -> None:
    """Refuse a decompression bomb from its dimensions: the row's, else the stored header's."""
    limit = settings.MEDIA_TRANSFORM_MAX_PIXELS
    width, height = media.width, media.height
    if not (width and height):
        width, height = _header_dimensions(media, store, limit)
    if width * height > limit:
        raise SourceTooLarge(f"The image is {width}x{height} ({width * height:,} pixels); "
                             f"at most {limit:,} pixels can be transformed.")


def _header_dimensions(media: MediaFile, store: MediaStore, limit: int) -> tuple[int, int]:
    head = b"".join(store.open_range(media.object_key, 0, min(media.bytes, HEADER_BYTES) - 1,
                                     encrypted=_encrypted(media), plain_size=media.bytes))
    try:
        size = image_dimensions(head, media.mime, max_pixels=limit, complete=len(head) == media.bytes)
    except InvalidRequest as exc:
        if exc.code == "image_too_large":
            raise SourceTooLarge(f"The image has more than {limit:,} pixels, the most that can be transformed.") from exc
        raise
    if size is None:
        raise InvalidRequest("The image's dimensions cannot be read from its header.", code="invalid_image")
    return size


_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


def _semaphore() -> threading.BoundedSemaphore:
    """One per process, sized by MEDIA_TRANSFORM_CONCURRENCY (rebuilt if the setting changes, in tests)."""
    global _slots
    size = settings.MEDIA_TRANSFORM_CONCURRENCY
    with _slots_lock:
        if _slots is None or _slots[0] != size:
            _slots = (size, threading.BoundedSemaphore(size))
        return _slots[1]


@contextmanager
def render_slot() -> Iterator[None]:
    """At most N decoded images in memory per process: renders beyond that wait, then give up (503)."""
    semaphore = _semaphore()
    if not semaphore.acquire(timeout=RENDER_WAIT):
        raise VariantBusy()
    try:
        yield
    finally:
        semaphore.release()


# -- claim, wait, render ---------------------------------------------------------------------
def _claim(media: MediaFile, transform: Transform) -> tuple[MediaVariant, bool]:
    key = variant_key(org_id=media.organization_id, sha256=media.sha256, name=transform.name,
                      ext=transform.extension)
    try:
        with transaction.atomic():
            row = MediaVariant.objects.create(**_identity(media, transform), storage_key=key,
                                              mime=transform.mime, claimed_at=timezone.now())
        return row, True
    except IntegrityError:
        return MediaVariant.objects.get(**_identity(media, transform)), False


def _await(row: MediaVariant) -> MediaVariant | None:
    """The row once ready; None once gone (its renderer failed); the row itself when its claim
    was stale and this request took it over."""
    deadline = time.monotonic() + RENDER_WAIT
    while time.monotonic() < deadline:
        current = MediaVariant.objects.filter(pk=row.pk).first()
        if current is None or current.status == Ready:
            return current
        if current.claimed_at < timezone.now() - STALE_CLAIM and _take_over(current):
            return current
        time.sleep(POLL)
    raise VariantBusy()


def _take_over(row: MediaVariant) -> bool:
    """Only one waiter matches the old `claimed_at`."""
    now = timezone.now()
    taken = MediaVariant.objects.filter(pk=row.pk, status=MediaVariant.Status.RENDERING,
                                        claimed_at=row.claimed_at).update(claimed_at=now)
    row.claimed_at = now
    return bool(taken)


def _render_into(row: MediaVariant, media: MediaFile, transform: Transform, store: MediaStore) -> MediaVariant:
    try:
        with render_slot():
            source = store.read_bytes(media.object_key, encrypted=_encrypted(media))
            rendered = render_variant(source, transform)
        saved = store.save_stream(row.storage_key, io.BytesIO(rendered.data), max_bytes=len(rendered.data),
                                  replacing=True)
    except BaseException:
        MediaVariant.objects.filter(pk=row.pk, status=MediaVariant.Status.RENDERING).delete()
        raise
    fields = {"status": Ready, "bytes": saved.size, "variant_sha256": saved.sha256, "mime": transform.mime,
              "width": rendered.width, "height": rendered.height, "encryption": saved.encryption}
    if not MediaVariant.objects.filter(pk=row.pk).update(**fields):
        # Purged with its original while rendering: leave nothing behind.
        store.delete(row.storage_key)
        raise NotFound("No such media file.", code="media_not_found")
    for name, value in fields.items():
        setattr(row, name, value)
    return row


def _encrypted(media: MediaFile) -> bool:
    return media.encryption == MediaFile.Encryption.APP


# -- serving ---------------------------------------------------------------------------------
def variant_object(variant: MediaVariant, media: MediaFile) -> ObjectView:
    return ObjectView(key=variant.storage_key, size=variant.bytes, mime=variant.mime, etag=variant.variant_sha256,
                      encrypted=variant.encryption == MediaFile.Encryption.APP,
                      filename=f"{safe_stem(media.original_name)}.{variant.storage_key.rsplit('.', 1)[-1]}")


def variant_cache_control(media: MediaFile) -> str:
    return PUBLIC_CACHE if media.visibility == MediaFile.Visibility.PUBLIC else PRIVATE_CACHE


def variant_encrypted(variant: MediaVariant) -> bool:
    return variant.encryption == MediaFile.Encryption.APP


def media_live_for_object(*, key: str) -> MediaFile:
    """The active file whose bytes are under `key` (its own, or an active alias of it), for a
    signed variant URL; 404 once none is."""
    rows = (MediaFile.objects.filter(storage_key=key, status=MediaFile.Status.ACTIVE)
            | MediaFile.objects.filter(duplicate_of__storage_key=key, status=MediaFile.Status.ACTIVE))
    media = rows.select_related("duplicate_of").order_by("created_at").first()
    if media is None:
        raise NotFound("The file does not exist.")
    return media


def ready_variants(medias: list[MediaFile], transform: Transform) -> dict[tuple[int, str], MediaVariant]:
    """The ready variants of a page of files, in one query, by (organization, sha256)."""
    hashes = {m.sha256 for m in medias if m.sha256}
    if not hashes:
        return {}
    rows = MediaVariant.objects.filter(organization_id__in={m.organization_id for m in medias},
                                       sha256__in=hashes, transform=transform.name, status=Ready)
    return {(row.organization_id, row.sha256): row for row in rows}


# -- lifecycle ---------------------------------------------------------------------
def media_variants_purge(*, organization_id: int, sha256: str, store: MediaStore | None = None) -> int:
    """Delete the variants of content no file of the organization holds any more (the last one
    purged); the number deleted. A failed delete keeps its row, for the next purge to retry."""
    if not sha256:
        return 0
    holders = MediaFile.objects.filter(organization_id=organization_id, sha256=sha256).exclude(
        status=MediaFile.Status.PURGED)
    if holders.exists():
        return 0
    store = store or get_store()
    deleted = 0
    for row in MediaVariant.objects.filter(organization_id=organization_id, sha256=sha256):
        store.delete(row.storage_key)
        row.delete()
        deleted += 1
    return deleted


def variant_keys_kept(keys: list[str]) -> set[str]:
    """Which of `keys` a variant row keeps (reconcile_storage)."""
    return set(MediaVariant.objects.filter(storage_key__in=keys).values_list("storage_key", flat=True))
