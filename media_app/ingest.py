"""Ingest: adopt an object of the organization's compute namespace as a media file (seed 002).

    result = media_ingest(organization=org, owner=user, storage_key="compute/gen/a.png",
                          options=FileOptions(category="general", provenance=Provenance(model="flux")))

Two names for one object, kept apart everywhere below:

- the *source key*, `compute/<path>`: what the client sends (the compute server's view of the
  key, seed 002), stored as `MediaFile.source_key` and answered as `source_key`;
- the *object key*, `compute/<org id>/<path>` (`storage_app.keys.compute_key`): where the object
  really is. Every storage call (exists, size, read, copy, delete) and `SourceCleanup.storage_key`
  (what the cleanup job deletes) use it.

The mapping is always into the caller's own namespace: `compute/<other org id>/x.png` sent
literally names `compute/<my org id>/<other org id>/x.png`, so another organization's objects
cannot be reached.

The object is copied (server-side on S3) to the canonical key of a new file, then hashed,
sniffed, measured, deduplicated and charged like any upload, through the same steps as
`media_app.services`: a pending row and its reservation commit first, bytes move outside any
transaction, activation and the charge commit together; any failure undoes the copy, the row
and the reservation, and never touches the source. With `relocate` the source is recorded in
`SourceCleanup` and deleted by the lifecycle job after `MEDIA_SOURCE_DELETE_DELAY`.

Ingesting the same source again answers the file made the first time (idempotent).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization
from config.errors import Conflict, InvalidPath, NotFound, TooLarge
from media_app.models import MediaFile, SourceCleanup
from media_app.signals import emits_quota_exceeded
from media_app.storing import (
    EmptyFile, FileOptions, StoreResult, abandon, activate_deduplicated, measure_dimensions, encryption_of, file_facts,
    hash_object, pending_create, plan_category_check, upload_limit,
)
from storage_app.backends import MediaStore, get_store
from storage_app.categories import Category, category_check, get_category
from storage_app.keys import COMPUTE_PREFIX, MAX_COMPUTE_PATH_LENGTH, compute_key, validate_key
from storage_app.sniff import SNIFF_BYTES, Sniffed, sniff


class SourceNotFound(NotFound):
    code = "source_not_found"
    message = "There is no object at this storage key."


class IngestInProgress(Conflict):
    code = "ingest_in_progress"
    message = "This source is being ingested by another request; retry shortly."


@dataclass(frozen=True)
class IngestResult(StoreResult):
    ingested_before: bool = False  # this source had already been ingested: the earlier file is answered


@dataclass(frozen=True)
class _Source:
    object_key: str  # the real storage key, `compute/<org id>/<path>`
    encrypted: bool
    size: int  # plaintext bytes
    sniffed: Sniffed


@emits_quota_exceeded
def media_ingest(*, organization: Organization, owner, storage_key: str, relocate: bool = True,  # noqa: ANN001
                 options: FileOptions) -> IngestResult:
    """A media file of `owner` with the content of `storage_key`.

    `storage_key` is the client-facing source key `compute/<path>`; the object read is
    `compute/<organization id>/<path>`, in `organization`'s own namespace.
    """
    source_key = validate_source_key(storage_key)
    object_key = source_object_key(source_key, organization=organization)
    options = dataclasses.replace(options, source=MediaFile.Source.INGESTED, source_key=source_key,
                                  original_name=options.original_name or source_key.rsplit("/", 1)[-1])
    earlier = _ingested_before(organization=organization, owner=owner, source_key=source_key, object_key=object_key)
    if earlier is not None:
        return _answer_earlier(earlier, object_key=object_key, relocate=relocate)
    category = get_category(options.category)
    plan_category_check(organization, category)
    store = get_store()
    source = _inspect_source(store, object_key, organization=organization, category=category)
    media, earlier = _pending_once(organization=organization, owner=owner, source_key=source_key,
                                   object_key=object_key, options=options, category=category, source=source)
    if earlier is not None:
        return _answer_earlier(earlier, object_key=object_key, relocate=relocate)
    result = _copy_and_activate(store, media, source, organization=organization, owner=owner, category=category)
    if relocate:
        source_cleanup_schedule(storage_key=object_key, media=result.media)
    return result


def validate_source_key(storage_key: object) -> str:
    """The client-facing source key, `compute/<path>`, unchanged if valid; else 400 `invalid_path`
    (param `storage_key`). Not a storage key: `source_object_key` maps it to one."""
    key = validate_key(storage_key, max_length=len(COMPUTE_PREFIX) + MAX_COMPUTE_PATH_LENGTH, param="storage_key")
    if not key.startswith(COMPUTE_PREFIX) or key == COMPUTE_PREFIX:
        raise InvalidPath(f"Only objects under {COMPUTE_PREFIX} can be ingested.", param="storage_key")
    return key


def source_object_key(source_key: str, *, organization: Organization) -> str:
    """The real storage key of a validated source key: `compute/<path>` -> `compute/<org id>/<path>`.

    Always inside `organization`'s namespace, whatever `<path>` says (a leading `<other org id>/`
    is just part of the path).
    """
    return compute_key(source_key[len(COMPUTE_PREFIX):], organization.pk)


def source_cleanup_schedule(*, storage_key: str, media: MediaFile) -> SourceCleanup:
    """Record the object at `storage_key` (a real object key, `compute/<org id>/<path>`) for
    deletion after `MEDIA_SOURCE_DELETE_DELAY`; idempotent.

    A row already done (the path was reused and ingested again) is scheduled afresh.
    """
    delete_after = timezone.now() + timedelta(seconds=settings.MEDIA_SOURCE_DELETE_DELAY)
    cleanup, created = SourceCleanup.objects.get_or_create(
        storage_key=storage_key, defaults={"media_file": media, "delete_after": delete_after})
    if not created and cleanup.done_at is not None:
        SourceCleanup.objects.filter(pk=cleanup.pk, done_at__isnull=False).update(
            media_file=media, delete_after=delete_after, done_at=None, attempts=0, last_error="")
        cleanup.refresh_from_db()
    return cleanup


# -- idempotency --------------------------------------------------------------------------
def _ingested_before(*, organization: Organization, owner, source_key: str,  # noqa: ANN001
                     object_key: str) -> MediaFile | None:
    """The owner's live file an earlier ingest of `source_key` answered. Another member's is never
    answered, whatever the dedup scope: ingesting it for this owner makes a file of their own.

    Files are found by their client-facing `source_key` (per organization); a cleanup row by
    the `object_key` it deletes.

    A pending one means another request is ingesting it right now (409, retryable); one left
    pending past its upload window by a crash is ignored, and the abandoned-uploads job removes it.
    """
    rows = MediaFile.objects.filter(organization=organization, source_key=source_key, owner=owner)
    if rows.filter(status=MediaFile.Status.PENDING, upload_expires_at__gt=timezone.now()).exists():
        raise IngestInProgress(param="storage_key")
    media = rows.filter(status=MediaFile.Status.ACTIVE).order_by("created_at").first()
    if media is not None:
        return media
    # A source whose content was a duplicate made no row of its own; its cleanup row names the answer.
    cleanup = SourceCleanup.objects.filter(storage_key=object_key, media_file__organization=organization,
                                           media_file__status=MediaFile.Status.ACTIVE).select_related(
        "media_file").first()
    if cleanup is not None and cleanup.media_file.owner_id == owner.pk:
        return cleanup.media_file
    return None


def _answer_earlier(media: MediaFile, *, object_key: str, relocate: bool) -> IngestResult:
    if relocate:  # an earlier call without relocate may be followed by one with it
        source_cleanup_schedule(storage_key=object_key, media=media)
    return IngestResult(media=media, deduped=True, ingested_before=True)


def _pending_once(*, organization: Organization, owner, source_key: str, object_key: str,  # noqa: ANN001
                  options: FileOptions, category: Category,
                  source: _Source) -> tuple[MediaFile | None, MediaFile | None]:
    """The pending row and its reservation, or the file a concurrent ingest of `source_key` just made.

    The organization row lock makes check-then-create one step, so two racing ingests of the
    same source cannot both create a file. It is held for two short statements, no I/O.
    """
    with transaction.atomic():
        Organization.objects.select_for_update().get(pk=organization.pk)
        earlier = _ingested_before(organization=organization, owner=owner, source_key=source_key,
                                   object_key=object_key)
        if earlier is not None:
            return None, earlier
        media = pending_create(organization=organization, owner=owner, options=options, category=category,
                                ext=source.sniffed.ext, reserved=source.size)
    return media, None


# -- the source ---------------------------------------------------------------------------
def _inspect_source(store: MediaStore, object_key: str, *, organization: Organization,
                    category: Category) -> _Source:
    """Size and type of the object at `object_key`, refused early (nothing reserved yet) if it
    cannot be adopted."""
    try:
        encrypted = store.looks_encrypted(object_key)
        size = store.plain_size(object_key, encrypted=encrypted)
        head = b"".join(store.open_range(object_key, 0, min(size, SNIFF_BYTES) - 1, encrypted=encrypted,
                                         plain_size=size)) if size else b""
    except NotFound:
        raise SourceNotFound(param="storage_key") from None
    if size == 0:
        raise EmptyFile("The source object is empty.", param="storage_key")
    limit = upload_limit(organization=organization, category=category)
    if size > limit:
        raise TooLarge(f"File size {size} exceeds the maximum of {limit} bytes.", param="storage_key")
    sniffed = sniff(head)
    category_check(category, sniffed)
    return _Source(object_key=object_key, encrypted=encrypted, size=size, sniffed=sniffed)


# -- copy, measure, activate --------------------------------------------------------------
def _copy_and_activate(store: MediaStore, media: MediaFile, source: _Source, *,  # noqa: ANN001
                       organization: Organization, owner, category: Category) -> IngestResult:
    try:
        facts = _copy(store, source, media.storage_key, organization=organization, category=category)
        result = activate_deduplicated(store, media, organization=organization, owner=owner, facts=facts)
        return IngestResult(media=result.media, deduped=result.deduped)
    except BaseException:
        abandon(store, media)  # the copy, the row, the reservation; never the source
        raise


def _copy(store: MediaStore, source: _Source, destination: str, *, organization: Organization,
          category: Category) -> dict:
    """Copy the source to `destination` and measure the copy (the source may change meanwhile)."""
    if store.encryption == "app" and not source.encrypted:
        return _copy_encrypting(store, source, destination, organization=organization, category=category)
    try:
        store.copy(source.object_key, destination)  # server-side on S3: the bytes never pass through here
    except NotFound:
        raise SourceNotFound(param="storage_key") from None
    encrypted = store.looks_encrypted(destination)
    size = store.plain_size(destination, encrypted=encrypted)
    _check_copied_size(size, organization=organization, category=category)
    sha256, head = hash_object(store, destination, encrypted=encrypted, size=size)
    sniffed = sniff(head[:SNIFF_BYTES])
    category_check(category, sniffed)
    width, height = measure_dimensions(head, sniffed, size)
    encryption, key_id = encryption_of(store, destination, encrypted)
    return file_facts(size, sha256, sniffed, width, height, encryption, key_id)


def _copy_encrypting(store: MediaStore, source: _Source, destination: str, *, organization: Organization,
                     category: Category) -> dict:
    """A plaintext source under `MEDIA_ENCRYPTION=app`: streamed through the app to be encrypted."""
    limit = upload_limit(organization=organization, category=category)
    try:
        saved = store.save_stream(destination, _ChunkReader(store.open_range(source.object_key, encrypted=False)),
                                  max_bytes=limit, check=lambda sniffed: category_check(category, sniffed))
    except NotFound:
        raise SourceNotFound(param="storage_key") from None
    _check_copied_size(saved.size, organization=organization, category=category)
    width, height = measure_dimensions(saved.head, saved.sniffed, saved.size)
    return file_facts(saved.size, saved.sha256, saved.sniffed, width, height, saved.encryption, saved.key_id)


def _check_copied_size(size: int, *, organization: Organization, category: Category) -> None:
    if size == 0:
        raise EmptyFile("The source object is empty.", param="storage_key")
    limit = upload_limit(organization=organization, category=category)
    if size > limit:
        raise TooLarge(f"File size {size} exceeds the maximum of {limit} bytes.", param="storage_key")


class _ChunkReader:
    """A read()-able view of an iterator of chunks, for `save_stream`."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buffer) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if n < 0:
            n = len(self._buffer)
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

