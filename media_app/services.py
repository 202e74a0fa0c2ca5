"""Every state change of a MediaFile: store, prepare/complete a presigned upload, delete.

The order of operations is what keeps storage, rows and quota in step:
1. a `pending` row and its quota reservation commit together, before any byte is written;
2. bytes go to storage outside any transaction;
3. activation (status, size, hash) and the quota charge commit together.
A failure at 2 or 3 deletes the object, the pending row and the reservation; a crash
between steps leaves a pending row that the abandoned-uploads job cleans up.
"""
from __future__ import annotations

import logging
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization
from config.errors import (
    Conflict, InvalidRequest, NotFound, QuotaExceeded, ServiceError, TooLarge, UnsupportedMediaType,
)
from media_app import signals
from media_app.fetch import open_remote
from media_app.models import MediaFile
from media_app.selectors import media_quota_totals
from media_app.signals import emit, emits_quota_exceeded
from media_app.sources import Base64Reader, parse_data_url
from media_app.storing import (
    EmptyFile, FileOptions, LateFields, StoreResult, abandon, activate, activate_deduplicated,
    check_declared_size, check_file_part, measure_dimensions, encryption_of, file_facts, find_duplicate, hash_object, lock_live,
    pending_create, plan_category_check, retention_until, upload_limit,
)
from media_app.storing import (  # noqa: F401 - value types and limits callers import from here
    MULTIPART_SLACK, Provenance, check_body_quota, size_label,
)
from quotas.services import QuotaDrift, quota_charge, quota_recalculate, quota_release, quota_release_reservation, quota_reserve
from storage_app.backends import MediaStore, SavedObject, SignedMultipart, SignedUpload, get_store
from storage_app.categories import category_check, get_category
from storage_app.keys import build_user_key, upload_staging_key
from storage_app.uploads import UploadForm
from storage_app.sniff import SNIFF_BYTES, Sniffed, declared_contradicts, sniff

logger = logging.getLogger("mediastore.media")

class UploadIncomplete(Conflict):
    code = "upload_incomplete"
    message = "The file has not been uploaded yet."


@dataclass(frozen=True)
class PreparedUpload:
    media: MediaFile
    upload: SignedUpload


@dataclass(frozen=True)
class PreparedMultipart:
    media: MediaFile
    upload: SignedMultipart


# -- storing bytes ------------------------------------------------------------------------
# A one-request upload whose whole body is known to be at most this size reserves nothing before
# its bytes arrive: the charge at activation is the exact check (used + reserved + size <= limit),
# and an upload it refuses is undone like any failure. Every upload of an organization reserving
# first updated its one quota row in a second committed transaction, whose lock, held through the
# commit's disk flush, made uploads of one organization take turns (docs/benchmarks.md, row 12).
# Larger bodies, and bodies of unknown length, still reserve before their first byte is stored, so
# they are refused early rather than after a long transfer. The early check of the declared size
# against the quota's room (`check_declared_size`, `check_body_quota`) applies to both.
UNRESERVED_MAX_BYTES = 4 * 1024 * 1024


@emits_quota_exceeded
def media_store_stream(*, organization: Organization, owner, source: BinaryIO,  # noqa: ANN001
                       options: FileOptions, declared_size: int | None = None,
                       late: Callable[[], LateFields | None] | None = None,
                       quota_checked: bool = False) -> StoreResult:
    """Store a stream as a new active file (or answer the owner's existing copy).

    `late` is for multipart bodies streamed as they arrive, whose fields may follow the
    file: it is called once the bytes are stored, before deduplication and activation, and
    what it answers is checked against the stored content and recorded (a refusal undoes
    everything, like any other failure). `quota_checked`: the caller has just refused a body
    larger than the quota's room, so the quota is not read again before the reservation (which
    is exact either way).
    """
    category = get_category(options.category)
    plan_category_check(organization, category)
    limit = check_declared_size(organization=organization, category=category, declared=declared_size,
                                quota=not quota_checked)
    bound = declared_size if declared_size is not None else limit  # the most this stream may store
    reserved = 0 if bound <= UNRESERVED_MAX_BYTES else bound
    state: dict[str, MediaFile] = {}

    def check(sniffed: Sniffed) -> None:
        category_check(category, sniffed)
        if declared_contradicts(options.declared_mime, sniffed):
            raise UnsupportedMediaType(f"The content is {sniffed.mime}, not {options.declared_mime}.",
                                       code="content_type_mismatch", param="file")

    def key_for(sniffed: Sniffed) -> str:
        state["media"] = pending_create(organization=organization, owner=owner, options=options,
                                         category=category, ext=sniffed.ext, reserved=reserved)
        return state["media"].storage_key

    store = get_store()
    try:
        saved = _save(store, key_for, source, limit=limit, bound=bound, check=check)
    except BaseException:
        if "media" in state:
            abandon(store, state["media"], delete_object=False)  # save_stream removed the object
        raise
    if late is not None:
        try:
            owner, saved = _apply_late(store, state["media"], saved, late(), organization=organization, owner=owner)
        except BaseException:
            abandon(store, state["media"])
            raise
    return _activate_saved(store, state["media"], saved, organization=organization, owner=owner)


def media_store_form(*, organization: Organization, owner, form: UploadForm, options: FileOptions,  # noqa: ANN001
                     late: Callable[[dict], LateFields] | None = None, length_known: bool = True,
                     quota_checked: bool = False) -> StoreResult:
    """Store the file part of a multipart body read as it arrives (`storage_app.uploads.open_upload_form`).

    No more than what is left of the body is reserved. Fields sent after the file part (seed
    004's `-F file=@x.png -F user_id=...`) are read once the bytes are stored: `late` turns all
    of the form's fields into the owner and options to record, checked before activation.
    The caller has made sure the form has a file part. A file already known to be too big (the
    body's length was declared: `length_known`) is refused before a byte of it is read.
    `quota_checked`: the caller refused a declared body larger than the quota's room
    (`check_body_quota`) just before, so the quota is not read a second time.
    """
    options = replace(options, original_name=options.original_name or form.file.name or "file")
    category = get_category(options.category)
    check_file_part(organization=organization, category=category, name=options.original_name,
                    bound=form.bound if length_known else None)
    limit = upload_limit(organization=organization, category=category)

    def late_fields() -> LateFields | None:
        everything = form.finish()
        return late(everything) if late is not None and form.late_fields else None

    return media_store_stream(organization=organization, owner=owner, source=form.file, options=options,
                              declared_size=min(form.bound, limit), late=late_fields,
                              quota_checked=length_known and quota_checked)


def media_store_data_url(*, organization: Organization, owner, data_url: str,  # noqa: ANN001
                         options: FileOptions) -> StoreResult:
    """Store the bytes of a base64 `data:` URL, decoded as they are stored (never whole in memory twice)."""
    limit = upload_limit(organization=organization, category=get_category(options.category))
    parsed = parse_data_url(data_url, max_bytes=limit)
    options = replace(options, source=MediaFile.Source.DATA_URL, declared_mime=parsed.mime)
    return media_store_stream(organization=organization, owner=owner, source=Base64Reader(parsed.payload),
                              declared_size=parsed.decoded_size, options=options)


def media_store_remote_url(*, organization: Organization, owner, url: str,  # noqa: ANN001
                           options: FileOptions) -> StoreResult:
    """Fetch a public URL (the address policy of `media_app.fetch`) and store its body as it arrives."""
    limit = upload_limit(organization=organization, category=get_category(options.category))
    with open_remote(url, max_bytes=limit, timeout=settings.MEDIA_REMOTE_FETCH_TIMEOUT,
                     allow_networks=settings.MEDIA_REMOTE_FETCH_ALLOW_NETWORKS) as body:
        name = body.url.rsplit("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        options = replace(options, source=MediaFile.Source.REMOTE_URL, source_url=url,
                          original_name=options.original_name or name)
        return media_store_stream(organization=organization, owner=owner, source=body,
                                  declared_size=body.declared_length, options=options)


def _apply_late(store: MediaStore, media: MediaFile, saved: SavedObject, late: LateFields | None, *,  # noqa: ANN001
                organization: Organization, owner) -> tuple[object, SavedObject]:
    """Late fields on a stored, still pending file: category re-checked, owner's key moved to."""
    if late is None:
        return owner, saved
    category = get_category(late.options.category)
    plan_category_check(organization, category)
    category_check(category, saved.sniffed)
    limit = upload_limit(organization=organization, category=category)
    if saved.size > limit:
        raise TooLarge(f"File size {saved.size} exceeds the maximum of {limit} bytes.", param="file")
    provenance = late.options.provenance
    changes = {"category": category.name, "visibility": late.options.visibility, "model": provenance.model,
               "provider": provenance.provider, "prompt": provenance.prompt, "generation": provenance.generation or {}}
    if late.owner.pk != owner.pk:  # the key names its owner: move the object (a rename, or a server-side copy)
        key = build_user_key(org_id=organization.pk, user_id=late.owner.pk,
                             original_name=media.original_name or "file", ext=saved.sniffed.ext, now=timezone.now())
        store.move(media.storage_key, key)
        media.storage_key = key  # from here on, undoing deletes the moved object
        changes.update(owner=late.owner, storage_key=key)
        saved = replace(saved, key=key)
    MediaFile.objects.filter(pk=media.pk, status=MediaFile.Status.PENDING).update(**changes)
    for name, value in changes.items():  # activation answers this instance without reading the row back
        setattr(media, name, value)
    return late.owner, saved


def _save(store: MediaStore, key_for, source: BinaryIO, *, limit: int, bound: int, check) -> SavedObject:  # noqa: ANN001
    """Write, reporting a stream that outgrew its declared size or the quota's room (not the file limit)
    as over quota."""
    try:
        saved = store.save_stream(key_for, source, max_bytes=min(limit, bound), check=check)
    except TooLarge:
        if bound < limit:
            raise QuotaExceeded(param="file") from None
        raise
    if saved.size == 0:
        store.delete(saved.key)
        raise EmptyFile(param="file")
    return saved


def _activate_saved(store: MediaStore, media: MediaFile, saved: SavedObject, *, organization: Organization,
                    owner) -> StoreResult:  # noqa: ANN001
    try:
        width, height = measure_dimensions(saved.head, saved.sniffed, saved.size)
        facts = file_facts(saved.size, saved.sha256, saved.sniffed, width, height, saved.encryption, saved.key_id)
        return activate_deduplicated(store, media, organization=organization, owner=owner, facts=facts)
    except BaseException:
        abandon(store, media)
        raise


# -- presigned uploads --------------------------------------------------------------------
@emits_quota_exceeded
def media_upload_prepare(*, organization: Organization, owner, options: FileOptions,  # noqa: ANN001
                         declared_size: int | None = None) -> PreparedUpload:
    """A pending file with its quota reserved, and URLs a client can upload to directly.

    The URLs name the file's staging key, never its own: completion moves the bytes away from
    there, so a URL used again (S3's cannot be revoked) can never change a live file.
    """
    content_type = options.declared_mime or "application/octet-stream"
    category = get_category(options.category)
    plan_category_check(organization, category)
    limit = check_declared_size(organization=organization, category=category, declared=declared_size, param="bytes")
    reserved = declared_size if declared_size is not None else limit
    ext = (mimetypes.guess_extension(content_type) or "").lstrip(".") or None
    media = pending_create(organization=organization, owner=owner, options=options, category=category,
                            ext={"jpe": "jpg", "jpeg": "jpg"}.get(ext, ext), reserved=reserved)
    upload = get_store().signed_upload(upload_staging_key(organization.pk, media.pk), content_type=content_type,
                                       max_bytes=reserved, ttl=settings.MEDIA_UPLOAD_TTL)
    return PreparedUpload(media=media, upload=upload)


def media_upload_prepare_multipart(*, organization: Organization, owner, options: FileOptions,  # noqa: ANN001
                                   declared_size: int) -> PreparedMultipart:
    """A pending file with `declared_size` reserved and presigned URLs for each part of an S3
    multipart upload to its staging key. The plan's limit applies, not MEDIA_MAX_BYTES (the
    bytes never pass through this server); `multipart_not_supported` where they would have to."""
    category = get_category(options.category)
    plan_category_check(organization, category)
    check_declared_size(organization=organization, category=category, declared=declared_size, param="bytes", resumable=True)
    ext = (mimetypes.guess_extension(options.declared_mime) or "").lstrip(".") or None
    media = pending_create(organization=organization, owner=owner, options=options, category=category,
                           ext={"jpe": "jpg", "jpeg": "jpg"}.get(ext, ext), reserved=declared_size)
    store = get_store()
    try:
        upload = store.signed_multipart_upload(upload_staging_key(organization.pk, media.pk),
                                               content_type=options.declared_mime or "application/octet-stream",
                                               size=declared_size, ttl=settings.MEDIA_UPLOAD_TTL)
    except BaseException:
        abandon(store, media, delete_object=False)
        raise
    MediaFile.objects.filter(pk=media.pk).update(multipart_upload_id=upload.upload_id)
    media.multipart_upload_id = upload.upload_id
    return PreparedMultipart(media=media, upload=upload)


@emits_quota_exceeded
def media_upload_complete(*, media: MediaFile, parts: list[tuple[int, str]] | None = None) -> MediaFile:
    """Check, measure and activate an uploaded object; idempotent. A direct multipart upload's
    parts (number, ETag) are joined first."""
    if media.status == MediaFile.Status.ACTIVE:
        return media
    if media.status != MediaFile.Status.PENDING:
        raise Conflict("This upload was cancelled or deleted.", code="upload_not_pending")
    store = get_store()
    if media.multipart_upload_id:
        if not parts:
            raise UploadIncomplete("Complete a multipart upload with the ETag of each part.")
        _join_parts(store, media, parts)
    if not _take_staged(store, media) and not store.exists(media.storage_key):
        raise UploadIncomplete()
    return _complete(store, media)


def _join_parts(store: MediaStore, media: MediaFile, parts: list[tuple[int, str]]) -> None:
    """CompleteMultipartUpload on the staging key; wrong or missing ETags are 409 `multipart_incomplete`."""
    store.complete_multipart(upload_staging_key(media.organization_id, media.pk),
                             upload_id=media.multipart_upload_id, parts=parts)
    MediaFile.objects.filter(pk=media.pk).update(multipart_upload_id="")
    media.multipart_upload_id = ""


def _take_staged(store: MediaStore, media: MediaFile) -> bool:
    """Move uploaded bytes from the staging key to the file's own; False when none arrived.

    A crash after the move leaves them under `storage_key` (completion then reads them there).
    A concurrent completion may have moved them first: that is not an error.
    """
    staged = upload_staging_key(media.organization_id, media.pk)
    if not store.exists(staged):
        return False
    try:
        store.move(staged, media.storage_key)
    except NotFound:
        return False
    return True


def _complete(store: MediaStore, media: MediaFile) -> MediaFile:
    encrypted = store.looks_encrypted(media.storage_key)
    size = store.plain_size(media.storage_key, encrypted=encrypted)
    try:
        if size > media.reserved_bytes:
            raise TooLarge(f"The uploaded file has {size} bytes, more than the {media.reserved_bytes} reserved.",
                           param="file")
        if size == 0:
            raise EmptyFile(param="file")
        sha256, head = hash_object(store, media.storage_key, encrypted=encrypted, size=size)
        sniffed = sniff(head[:SNIFF_BYTES])
        category_check(get_category(media.category), sniffed)
        if declared_contradicts(media.declared_mime, sniffed):
            raise UnsupportedMediaType(f"The content is {sniffed.mime}, not {media.declared_mime}.",
                                       code="content_type_mismatch", param="file")
        width, height = measure_dimensions(head, sniffed, size)
    except ServiceError:
        abandon(store, media)
        raise
    encryption, key_id = encryption_of(store, media.storage_key, encrypted)
    facts = file_facts(size, sha256, sniffed, width, height, encryption, key_id)
    duplicate = find_duplicate(organization=media.organization, owner=media.owner, sha256=sha256, exclude=media.pk)
    try:
        activated = activate(media, organization=media.organization, facts=facts, duplicate_of=duplicate)
    except QuotaExceeded:
        abandon(store, media)
        raise
    if activated.duplicate_of_id is not None:
        store.delete(media.storage_key)  # the alias reads the original's object
    return activated


# -- changes ------------------------------------------------------------------------------
def media_delete(*, media: MediaFile) -> MediaFile:
    """Hide a file at once and give back its quota; the purge job removes the object."""
    now = timezone.now()
    with transaction.atomic():
        if MediaFile.objects.filter(pk=media.pk, status=MediaFile.Status.ACTIVE).update(
                status=MediaFile.Status.DELETED, deleted_at=now):
            quota_release(organization=media.organization, size=media.bytes)
            emit(signals.media_deleted, media_id=media.pk, organization_id=media.organization_id, reason="deleted")
        elif MediaFile.objects.filter(pk=media.pk, status=MediaFile.Status.PENDING).update(
                status=MediaFile.Status.DELETED, deleted_at=now, reserved_bytes=0):
            quota_release_reservation(organization=media.organization, reserved=media.reserved_bytes)
            transaction.on_commit(lambda: _discard_staged(media))  # storage I/O after the commit
    media.refresh_from_db()
    return media


def _discard_staged(media: MediaFile) -> None:
    """A cancelled upload's bytes, if any arrived; the lifecycle jobs retry a failure."""
    key = upload_staging_key(media.organization_id, media.pk)
    try:
        if media.multipart_upload_id:
            get_store().abort_multipart(key, upload_id=media.multipart_upload_id)
        get_store().delete(key)
    except ServiceError:
        logger.warning("could not delete the staged upload %s; expire_uploads will", key)


def media_update(*, media: MediaFile, changes: dict, operator: bool = False) -> MediaFile:
    """Visibility, provenance and `retain_until` (within what the plan allows).

    An `operator` (the admin) may also change the category and set any retention date."""
    editable = ("visibility", "model", "provider", "prompt", "generation") + (("category",) if operator else ())
    fields = [name for name in editable if name in changes]
    for name in fields:
        setattr(media, name, changes[name])
    if "category" in fields:
        media.category = get_category(changes["category"]).name
    if "retain_until" in changes:
        media.retain_until = changes["retain_until"] if operator else _allowed_retention(media, changes["retain_until"])
        fields.append("retain_until")
    if fields:
        MediaFile.objects.filter(pk=media.pk, status=MediaFile.Status.ACTIVE).update(
            **{name: getattr(media, name) for name in fields})
    return media


def _allowed_retention(media: MediaFile, until: datetime | None) -> datetime | None:
    plan = media.organization.plan
    if until is None:
        if not plan.allow_keep_forever:
            raise InvalidRequest("The plan does not allow keeping files forever.", code="retention_not_allowed",
                                 param="retain_until")
        return None
    if until <= timezone.now():
        raise InvalidRequest("retain_until must be in the future.", code="invalid_retention", param="retain_until")
    if plan.max_retention_days is not None:
        latest = media.created_at + timedelta(days=plan.max_retention_days)
        if until > latest:
            raise InvalidRequest(f"The plan keeps files at most {plan.max_retention_days} days "
                                 f"(until {latest.isoformat()}).", code="retention_not_allowed",
                                 param="retain_until")
    return until


@emits_quota_exceeded
def media_restore(*, media: MediaFile) -> MediaFile:
    """Bring a deleted (not yet purged) file back: its object must still be there and its
    bytes must fit the quota again."""
    if media.status != MediaFile.Status.DELETED:
        raise Conflict("Only deleted files can be restored.", code="not_deleted")
    if media.completed_at is None:
        raise Conflict("A cancelled upload cannot be restored.", code="not_restorable")
    if not get_store().exists(media.object_key):
        raise Conflict("The file's object is gone; it cannot be restored.", code="object_missing")
    now = timezone.now()
    with transaction.atomic():
        if media.duplicate_of_id and not lock_live(media.duplicate_of_id):
            raise Conflict("The original this alias reads is no longer live.", code="object_missing")
        quota_reserve(organization=media.organization, n=media.bytes)
        claimed = MediaFile.objects.filter(pk=media.pk, status=MediaFile.Status.DELETED).update(
            status=MediaFile.Status.ACTIVE, deleted_at=None,
            retain_until=retention_until(organization=media.organization, now=now))
        if not claimed:
            raise Conflict("The file changed while being restored.", code="not_deleted")
        quota_charge(organization=media.organization, reserved=media.bytes, size=media.bytes)
    media.refresh_from_db()
    return media


def media_quota_recalculate(*, organization: Organization, dry_run: bool = False) -> QuotaDrift:
    """Recount the organization's quota from its files and fix the counters (unless `dry_run`)."""
    return quota_recalculate(organization=organization, dry_run=dry_run,
                             recount=lambda: media_quota_totals(organization=organization))
