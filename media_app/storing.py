"""The steps every way in shares: limits, the pending row and its reservation, dedup, activation, undo.

`services.py` (direct and presigned uploads) and `ingest.py` (adopting stored objects) are built
from these. The order they keep is what keeps storage, rows and quota in step:
1. a `pending` row and its quota reservation commit together, before any byte is written
   (`pending_create`); a one-request upload of a small known size reserves nothing
   (`services.UNRESERVED_MAX_BYTES`) and is checked by the charge alone;
2. bytes go to storage outside any transaction;
3. activation (status, size, hash) and the quota charge commit together (`activate`).
A failure at 2 or 3 undoes the object, the pending row and the reservation (`abandon`).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, QuerySet, Value, When
from django.utils import timezone

from accounts.models import Organization
from config.errors import (
    Conflict, InvalidRequest, QuotaExceeded, ServiceError, TooLarge,
)
from config.prebuilt import Prebuilt
from media_app.ids import media_id_new
from media_app.imaging import image_dimensions
from media_app import signals
from media_app.models import MediaFile
from media_app.signals import emit, emits_quota_exceeded
from quotas.services import (
    quota_available, quota_charge, quota_release_reservation,
    quota_reserve,
)
from storage_app import crypto
from storage_app.backends import KEEP_HEAD, MediaStore
from storage_app.categories import Category, effective_max_bytes
from storage_app.keys import build_user_key
from storage_app.sniff import Sniffed

logger = logging.getLogger("mediastore.media")

MIB = 1024 * 1024
MULTIPART_SLACK = 64 * 1024  # the closing boundary and late fields around a file part

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


def upload_limit(*, organization: Organization, category: Category, resumable: bool = False) -> int:
    """The per-file limit: the plan's and the category's, whichever is lower, and for one-request
    uploads also the deployment cap (MEDIA_MAX_BYTES). Resumable (tus) and direct multipart
    uploads are not capped by it: they exist for files one request should not carry."""
    plan_max = organization.plan.max_file_bytes
    if not resumable:
        plan_max = min(plan_max, settings.MEDIA_MAX_BYTES)
    return effective_max_bytes(category, plan_max)


def retention_until(*, organization: Organization, now: datetime | None = None) -> datetime | None:
    days = organization.retention_days_effective()
    return (now or timezone.now()) + timedelta(days=days)


@emits_quota_exceeded
def check_declared_size(*, organization: Organization, category: Category, declared: int | None,
                        param: str = "file", resumable: bool = False, quota: bool = True) -> int:
    """Refuse before reading a body that is already known to be too big; the limit otherwise.

    `param` names the field the size came from (`bytes` for a prepared upload); `resumable`
    uploads (tus, direct multipart) have the plan's limit, not the one-request cap. `quota=False`
    skips reading the quota, for a caller that has just checked it (the reservation still does).
    """
    limit = upload_limit(organization=organization, category=category, resumable=resumable)
    if declared is not None and declared > limit:
        what = f"{param}={declared}" if param != "file" else f"File size {declared}"
        raise TooLarge(f"{what} exceeds the maximum of {limit} bytes ({size_label(limit)}) for one file.",
                       param=param)
    if quota and declared is not None and declared > quota_available(organization=organization):
        raise QuotaExceeded(param=param)
    return limit


@emits_quota_exceeded
def check_body_quota(*, organization: Organization, declared: int | None) -> None:
    """A body declared larger than what the quota has left is refused unread (its file cannot fit)."""
    if declared is not None and declared > quota_available(organization=organization):
        raise QuotaExceeded(param="file")


def check_file_part(*, organization: Organization, category: Category, name: str, bound: int | None) -> None:
    """Refuse a multipart file already known to be too big before reading it, naming the file.

    `bound` is what is left of the body from the file's first byte: the file plus the closing
    boundary and any fields after it, which MULTIPART_SLACK allows for; None when the body's
    length is not declared (chunked). A file closer to the limit is measured as it is stored.
    """
    limit = upload_limit(organization=organization, category=category)
    if bound is not None and bound > limit + MULTIPART_SLACK:
        raise TooLarge(f"The file {name!r} has about {bound} bytes ({size_label(bound)}), more than the maximum "
                       f"of {limit} bytes ({size_label(limit)}) for one file.", param="file")


def size_label(size: int) -> str:
    """20971520 -> '20 MiB', for messages a person reads beside the exact byte count."""
    return f"{size / MIB:.1f}".removesuffix(".0") + " MiB"


def plan_category_check(organization: Organization, category: Category) -> None:
    allowed = organization.plan.allowed_categories
    if allowed and category.name not in allowed:
        raise InvalidRequest(f"The plan does not allow the category {category.name!r}.",
                             code="category_not_allowed", param="category")


@dataclass(frozen=True)
class LateFields:
    """What a multipart body said after its file part: the owner and options it ends with."""

    owner: object
    options: FileOptions


def pending_create(*, organization: Organization, owner, options: FileOptions, category: Category,  # noqa: ANN001
                    ext: str | None, reserved: int) -> MediaFile:
    """The pending row and its reservation, committed together before any byte is written.

    The row goes in first and the quota row is updated last: its lock, which every upload of
    the organization waits for, is then held only from that update to the commit."""
    now = timezone.now()
    key = build_user_key(org_id=organization.pk, user_id=owner.pk, original_name=options.original_name or "file",
                         ext=ext, now=now)
    with transaction.atomic():
        media = MediaFile.objects.create(
            id=media_id_new(), organization=organization, owner=owner, status=MediaFile.Status.PENDING,
            storage_key=key, original_name=(options.original_name or "")[:255], category=category.name,
            visibility=options.visibility, source=options.source, source_url=options.source_url,
            source_key=options.source_key, declared_mime=options.declared_mime or "",
            model=options.provenance.model, provider=options.provenance.provider,
            prompt=options.provenance.prompt, generation=options.provenance.generation or {},
            reserved_bytes=reserved, upload_expires_at=now + timedelta(seconds=settings.MEDIA_UPLOAD_TTL),
        )
        if reserved:  # nothing reserved (a small body, media_app.services): the quota row is not touched
            quota_reserve(organization=organization, n=reserved)
    return media


def activate_deduplicated(store: MediaStore, media: MediaFile, *, organization: Organization, owner,  # noqa: ANN001
                           facts: dict) -> StoreResult:
    """Activate `media`, or answer the owner's own earlier copy of its content.

    Another member's copy (MEDIA_DEDUP_SCOPE=organization) is never answered, as it would tell
    the uploader its id, name, prompt and URL: `media` becomes an alias of it instead, reading
    its object, a row of the uploader's own that is charged like any file.
    """
    duplicate = find_duplicate(organization=organization, owner=owner, sha256=facts["sha256"], exclude=media.pk)
    if duplicate is not None and duplicate.owner_id == owner.pk:
        abandon(store, media)
        return StoreResult(media=duplicate, deduped=True)
    activated = activate(media, organization=organization, facts=facts, duplicate_of=duplicate)
    if activated.duplicate_of_id is not None:  # the alias reads the original's object
        drop_aliased_object(store, media.storage_key)
    return StoreResult(media=activated, deduped=False)


def drop_aliased_object(store: MediaStore, key: str) -> None:
    """An alias's own copy of the bytes, no longer read; left behind, reconcile_storage finds it
    stray (an alias's own key is not kept), so a failure here must not fail the upload."""
    try:
        store.delete(key)
    except Exception:  # noqa: BLE001
        logger.warning("could not delete the object %s of a new alias; reconcile_storage will", key)


def measure_dimensions(head: bytes, sniffed: Sniffed, size: int) -> tuple[int | None, int | None]:
    dims = image_dimensions(head, sniffed.mime, complete=size <= len(head))
    return dims if dims else (None, None)


def file_facts(size: int, sha256: str, sniffed: Sniffed, width, height, encryption: str, key_id: str) -> dict:  # noqa: ANN001
    return {"bytes": size, "sha256": sha256, "mime": sniffed.mime, "media_kind": sniffed.kind,
            "width": width, "height": height, "encryption": encryption, "encryption_key_id": key_id}


def activate(media: MediaFile, *, organization: Organization, facts: dict,
              duplicate_of: MediaFile | None = None) -> MediaFile:
    """Pending -> active and the quota charge, together; only one caller can win the claim."""
    now = timezone.now()
    if duplicate_of is not None and duplicate_of.duplicate_of_id is not None:
        duplicate_of = duplicate_of.duplicate_of  # an alias's alias reads the same object: name the original
    with transaction.atomic():
        if duplicate_of is not None and not lock_live(duplicate_of.pk):
            duplicate_of = None  # the original went away meanwhile: keep this file's own object
        if duplicate_of is not None:  # the alias reads the original's object, stored as the original was
            facts = {**facts, "encryption": duplicate_of.encryption, "encryption_key_id": duplicate_of.encryption_key_id}
        changes = {"status": MediaFile.Status.ACTIVE, "completed_at": now, "reserved_bytes": 0,
                   "upload_expires_at": None, "retain_until": retention_until(organization=organization, now=now),
                   "duplicate_of": duplicate_of}
        reserved = media.reserved_bytes
        claimed = MediaFile.objects.filter(pk=media.pk, status=MediaFile.Status.PENDING).update(**changes, **facts)
        if claimed:
            quota_charge(organization=organization, reserved=reserved, size=facts["bytes"])
            emit(signals.media_created, media_id=media.pk, organization_id=organization.pk)
    if claimed:  # the row now holds exactly these values: no need to read it back (nor its owner)
        for name, value in {**changes, **facts}.items():
            setattr(media, name, value)
        return media
    media.refresh_from_db()
    if media.status != MediaFile.Status.ACTIVE:
        raise Conflict("The upload is no longer pending.", code="upload_not_pending")
    return media


def lock_live(media_id: str) -> bool:
    """Lock an original and tell whether it is still active. The purge job locks the same row
    before removing an object, so an alias is never made to point at a purged object."""
    return MediaFile.objects.select_for_update().filter(pk=media_id, status=MediaFile.Status.ACTIVE).exists()


def abandon(store: MediaStore, media: MediaFile, *, delete_object: bool = True) -> None:
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


def _live_copy(variant: str, organization_id: int, sha256: str, exclude: str,
               owner_id: int | None = None) -> QuerySet[MediaFile]:
    live = (MediaFile.objects.filter(organization_id=organization_id, sha256=sha256, status=MediaFile.Status.ACTIVE)
            .exclude(pk=exclude).select_related("duplicate_of"))
    if variant == "own":
        originals_first = Case(When(duplicate_of__isnull=True, then=Value(0)), default=Value(1))
        return live.filter(owner_id=owner_id).order_by(originals_first, "created_at")[:1]
    return live.filter(duplicate_of__isnull=True).order_by("created_at")[:1]


# Built once per database: every upload looks for a copy, and the ORM built this select for each.
_LIVE_COPY = Prebuilt(MediaFile, _live_copy)


def find_duplicate(*, organization: Organization, owner, sha256: str, exclude: str) -> MediaFile | None:  # noqa: ANN001
    """The owner's own live file of this content (an original before an alias), or, with organization
    scope, another member's original: that one is only ever aliased, never answered (see
    `activate_deduplicated`)."""
    scope = settings.MEDIA_DEDUP_SCOPE
    if scope == "off":
        return None
    own = _LIVE_COPY.first(organization.pk, sha256, exclude, owner.pk, variant="own")
    if own is not None or scope == "owner":
        return own
    return _LIVE_COPY.first(organization.pk, sha256, exclude, variant="others")


def hash_object(store: MediaStore, key: str, *, encrypted: bool, size: int) -> tuple[str, bytes]:
    digest, head = hashlib.sha256(), b""
    for chunk in store.open_range(key, encrypted=encrypted, plain_size=size):
        digest.update(chunk)
        if len(head) < KEEP_HEAD:
            head += chunk[:KEEP_HEAD - len(head)]
    return digest.hexdigest(), head


def encryption_of(store: MediaStore, key: str, encrypted: bool) -> tuple[str, str]:
    if encrypted:
        header = b"".join(store.open_range(key, 0, crypto.HEADER_SIZE - 1, encrypted=False))
        return MediaFile.Encryption.APP, crypto.read_header_key_id(header)
    return (MediaFile.Encryption.SSE if store.encryption == "sse" else MediaFile.Encryption.NONE), ""
