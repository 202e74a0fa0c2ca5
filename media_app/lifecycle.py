"""The lifecycle jobs: what keeps storage, rows and quotas in step over time.

Each job is one keyword-only function, called by its Celery task (`media_app.tasks`, on the
beat schedule in `config/settings.py`) and by its `manage.py` command alike:

    expire_media        active files past `retain_until` become `deleted` (quota released)
    purge_media         `deleted` files past MEDIA_PURGE_GRACE lose their object, then become `purged`;
                        the image variants of content no file holds any more go with it
    cleanup_sources     ingested `compute/` sources are deleted after their delay, with backoff
    expire_uploads      `pending` files past their upload window: reservation released, object deleted;
                        staged upload bytes whose upload is over are deleted
    recalculate_quotas  every organization's counters recounted from rows; drift reported and fixed
    reconcile_storage   objects under `organizations/` with no row, active rows with no object, and
                        leftovers of writes that never finished (temp files, multipart uploads)

Invariant after a run of all of them (nothing failing): the objects under `organizations/` are
exactly the objects live rows use, namely `object_key` of every active row (an alias reads its
original's object), plus the object of every pending row whose bytes have arrived (under its
staging key, `organizations/{org}/uploads/{media_id}`); and every organization's quota equals
`media_quota_totals`. A presigned S3 upload URL cannot be revoked: used again after its upload is
over it writes under a dead upload's staging key, and the next expire_uploads deletes that.

How work is claimed, so two workers (or a worker and an operator) never do the same piece twice:
a short transaction locks a batch with `select_for_update(skip_locked=True)` (PostgreSQL; on
SQLite the IMMEDIATE transaction serializes writers) and moves each row out of the state the
job looks for with a conditional UPDATE. Storage I/O happens only after that commit, never
inside a transaction. A row whose storage call fails is put back with the error recorded, and
the run goes on with the next one; keyset pagination (`pk > last`) makes each run see a row once.

Purge and dedup aliases: an alias (`duplicate_of`) reads its original's object, so an original
is purged only when no live row (active or pending) names it as `duplicate_of`. That check runs
in the statement that locks the row, inside the transaction that flips it to `purged`. A new
alias can only be made to an ACTIVE original (`services._find_duplicate`), so a deleted original
never gains one; see the report on `services._activate` for the remaining window.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from itertools import groupby, islice
from typing import ClassVar

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.dispatch import Signal
from django.utils import timezone

from accounts.models import Organization
from config import metrics
from media_app import signals
from media_app.derivatives import media_variants_purge, variant_keys_kept
from media_app.models import MediaFile, SourceCleanup
from media_app.signals import emit
from media_app.resumable import expired_uploads, live_multipart_ids, upload_expire
from media_app.services import media_quota_recalculate
from quotas.services import quota_limit, quota_release, quota_release_reservation
from storage_app.backends import MediaStore, ObjectInfo, get_store
from storage_app.keys import (
    COMPUTE_PREFIX, ORGANIZATIONS_PREFIX, UPLOADS_SEGMENT, is_variant_key, organization_prefix, parse_staging_key,
    upload_staging_key,
    validate_key,
)

logger = logging.getLogger("mediastore.lifecycle")

BATCH_SIZE = 200
REPORT_LIMIT = 1000  # keys and ids kept in a result (and in JobRun.last_result); counts are exact
CLEANUP_LEASE = 600  # seconds a claimed source cleanup is hidden from other workers
CLEANUP_BACKOFF_BASE = 60  # seconds after the first failure, doubling with each attempt
CLEANUP_BACKOFF_MAX = 24 * 3600
ERROR_LENGTH = 1000

Progress = Callable[[int], object] | None
Status = MediaFile.Status
LIVE = (Status.ACTIVE, Status.PENDING)


# -- results ------------------------------------------------------------------------------
@dataclass
class JobResult:
    """What a run did (or, with `dry_run`, would do): printed by commands, recorded by tasks."""

    job: ClassVar[str] = ""
    dry_run: bool = False
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"job": self.job, **asdict(self)}

    def details(self) -> list[str]:
        return list(self.errors)

    def summary(self) -> str:
        return f"{self.job}{' (dry run)' if self.dry_run else ''}: {self.describe()}."

    def describe(self) -> str:
        raise NotImplementedError

    def verb(self, done: str, would: str) -> str:
        return would if self.dry_run else done

    def error(self, what: str, exc: BaseException) -> None:
        self.failed += 1
        if len(self.errors) < REPORT_LIMIT:
            self.errors.append(f"{what}: {_message(exc)}")

    def _failures(self) -> str:
        return f", {self.failed} failed" if self.failed else ""


@dataclass
class ExpireMediaResult(JobResult):
    job: ClassVar[str] = "expire_media"
    expired: int = 0
    bytes_released: int = 0
    organizations: int = 0

    def describe(self) -> str:
        return (f"{self.verb('expired', 'would expire')} {_count(self.expired, 'file')} "
                f"({_size(self.bytes_released)}) in {_count(self.organizations, 'organization')}{self._failures()}")


@dataclass
class PurgeResult(JobResult):
    job: ClassVar[str] = "purge_media"
    purged: int = 0
    kept_shared: int = 0  # deleted, but a live alias still reads the object
    keys: list[str] = field(default_factory=list)

    def details(self) -> list[str]:
        return [f"would purge {key}" for key in self.keys if self.dry_run] + self.errors

    def describe(self) -> str:
        return (f"{self.verb('purged', 'would purge')} {_count(self.purged, 'file')}, "
                f"kept {self.kept_shared} still used by a live alias{self._failures()}")


@dataclass
class CleanupResult(JobResult):
    job: ClassVar[str] = "cleanup_sources"
    deleted: int = 0
    keys: list[str] = field(default_factory=list)

    def details(self) -> list[str]:
        return [f"would delete {key}" for key in self.keys if self.dry_run] + self.errors

    def describe(self) -> str:
        return f"{self.verb('deleted', 'would delete')} {_count(self.deleted, 'ingested source')}{self._failures()}"


@dataclass
class ExpireUploadsResult(JobResult):
    job: ClassVar[str] = "expire_uploads"
    expired: int = 0
    reserved_released: int = 0
    staged_deleted: int = 0  # bytes under a staging key whose upload is over
    tus_expired: int = 0  # resumable uploads ended (their storage write aborted)
    multipart_aborted: int = 0  # direct S3 multipart uploads aborted

    def describe(self) -> str:
        staged = (f", {self.verb('deleted', 'would delete')} {_count(self.staged_deleted, 'stale staged upload')}"
                  if self.staged_deleted else "")
        tus = f", {self.verb('ended', 'would end')} {_count(self.tus_expired, 'resumable upload')}" if self.tus_expired else ""
        return (f"{self.verb('expired', 'would expire')} {_count(self.expired, 'abandoned upload')} "
                f"({_size(self.reserved_released)} of reservations){tus}{staged}{self._failures()}")


@dataclass
class QuotaResult(JobResult):
    job: ClassVar[str] = "recalculate_quotas"
    checked: int = 0
    drifts: list[dict] = field(default_factory=list)
    changed: int = 0

    def details(self) -> list[str]:
        return [_drift_line(drift) for drift in self.drifts] + self.errors

    def describe(self) -> str:
        return (f"checked {_count(self.checked, 'organization')}, {self.changed} "
                f"{self.verb('corrected', 'would be corrected')}{self._failures()}")


@dataclass
class ReconcileResult(JobResult):
    job: ClassVar[str] = "reconcile_storage"
    fix: bool = False
    objects: int = 0
    stray: int = 0
    stray_deleted: int = 0
    stray_keys: list[str] = field(default_factory=list)
    missing: int = 0
    marked: int = 0
    missing_ids: list[str] = field(default_factory=list)
    recovered: int = 0  # rows marked missing earlier whose object is back
    partial: int = 0  # leftovers of unfinished writes (temp files, multipart uploads), removed unless dry run
    partial_items: list[str] = field(default_factory=list)

    def details(self) -> list[str]:
        return ([f"stray object {key}" for key in self.stray_keys]
                + [f"missing object of {media_id}" for media_id in self.missing_ids]
                + [f"{self.verb('removed', 'would remove')} partial upload {item}" for item in self.partial_items]
                + self.errors)

    def describe(self) -> str:
        stray = _count(self.stray, "stray object")
        if self.fix:
            stray += f" ({self.verb(f'{self.stray_deleted} deleted', f'would delete {self.stray}')})"
        missing = f"{_count(self.missing, 'row')} missing their object"
        missing += f" ({self.verb(f'{self.marked} newly marked', f'would mark {self.missing}')})"
        partial = f"; {self.verb('removed', 'would remove')} {_count(self.partial, 'partial upload')}" if self.partial else ""
        return f"checked {_count(self.objects, 'object')}: {stray}; {missing}{partial}{self._failures()}"

    def add_stray(self, key: str) -> None:
        self.stray += 1
        if len(self.stray_keys) < REPORT_LIMIT:
            self.stray_keys.append(key)

    def add_missing(self, media_id: str) -> None:
        self.missing += 1
        if len(self.missing_ids) < REPORT_LIMIT:
            self.missing_ids.append(media_id)


# -- 1. retention -------------------------------------------------------------------------
def expire_media(*, dry_run: bool = False, organization: Organization | None = None, batch_size: int = BATCH_SIZE,
                 now: datetime | None = None, progress: Progress = None) -> ExpireMediaResult:
    """Active files whose `retain_until` has passed become `deleted`; their quota is released.

    A file kept forever (`retain_until` null) never expires.
    """
    now = now or timezone.now()
    due = _scoped(MediaFile.objects.filter(status=Status.ACTIVE, retain_until__lte=now), organization)
    result = ExpireMediaResult(dry_run=dry_run)
    if dry_run:
        totals = due.aggregate(n=Count("pk"), size=Coalesce(Sum("bytes"), 0),
                               orgs=Count("organization", distinct=True))
        result.expired, result.bytes_released, result.organizations = totals["n"], totals["size"], totals["orgs"]
        return result
    organizations: set[int] = set()
    for batch in _batches(due, batch_size):
        with transaction.atomic():
            expired = [row for row in _lock(due, batch) if _expire_one(row, now)]
            _release_used(expired)
            _tell(signals.media_deleted, expired, reason="expired")
        result.expired += len(expired)
        result.bytes_released += sum(row.bytes for row in expired)
        organizations.update(row.organization_id for row in expired)
        _tick(progress, len(batch))
    result.organizations = len(organizations)
    return result


def _expire_one(row: MediaFile, now: datetime) -> bool:
    return bool(MediaFile.objects.filter(pk=row.pk, status=Status.ACTIVE).update(
        status=Status.DELETED, deleted_at=now))


def _release_used(rows: list[MediaFile]) -> None:
    """One quota update per organization for rows that just stopped being active."""
    for org_id, group in _by_organization(rows):
        quota_release(organization=Organization(pk=org_id), size=sum(row.bytes for row in group), files=len(group))


# -- 2. purge -----------------------------------------------------------------------------
def purge_media(*, dry_run: bool = False, organization: Organization | None = None, batch_size: int = BATCH_SIZE,
                grace: float | None = None, now: datetime | None = None, progress: Progress = None,
                media_ids: list[str] | None = None) -> PurgeResult:
    """Deleted files older than `grace` (MEDIA_PURGE_GRACE) lose their object and become `purged`.

    `media_ids` limits the run to those files (the admin's "purge now").

    An original that a live alias still reads is kept, and purged once its last live alias is
    gone. A failed storage delete puts the row back to `deleted` with `storage_error` set; the
    next run retries it.
    """
    now = now or timezone.now()
    grace = settings.MEDIA_PURGE_GRACE if grace is None else grace
    deleted = _scoped(MediaFile.objects.filter(status=Status.DELETED), organization).filter(
        Q(deleted_at__lte=now - timedelta(seconds=grace)) | Q(deleted_at__isnull=True))
    if media_ids is not None:
        deleted = deleted.filter(pk__in=media_ids)
    shared = Exists(MediaFile.objects.filter(duplicate_of=OuterRef("pk"), status__in=LIVE))
    due = deleted.exclude(shared)
    result = PurgeResult(dry_run=dry_run, kept_shared=deleted.filter(shared).count())
    if dry_run:
        result.purged = due.count()
        result.keys = list(due.order_by("pk").values_list("storage_key", flat=True)[:REPORT_LIMIT])
        return result
    store = get_store()
    for batch in _batches(due, batch_size):
        with transaction.atomic():  # the live-alias check is part of the locking statement
            claimed = [row for row in _lock(due, batch) if _claim_purge(row, now)]
        for row in claimed:
            if row.multipart_upload_id:
                _abort_multipart(store, row, result)
            error = _delete_own_object(store, row)
            if error is not None:
                result.error(row.pk, error)
                continue
            result.purged += 1
            _purge_variants(store, row, result)
            _tell(signals.media_purged, [row])
            if len(result.keys) < REPORT_LIMIT:
                result.keys.append(row.storage_key)
        _tick(progress, len(batch))
    return result


def _claim_purge(row: MediaFile, now: datetime) -> bool:
    return bool(MediaFile.objects.filter(pk=row.pk, status=Status.DELETED).update(
        status=Status.PURGED, purged_at=now, attempts=F("attempts") + 1))


def _delete_own_object(store: MediaStore, row: MediaFile) -> Exception | None:
    """Delete a row's own object, the row already claimed as `purged`; on failure put it back to
    `deleted` with the error, for the next run. A crash in between leaves a purged row whose
    object is still there: reconcile_storage finds that object as stray.

    Only `storage_key` is deleted, never `object_key`: an alias's own object went at its
    completion, and the object it reads belongs to its original's row.
    """
    try:
        if not row.storage_key.startswith(ORGANIZATIONS_PREFIX):  # never a compute/ source or anything else
            raise ValueError(f"not under {ORGANIZATIONS_PREFIX}")
        store.delete(validate_key(row.storage_key))
    except Exception as exc:  # noqa: BLE001 - one bad row must not stop the batch
        logger.warning("purge of %s (%s) failed: %s", row.pk, row.storage_key, exc)
        MediaFile.objects.filter(pk=row.pk, status=Status.PURGED).update(
            status=Status.DELETED, purged_at=None, storage_error=_message(exc)[:ERROR_LENGTH])
        return exc
    if row.storage_error:
        MediaFile.objects.filter(pk=row.pk).update(storage_error="")
    return None


def _purge_variants(store: MediaStore, row: MediaFile, result: PurgeResult) -> None:
    """The variants go with the last file of their content; a failure is reported, and
    reconcile_storage finds any object left behind."""
    try:
        media_variants_purge(organization_id=row.organization_id, sha256=row.sha256, store=store)
    except Exception as exc:  # noqa: BLE001 - the file itself is purged
        result.error(f"{row.pk} variants", exc)


# -- 3. deferred source cleanup -----------------------------------------------------------
def cleanup_sources(*, dry_run: bool = False, batch_size: int = BATCH_SIZE, now: datetime | None = None,
                    progress: Progress = None) -> CleanupResult:
    """Delete ingested `compute/` sources whose `delete_after` has passed.

    A claimed row is hidden for CLEANUP_LEASE (its `delete_after` moves forward), so a second
    worker skips it and a crashed worker's rows come back later. A failure counts an attempt,
    records `last_error` and waits CLEANUP_BACKOFF_BASE * 2^(attempts-1), at most a day.
    """
    now = now or timezone.now()
    due = SourceCleanup.objects.filter(done_at__isnull=True, delete_after__lte=now)
    result = CleanupResult(dry_run=dry_run)
    if dry_run:
        result.deleted = due.count()
        result.keys = list(due.order_by("pk").values_list("storage_key", flat=True)[:REPORT_LIMIT])
        return result
    store = get_store()
    for batch in _batches(due, batch_size):
        with transaction.atomic():
            claimed = [row for row in _lock(due, batch) if _claim_cleanup(row, now)]
        for row in claimed:
            _cleanup_one(store, row, result)
        _tick(progress, len(batch))
    return result


def _claim_cleanup(row: SourceCleanup, now: datetime) -> bool:
    return bool(SourceCleanup.objects.filter(pk=row.pk, done_at__isnull=True, delete_after__lte=now).update(
        delete_after=now + timedelta(seconds=CLEANUP_LEASE)))


def _rewritten_since(store: MediaStore, row: SourceCleanup) -> bool:
    """Whether the compute server wrote the path again after it was ingested: then the object
    is new content, not the adopted source, and must stay. (Clock skew errs on keeping it.)"""
    for info in store.list(row.storage_key):
        if info.key == row.storage_key:
            return info.modified is not None and info.modified > row.created_at
    return False


def _cleanup_one(store: MediaStore, row: SourceCleanup, result: CleanupResult) -> None:
    try:
        if not row.storage_key.startswith(COMPUTE_PREFIX):  # never a user file, whatever the row says
            raise ValueError(f"not under {COMPUTE_PREFIX}")
        if _rewritten_since(store, row):
            SourceCleanup.objects.filter(pk=row.pk).update(
                done_at=timezone.now(), last_error="kept: the path was written again after the ingest")
            return
        store.delete(validate_key(row.storage_key))
    except Exception as exc:  # noqa: BLE001 - one bad row must not stop the batch
        attempts = row.attempts + 1
        delay = min(CLEANUP_BACKOFF_BASE * 2 ** (attempts - 1), CLEANUP_BACKOFF_MAX)
        SourceCleanup.objects.filter(pk=row.pk).update(
            attempts=attempts, last_error=_message(exc)[:ERROR_LENGTH],
            delete_after=timezone.now() + timedelta(seconds=delay))
        result.error(row.storage_key, exc)
        return
    SourceCleanup.objects.filter(pk=row.pk).update(done_at=timezone.now(), last_error="")
    result.deleted += 1
    if len(result.keys) < REPORT_LIMIT:
        result.keys.append(row.storage_key)


# -- 4. abandoned uploads -----------------------------------------------------------------
def expire_uploads(*, dry_run: bool = False, organization: Organization | None = None,
                   batch_size: int = BATCH_SIZE, now: datetime | None = None,
                   progress: Progress = None) -> ExpireUploadsResult:
    """Pending files past their upload window: reservation released, any partial object deleted.

    The claim (pending -> purged, reservation released) commits first, so a late completion
    loses the race cleanly (`_activate` only activates a pending row) and never activates a row
    whose object is being deleted. A failed delete leaves the row `deleted` for the purge job.
    Then every staged object whose upload is no longer pending goes (`_sweep_staged`).
    """
    now = now or timezone.now()
    result = ExpireUploadsResult(dry_run=dry_run)
    _expire_resumable(now, organization, result)  # first: their pending files are released with them
    due = _scoped(MediaFile.objects.filter(status=Status.PENDING, upload_expires_at__lte=now), organization)
    if dry_run:
        totals = due.aggregate(n=Count("pk"), reserved=Coalesce(Sum("reserved_bytes"), 0))
        result.expired, result.reserved_released = totals["n"], totals["reserved"]
        _sweep_staged(get_store(), organization, result)
        return result
    store = get_store()
    for batch in _batches(due, batch_size):
        with transaction.atomic():
            claimed = [row for row in _lock(due, batch) if _claim_upload(row, now)]
            _tell(signals.upload_expired, claimed)
            for org_id, group in _by_organization(claimed):
                quota_release_reservation(organization=Organization(pk=org_id),
                                          reserved=sum(row.reserved_bytes for row in group))
        result.expired += len(claimed)
        result.reserved_released += sum(row.reserved_bytes for row in claimed)
        for row in claimed:
            if row.multipart_upload_id:
                _abort_multipart(store, row, result)
            error = _delete_own_object(store, row)
            if error is not None:
                result.error(row.pk, error)
        _tick(progress, len(batch))
    _sweep_staged(store, organization, result)
    return result


def _expire_resumable(now: datetime, organization: Organization | None, result: ExpireUploadsResult) -> None:
    """tus uploads past their expiry: storage write aborted (S3: AbortMultipartUpload, tail deleted;
    local: partial file deleted), pending file and reservation released; the row stays (410)."""
    for upload in expired_uploads(now=now, organization=organization).select_related("media").iterator():
        reserved = upload.media.reserved_bytes if upload.media is not None else 0
        try:
            if not result.dry_run and not upload_expire(upload=upload):
                continue
        except Exception as exc:  # noqa: BLE001 - one upload must not stop the run
            result.error(upload.pk, exc)
            continue
        result.tus_expired += 1
        result.reserved_released += reserved


def _abort_multipart(store: MediaStore, row: MediaFile, result: ExpireUploadsResult) -> None:
    try:
        store.abort_multipart(upload_staging_key(row.organization_id, row.pk), upload_id=row.multipart_upload_id)
    except Exception as exc:  # noqa: BLE001
        result.error(row.pk, exc)
        return
    result.multipart_aborted += 1


def _sweep_staged(store: MediaStore, organization: Organization | None, result: ExpireUploadsResult) -> None:
    """Delete staged bytes whose upload is over (completed, deleted, expired, made an alias).

    Only a pending row keeps its staging object, and a row exists before its upload URL does,
    so no grace period is needed. Each organization's staging folder is listed on its own.
    """
    organizations = Organization.objects.order_by("pk").values_list("pk", flat=True)
    if organization is not None:
        organizations = organizations.filter(pk=organization.pk)
    for org_id in organizations.iterator():
        prefix = f"{organization_prefix(org_id)}{UPLOADS_SEGMENT}/"
        try:
            for chunk in _chunks((info.key for info in store.list(prefix)), BATCH_SIZE):
                for key in _stale_staged(chunk):
                    _delete_staged(store, key, result)
        except Exception as exc:  # noqa: BLE001 - one organization's listing must not stop the run
            result.error(prefix, exc)


def _stale_staged(keys: list[str]) -> list[str]:
    """The staging keys among `keys` whose row is not pending (or that name no row at all)."""
    ids = {key: parsed[1] for key in keys if (parsed := parse_staging_key(key)) is not None}
    pending = set(MediaFile.objects.filter(pk__in=ids.values(), status=Status.PENDING).values_list("pk", flat=True))
    return [key for key in keys if ids.get(key) not in pending]


def _delete_staged(store: MediaStore, key: str, result: ExpireUploadsResult) -> None:
    if not result.dry_run:
        try:
            store.delete(key)
        except Exception as exc:  # noqa: BLE001
            result.error(key, exc)
            return
    result.staged_deleted += 1


def _claim_upload(row: MediaFile, now: datetime) -> bool:
    return bool(MediaFile.objects.filter(pk=row.pk, status=Status.PENDING).update(
        status=Status.PURGED, reserved_bytes=0, deleted_at=now, purged_at=now, attempts=F("attempts") + 1))


# -- 5. quota recalculation ---------------------------------------------------------------
def recalculate_quotas(*, dry_run: bool = False, organization: Organization | None = None,
                       batch_size: int = BATCH_SIZE, progress: Progress = None) -> QuotaResult:
    """Recount bytes, reservations and files of each organization from its rows; fix and report drift."""
    result = QuotaResult(dry_run=dry_run)
    organizations = Organization.objects.order_by("pk")
    if organization is not None:
        organizations = organizations.filter(pk=organization.pk)
    for org in organizations.iterator(chunk_size=batch_size):
        try:
            drift = media_quota_recalculate(organization=org, dry_run=dry_run)
        except Exception as exc:  # noqa: BLE001 - one bad organization must not stop the run
            result.error(org.slug, exc)
            continue
        result.checked += 1
        _export_quota(org, drift.after)
        if drift.changed:
            result.changed += 1
            if len(result.drifts) < REPORT_LIMIT:
                result.drifts.append({"organization": org.slug, "organization_id": org.pk,
                                      "before": drift.before, "after": drift.after})
        _tick(progress, 1)
    return result


def _export_quota(org: Organization, counts: dict[str, int]) -> None:
    """The per-organization quota gauges: the recount is what the organization stores now."""
    metrics.QUOTA_USED_BYTES.labels(organization=org.slug).set(counts["used_bytes"])
    metrics.QUOTA_FILES.labels(organization=org.slug).set(counts["file_count"])
    metrics.QUOTA_LIMIT_BYTES.labels(organization=org.slug).set(quota_limit(organization=org))


def _drift_line(drift: dict) -> str:
    changes = ", ".join(f"{name} {drift['before'][name]} -> {value}"
                        for name, value in drift["after"].items() if drift["before"][name] != value)
    return f"{drift['organization']}: {changes}"


# -- 6. reconciliation --------------------------------------------------------------------
def reconcile_storage(*, dry_run: bool = False, fix: bool = False, organization: Organization | None = None,
                      grace: float | None = None, batch_size: int = BATCH_SIZE,
                      progress: Progress = None) -> ReconcileResult:
    """Compare the bucket under `organizations/` with the rows.

    Stray: an object older than `grace` (MEDIA_RECONCILE_GRACE) that no row keeps, that is no
    pending, active or deleted (not yet purged) row's own `storage_key` (an alias's own key is
    not kept: its object went at completion); and, whatever its age, a staged upload whose row
    is not pending (its row was made before its URL). Reported; deleted with `fix`. An image
    variant (`organizations/{org}/variants/...`) is kept by its `MediaVariant` row.
    Missing: an active row whose `object_key` is absent (checked again before marking).
    Reported and marked with `object_missing_at`; a marked row whose object is back is cleared.
    Partial: what a write that never finished left (a crashed worker's temp file, an S3
    multipart upload never completed), older than `grace`. Never a live object, so removed
    without `fix` (not in a dry run).
    """
    grace = settings.MEDIA_RECONCILE_GRACE if grace is None else grace
    cutoff = timezone.now() - timedelta(seconds=grace)
    prefix = organization_prefix(organization.pk) if organization is not None else ORGANIZATIONS_PREFIX
    store = get_store()
    result = ReconcileResult(dry_run=dry_run, fix=fix)
    _sweep_partial(store, prefix, cutoff, result)
    seen: set[int] = set()
    # Keys come sorted, so one organization's objects are contiguous (its prefix ends with "/").
    for org_id, infos in groupby(store.list(prefix), key=lambda info: _organization_of(info.key)):
        present: set[str] = set()
        for chunk in _chunks(infos, batch_size):
            present.update(info.key for info in chunk)
            _reconcile_objects(store, chunk, cutoff=cutoff, result=result)
            _tick(progress, len(chunk))
        if org_id is not None:
            seen.add(org_id)
            _reconcile_rows(store, org_id, present, result=result, batch_size=batch_size)
    organizations = Organization.objects.order_by("pk")
    if organization is not None:
        organizations = organizations.filter(pk=organization.pk)
    for org_id in organizations.values_list("pk", flat=True).iterator():
        if org_id not in seen:  # no object at all: every active row's object is missing
            _reconcile_rows(store, org_id, set(), result=result, batch_size=batch_size)
    return result


def _sweep_partial(store: MediaStore, prefix: str, cutoff: datetime, result: ReconcileResult) -> None:
    try:
        removed = store.sweep_partial(prefix=prefix, older_than=cutoff, dry_run=result.dry_run,
                                      keep=live_multipart_ids())
    except Exception as exc:  # noqa: BLE001 - the rest of the reconciliation still runs
        result.error("partial uploads", exc)
        return
    result.partial = len(removed)
    result.partial_items = removed[:REPORT_LIMIT]


def _organization_of(key: str) -> int | None:
    segment = key[len(ORGANIZATIONS_PREFIX):].split("/", 1)[0]
    return int(segment) if segment.isdigit() else None


def _reconcile_objects(store: MediaStore, infos: list[ObjectInfo], *, cutoff: datetime,
                       result: ReconcileResult) -> None:
    result.objects += len(infos)
    kept = set(MediaFile.objects.filter(
        storage_key__in=[info.key for info in infos], duplicate_of__isnull=True,
        status__in=(Status.PENDING, Status.ACTIVE, Status.DELETED)).values_list("storage_key", flat=True))
    kept.update(variant_keys_kept([info.key for info in infos if is_variant_key(info.key)]))
    staged = [info.key for info in infos if parse_staging_key(info.key) is not None]
    stale = set(_stale_staged(staged))
    kept.update(key for key in staged if key not in stale)
    for info in infos:
        young = info.modified is not None and info.modified > cutoff and info.key not in stale
        if info.key in kept or young:
            continue  # a young object may belong to an upload whose row is being written
        result.add_stray(info.key)
        if result.fix and not result.dry_run:
            try:
                store.delete(info.key)
            except Exception as exc:  # noqa: BLE001
                result.error(info.key, exc)
                continue
            result.stray_deleted += 1


def _reconcile_rows(store: MediaStore, org_id: int, present: set[str], *, result: ReconcileResult,
                    batch_size: int) -> None:
    rows = (MediaFile.objects.filter(organization_id=org_id, status=Status.ACTIVE)
            .annotate(original_key=F("duplicate_of__storage_key"))
            .values_list("pk", "storage_key", "original_key", "object_missing_at"))
    now = timezone.now()
    for media_id, own_key, original_key, missing_at in rows.iterator(chunk_size=batch_size):
        key = original_key or own_key
        if key in present or _exists(store, key, result, media_id):
            if missing_at is not None and not result.dry_run:
                result.recovered += MediaFile.objects.filter(pk=media_id).update(object_missing_at=None)
            continue
        result.add_missing(media_id)
        if not result.dry_run:
            result.marked += MediaFile.objects.filter(
                pk=media_id, status=Status.ACTIVE, object_missing_at__isnull=True).update(object_missing_at=now)


def _exists(store: MediaStore, key: str, result: ReconcileResult, media_id: str) -> bool:
    """Asked again: the listing is older than the row query. An error counts as present."""
    try:
        return store.exists(key)
    except Exception as exc:  # noqa: BLE001
        result.error(media_id, exc)
        return True


# -- helpers ------------------------------------------------------------------------------
def _scoped(rows: QuerySet, organization: Organization | None) -> QuerySet:
    return rows if organization is None else rows.filter(organization=organization)


def _batches(rows: QuerySet, size: int) -> Iterator[list]:
    """Primary keys of `rows` in batches, by keyset (`pk > last`), so a run sees each row once."""
    last = None
    while True:
        page = rows.order_by("pk")
        if last is not None:
            page = page.filter(pk__gt=last)
        batch = list(page.values_list("pk", flat=True)[:size])
        if not batch:
            return
        yield batch
        last = batch[-1]


def _lock(rows: QuerySet, batch: list) -> list:
    """The rows of `batch` still matching `rows`, locked; rows another worker holds are skipped."""
    return list(rows.filter(pk__in=batch).order_by("pk").select_for_update(skip_locked=True))


def _tell(signal: Signal, rows: list[MediaFile], **fields: str) -> None:
    """The rows' domain event, sent once the claim commits (media_app/signals.py)."""
    for row in rows:
        emit(signal, media_id=row.pk, organization_id=row.organization_id, **fields)


def _by_organization(rows: list[MediaFile]) -> Iterable[tuple[int, list[MediaFile]]]:
    groups: dict[int, list[MediaFile]] = defaultdict(list)
    for row in rows:
        groups[row.organization_id].append(row)
    return groups.items()


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _tick(progress: Progress, n: int) -> None:
    if progress is not None and n:
        progress(n)


def _message(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"
