"""Every state change of a MediaFile: store, prepare/complete a presigned upload, delete.

The order of operations is what keeps storage, rows and quota in step:
1. a `pending` row and its quota reservation commit together, before any byte is written;
2. bytes go to storage outside any transaction;
3. activation (status, size, hash) and the quota charge commit together.
A failure at 2 or 3 deletes the object, the pending row and the reservation; a crash
between steps leaves a pending row that the abandoned-uploads job cleans up.
"""
from __future__ import annotations

import hashlib
import logging
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Value, When
from django.utils import timezone

from accounts.models import Organization
from config.errors import (
    Conflict, InvalidRequest, NotFound, QuotaExceeded, ServiceError, TooLarge, UnsupportedMediaType,
)
from media_app import signals
from media_app.ids import media_id_new
from media_app.imaging import image_dimensions
from media_app.models import MediaFile
from media_app.selectors import media_quota_totals
from media_app.signals import emit, emits_quota_exceeded
from quotas.services import (
    QuotaDrift, quota_available, quota_charge, quota_recalculate, quota_release, quota_release_reservation,
    quota_reserve,
)
from storage_app import crypto
from storage_app.backends import KEEP_HEAD, MediaStore, SavedObject, SignedUpload, get_store
from storage_app.categories import Category, category_check, effective_max_bytes, get_category
from storage_app.keys import build_user_key, upload_staging_key
from storage_app.sniff import SNIFF_BYTES, Sniffed, declared_contradicts, sniff

logger = logging.getLogger("mediastore.media")


class UploadIncomplete(Conflict):
    code = "upload_incomplete"
    message = "The file has not been uploaded yet."


class EmptyFile(InvalidRequest):
    code = "empty_file"
    message = "The file is empty."


@dataclass(frozen=True)
class Provenance:
    model: str = ""
    provider: str = ""
    prompt: str = ""
    generation: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StoreResult:
    media: MediaFile
    deduped: bool


@dataclass(frozen=True)
class PreparedUpload:
    media: MediaFile
    upload: SignedUpload


@dataclass(frozen=True)
class FileOptions:
    """What a caller says about a new file, on every way in."""

    original_name: str = ""
    category: str | None = None
    visibility: str = MediaFile.Visibility.PRIVATE
    source: str = MediaFile.Source.UPLOAD
    source_url: str = ""
    source_key: str = ""
    declared_mime: str = ""
    provenance: Provenance = field(default_factory=Provenance)


# -- limits -------------------------------------------------------------------------------
def upload_limit(*, organization: Organization, category: Category) -> int:
    """The per-file limit: deployment cap, the plan's, and the category's, whichever is lowest."""
    plan_max = min(organization.plan.max_file_bytes, settings.MEDIA_MAX_BYTES)
    return effective_max_bytes(category, plan_max)


def retention_until(*, organization: Organization, now: datetime | None = None) -> datetime | None:
    days = organization.retention_days_effective()
    return (now or timezone.now()) + timedelta(days=days)


@emits_quota_exceeded
def check_declared_size(*, organization: Organization, category: Category, declared: int | None) -> int:
    """Refuse before reading a body that is already known to be too big; the limit otherwise."""
    limit = upload_limit(organization=organization, category=category)
    if declared is not None and declared > limit:
        raise TooLarge(f"File size {declared} exceeds the maximum of {limit} bytes.", param="file")
    if declared is not None and declared > quota_available(organization=organization):
        raise QuotaExceeded(param="file")
    return limit


def _check_plan_category(organization: Organization, category: Category) -> None:
    allowed = organization.plan.allowed_categories
    if allowed and category.name not in allowed:
        raise InvalidRequest(f"The plan does not allow the category {category.name!r}.",
                             code="category_not_allowed", param="category")


# -- storing bytes ------------------------------------------------------------------------
@dataclass(frozen=True)
class LateFields:
    """What a multipart body said after its file part: the owner and options it ends with."""

    owner: object
    options: FileOptions


@emits_quota_exceeded
def media_store_stream(*, organization: Organization, owner, source: BinaryIO,  # noqa: ANN001
                       options: FileOptions, declared_size: int | None = None,
                       late: Callable[[], LateFields | None] | None = None) -> StoreResult:
    """Store a stream as a new active file (or answer the owner's existing copy).

    `late` is for multipart bodies streamed as they arrive, whose fields may follow the
    file: it is called once the bytes are stored, before deduplication and activation, and
    what it answers is checked against the stored content and recorded (a refusal undoes
    everything, like any other failure).
    """
    category = get_category(options.category)
    _check_plan_category(organization, category)
    limit = check_declared_size(organization=organization, category=category, declared=declared_size)
    reserved = declared_size if declared_size is not None else limit
    state: dict[str, MediaFile] = {}

    def check(sniffed: Sniffed) -> None:
        category_check(category, sniffed)
        if declared_contradicts(options.declared_mime, sniffed):
            raise UnsupportedMediaType(f"The content is {sniffed.mime}, not {options.declared_mime}.",
                                       code="content_type_mismatch", param="file")

    def key_for(sniffed: Sniffed) -> str:
        state["media"] = _pending_create(organization=organization, owner=owner, options=options,
                                         category=category, ext=sniffed.ext, reserved=reserved)
        return state["media"].storage_key

    store = get_store()
    try:
        saved = _save(store, key_for, source, limit=limit, reserved=reserved, check=check)
    except BaseException:
        if "media" in state:
            _abandon(store, state["media"], delete_object=False)  # save_stream removed the object
        raise
    if late is not None:
        try:
            owner, saved = _apply_late(store, state["media"], saved, late(), organization=organization, owner=owner)
        except BaseException:
            _abandon(store, state["media"])
            raise
    return _activate_saved(store, state["media"], saved, organization=organization, owner=owner)


def _apply_late(store: MediaStore, media: MediaFile, saved: SavedObject, late: LateFields | None, *,  # noqa: ANN001
                organization: Organization, owner) -> tuple[object, SavedObject]:
    """Late fields on a stored, still pending file: category re-checked, owner's key moved to."""
    if late is None:
        return owner, saved
    category = get_category(late.options.category)
    _check_plan_category(organization, category)
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
    return late.owner, saved


def _save(store: MediaStore, key_for, source: BinaryIO, *, limit: int, reserved: int, check) -> SavedObject:  # noqa: ANN001
    """Write, reporting a stream that outgrew its reservation (not the file limit) as over quota."""
    try:
        saved = store.save_stream(key_for, source, max_bytes=min(limit, reserved), check=check)
    except TooLarge:
        if reserved < limit:
            raise QuotaExceeded(param="file") from None
        raise
    if saved.size == 0:
        store.delete(saved.key)
        raise EmptyFile(param="file")
    return saved


def _pending_create(*, organization: Organization, owner, options: FileOptions, category: Category,  # noqa: ANN001
                    ext: str | None, reserved: int) -> MediaFile:
    """The pending row and its reservation, committed together before any byte is written."""
    now = timezone.now()
    key = build_user_key(org_id=organization.pk, user_id=owner.pk, original_name=options.original_name or "file",
                         ext=ext, now=now)
    with transaction.atomic():
        quota_reserve(organization=organization, n=reserved)
        return MediaFile.objects.create(
            id=media_id_new(), organization=organization, owner=owner, status=MediaFile.Status.PENDING,
            storage_key=key, original_name=(options.original_name or "")[:255], category=category.name,
            visibility=options.visibility, source=options.source, source_url=options.source_url,
            source_key=options.source_key, declared_mime=options.declared_mime or "",
            model=options.provenance.model, provider=options.provenance.provider,
            prompt=options.provenance.prompt, generation=options.provenance.generation or {},
            reserved_bytes=reserved, upload_expires_at=now + timedelta(seconds=settings.MEDIA_UPLOAD_TTL),
        )


def _activate_saved(store: MediaStore, media: MediaFile, saved: SavedObject, *, organization: Organization,
                    owner) -> StoreResult:  # noqa: ANN001
    try:
        width, height = _dimensions(saved.head, saved.sniffed, saved.size)
        facts = _facts(saved.size, saved.sha256, saved.sniffed, width, height, saved.encryption, saved.key_id)
        return _activate_deduplicated(store, media, organization=organization, owner=owner, facts=facts)
    except BaseException:
        _abandon(store, media)
        raise


def _activate_deduplicated(store: MediaStore, media: MediaFile, *, organization: Organization, owner,  # noqa: ANN001
                           facts: dict) -> StoreResult:
    """Activate `media`, or answer the owner's own earlier copy of its content.

    Another member's copy (MEDIA_DEDUP_SCOPE=organization) is never answered, as it would tell
    the uploader its id, name, prompt and URL: `media` becomes an alias of it instead, reading
    its object, a row of the uploader's own that is charged like any file.
    """
    duplicate = _find_duplicate(organization=organization, owner=owner, sha256=facts["sha256"], exclude=media.pk)
    if duplicate is not None and duplicate.owner_id == owner.pk:
        _abandon(store, media)
        return StoreResult(media=duplicate, deduped=True)
    activated = _activate(media, organization=organization, facts=facts, duplicate_of=duplicate)
    if activated.duplicate_of_id is not None:  # the alias reads the original's object
        _drop_aliased_object(store, media.storage_key)
    return StoreResult(media=activated, deduped=False)


def _drop_aliased_object(store: MediaStore, key: str) -> None:
    """An alias's own copy of the bytes, no longer read; left behind, reconcile_storage finds it
    stray (an alias's own key is not kept), so a failure here must not fail the upload."""
    try:
        store.delete(key)
    except Exception:  # noqa: BLE001
        logger.warning("could not delete the object %s of a new alias; reconcile_storage will", key)


def _dimensions(head: bytes, sniffed: Sniffed, size: int) -> tuple[int | None, int | None]:
    dims = image_dimensions(head, sniffed.mime, complete=size <= len(head))
    return dims if dims else (None, None)


def _facts(size: int, sha256: str, sniffed: Sniffed, width, height, encryption: str, key_id: str) -> dict:  # noqa: ANN001
    return {"bytes": size, "sha256": sha256, "mime": sniffed.mime, "media_kind": sniffed.kind,
            "width": width, "height": height, "encryption": encryption, "encryption_key_id": key_id}


def _activate(media: MediaFile, *, organization: Organization, facts: dict,
              duplicate_of: MediaFile | None = None) -> MediaFile:
    """Pending -> active and the quota charge, together; only one caller can win the claim."""
    now = timezone.now()
    if duplicate_of is not None and duplicate_of.duplicate_of_id is not None:
        duplicate_of = duplicate_of.duplicate_of  # an alias's alias reads the same object: name the original
    with transaction.atomic():
        if duplicate_of is not None and not _lock_live(duplicate_of.pk):
            duplicate_of = None  # the original went away meanwhile: keep this file's own object
        if duplicate_of is not None:  # the alias reads the original's object, stored as the original was
            facts = {**facts, "encryption": duplicate_of.encryption, "encryption_key_id": duplicate_of.encryption_key_id}
        claimed = MediaFile.objects.filter(pk=media.pk, status=MediaFile.Status.PENDING).update(
            status=MediaFile.Status.ACTIVE, completed_at=now, reserved_bytes=0, upload_expires_at=None,
            retain_until=retention_until(organization=organization, now=now), duplicate_of=duplicate_of, **facts)
        if claimed:
            quota_charge(organization=organization, reserved=media.reserved_bytes, size=facts["bytes"])
            emit(signals.media_created, media_id=media.pk, organization_id=organization.pk)
    media.refresh_from_db()
    if not claimed and media.status != MediaFile.Status.ACTIVE:
        raise Conflict("The upload is no longer pending.", code="upload_not_pending")
    return media


def _lock_live(media_id: str) -> bool:
    """Lock an original and tell whether it is still active. The purge job locks the same row
    before removing an object, so an alias is never made to point at a purged object."""
    return MediaFile.objects.select_for_update().filter(pk=media_id, status=MediaFile.Status.ACTIVE).exists()


def _abandon(store: MediaStore, media: MediaFile, *, delete_object: bool = True) -> None:
    """Undo a pending file: its object, its row, its reservation. Safe to call twice."""
    if delete_object:
        try:
            store.delete(media.storage_key)
        except ServiceError:
            logger.warning("could not delete abandoned object %s; the cleanup job will", media.storage_key)
            return  # keep the pending row so expire_uploads retries the object
    with transaction.atomic():
        removed, _ = MediaFile.objects.filter(pk=media.pk, status=MediaFile.Status.PENDING).delete()
        if removed:
            quota_release_reservation(organization=media.organization, reserved=media.reserved_bytes)


def _find_duplicate(*, organization: Organization, owner, sha256: str, exclude: str) -> MediaFile | None:  # noqa: ANN001
    """The owner's own live file of this content (an original before an alias), or, with organization
    scope, another member's original: that one is only ever aliased, never answered (see
    `_activate_deduplicated`)."""
    scope = settings.MEDIA_DEDUP_SCOPE
    if scope == "off":
        return None
    live = (MediaFile.objects.filter(organization=organization, sha256=sha256, status=MediaFile.Status.ACTIVE)
            .exclude(pk=exclude).select_related("duplicate_of"))
    originals_first = Case(When(duplicate_of__isnull=True, then=Value(0)), default=Value(1))
    own = live.filter(owner=owner).order_by(originals_first, "created_at").first()
    if own is not None or scope == "owner":
        return own
    return live.filter(duplicate_of__isnull=True).order_by("created_at").first()


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
    _check_plan_category(organization, category)
    limit = check_declared_size(organization=organization, category=category, declared=declared_size)
    reserved = declared_size if declared_size is not None else limit
    ext = (mimetypes.guess_extension(content_type) or "").lstrip(".") or None
    media = _pending_create(organization=organization, owner=owner, options=options, category=category,
                            ext={"jpe": "jpg", "jpeg": "jpg"}.get(ext, ext), reserved=reserved)
    upload = get_store().signed_upload(upload_staging_key(organization.pk, media.pk), content_type=content_type,
                                       max_bytes=reserved, ttl=settings.MEDIA_UPLOAD_TTL)
    return PreparedUpload(media=media, upload=upload)


@emits_quota_exceeded
def media_upload_complete(*, media: MediaFile) -> MediaFile:
    """Check, measure and activate an uploaded object; idempotent."""
    if media.status == MediaFile.Status.ACTIVE:
        return media
    if media.status != MediaFile.Status.PENDING:
        raise Conflict("This upload was cancelled or deleted.", code="upload_not_pending")
    store = get_store()
    if not _take_staged(store, media) and not store.exists(media.storage_key):
        raise UploadIncomplete()
    return _complete(store, media)


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
        sha256, head = _hash_object(store, media.storage_key, encrypted=encrypted, size=size)
        sniffed = sniff(head[:SNIFF_BYTES])
        category_check(get_category(media.category), sniffed)
        if declared_contradicts(media.declared_mime, sniffed):
            raise UnsupportedMediaType(f"The content is {sniffed.mime}, not {media.declared_mime}.",
                                       code="content_type_mismatch", param="file")
        width, height = _dimensions(head, sniffed, size)
    except ServiceError:
        _abandon(store, media)
        raise
    encryption, key_id = _encryption_of(store, media.storage_key, encrypted)
    facts = _facts(size, sha256, sniffed, width, height, encryption, key_id)
    duplicate = _find_duplicate(organization=media.organization, owner=media.owner, sha256=sha256, exclude=media.pk)
    try:
        activated = _activate(media, organization=media.organization, facts=facts, duplicate_of=duplicate)
    except QuotaExceeded:
        _abandon(store, media)
        raise
    if activated.duplicate_of_id is not None:
        store.delete(media.storage_key)  # the alias reads the original's object
    return activated


def _hash_object(store: MediaStore, key: str, *, encrypted: bool, size: int) -> tuple[str, bytes]:
    digest, head = hashlib.sha256(), b""
    for chunk in store.open_range(key, encrypted=encrypted, plain_size=size):
        digest.update(chunk)
        if len(head) < KEEP_HEAD:
            head += chunk[:KEEP_HEAD - len(head)]
    return digest.hexdigest(), head


def _encryption_of(store: MediaStore, key: str, encrypted: bool) -> tuple[str, str]:
    if encrypted:
        header = b"".join(store.open_range(key, 0, crypto.HEADER_SIZE - 1, encrypted=False))
        return MediaFile.Encryption.APP, crypto.read_header_key_id(header)
    return (MediaFile.Encryption.SSE if store.encryption == "sse" else MediaFile.Encryption.NONE), ""


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
        if media.duplicate_of_id and not _lock_live(media.duplicate_of_id):
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
