"""Resumable uploads (tus 1.0): a file sent over several requests, under the rules of every way in.

- Creation reserves the quota for the whole declared length and makes the pending file
  (`storing.pending_create`) and the storage's resumable write (`MediaStore.append_open`).
- Each append streams the body to storage as it arrives (memory bounded by the backend's part),
  sniffing the type from the first bytes and refusing a disallowed one at once. A body cut off
  mid-way keeps what arrived: the client asks for the offset and resumes from there. With a
  checksum the body is spooled to a temporary file first, so nothing unverified is stored.
- The append that reaches the declared length finishes the object and activates the file
  through the same steps as a one-request upload (SHA-256, dedup, encryption, provenance).
- Termination and expiry abort the storage write and abandon the pending file (reservation
  released).

Only one append runs at a time per upload: it takes a lease (`lock_token`) with a conditional
update on the expected offset, so a second PATCH, or one at a stale offset, is refused.
"""
from __future__ import annotations

import base64
import hashlib
import mimetypes
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization
from config.errors import (
    Conflict, InvalidRequest, NotFound, RequestTimeout, ServiceError, TooLarge, UnsupportedMediaType,
)
from media_app.models import MediaFile, ResumableUpload
from media_app.storing import (
    EmptyFile, FileOptions, StoreResult, abandon, activate_deduplicated, check_declared_size, file_facts,
    hash_object, measure_dimensions, pending_create, plan_category_check, upload_limit,
)
from storage_app.backends import KEEP_HEAD, MediaStore, get_store, read_head
from storage_app.backends.streams import Digest
from storage_app.categories import category_check, category_check_declared, get_category
from storage_app.sniff import SNIFF_BYTES, Sniffed, declared_contradicts, sniff

CHECKSUM_ALGORITHMS = ("sha256", "sha1", "md5")
READ_PIECE = 1024 * 1024
LEASE = timedelta(minutes=5)  # how long a PATCH may go without renewing its lease
RENEW_EVERY = 60.0  # seconds between lease renewals while a body streams in
SPOOL_IN_MEMORY = 1024 * 1024  # a checksummed body above this is spooled to a temporary file


class UploadGone(ServiceError):
    status = 410
    code = "upload_expired"
    type = "not_found_error"
    message = "The upload has expired."


class ChecksumMismatch(ServiceError):
    status = 460
    code = "checksum_mismatch"
    message = "The body does not match its Upload-Checksum; nothing of it was stored."


class UploadLocked(ServiceError):
    status = 423
    code = "upload_locked"
    type = "conflict_error"
    message = "Another request is appending to this upload; retry once it has finished."


class OffsetMismatch(Conflict):
    code = "offset_mismatch"
    message = "Upload-Offset is not the upload's current offset."


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes


def resumable_limit(*, organization: Organization, category_name: str | None = None) -> int:
    """The largest file a resumable upload may carry: the plan's and the category's limit."""
    return upload_limit(organization=organization, category=get_category(category_name), resumable=True)


# -- creation -----------------------------------------------------------------------------
def upload_create(*, organization: Organization, uploader, owner, options: FileOptions,  # noqa: ANN001
                  length: int, metadata: str) -> ResumableUpload:
    """The pending file with its whole length reserved, and the storage write it fills."""
    category = get_category(options.category)
    plan_category_check(organization, category)
    category_check_declared(category, options.declared_mime or None, param="content_type")
    if length == 0:
        raise EmptyFile(param="Upload-Length")
    check_declared_size(organization=organization, category=category, declared=length, resumable=True)
    media = pending_create(organization=organization, owner=owner, options=options, category=category,
                           ext=_extension(options), reserved=length)
    store = get_store()
    try:
        state = store.append_open(media.storage_key, content_type=options.declared_mime or "application/octet-stream",
                                  total=length)
        return ResumableUpload.objects.create(
            id=f"tus_{secrets.token_urlsafe(18)}", organization=organization, uploader=uploader, media=media,
            length=length, metadata=metadata, store_state=state, expires_at=media.upload_expires_at)
    except BaseException:
        abandon(store, media, delete_object=False)
        raise


def _extension(options: FileOptions) -> str | None:
    """The key's extension before any byte is known: from the file name, else the declared type."""
    name = options.original_name or ""
    if "." in name:
        return name.rsplit(".", 1)[1].lower()[:10] or None
    guessed = (mimetypes.guess_extension(options.declared_mime or "") or "").lstrip(".")
    return {"jpe": "jpg", "jpeg": "jpg"}.get(guessed, guessed) or None


# -- lookup -------------------------------------------------------------------------------
def upload_get(*, organization: Organization, uploader, upload_id: str) -> ResumableUpload:  # noqa: ANN001
    """The caller's own upload; anyone else's (or a terminated one) is 404, an expired one 410."""
    upload = (ResumableUpload.objects.select_related("media", "organization__plan")
              .filter(pk=upload_id, organization=organization, uploader=uploader).first())
    if upload is None:
        raise NotFound("No such upload.", code="upload_not_found")
    if upload.status == ResumableUpload.Status.EXPIRED or (
            upload.status == ResumableUpload.Status.ACTIVE and upload.expires_at <= timezone.now()):
        raise UploadGone()
    return upload


# -- appending ----------------------------------------------------------------------------
def upload_append(*, upload: ResumableUpload, offset: int, body: BinaryIO, content_length: int | None,
                  checksum: Checksum | None = None) -> ResumableUpload:
    """Append a request body at `offset`; the append that reaches the length completes the file.

    A body cut off early keeps what arrived (without a checksum): the client learns the new
    offset from HEAD. A body too slow (408) is answered as such once what arrived is recorded.
    """
    if upload.status == ResumableUpload.Status.COMPLETED or offset != upload.offset:
        raise OffsetMismatch()
    remaining = upload.length - offset
    if content_length is not None and content_length > remaining:
        raise TooLarge(f"The body has {content_length} bytes; the upload has {remaining} left.",
                       code="upload_length_exceeded", param="Upload-Length")
    token = _take_lease(upload, offset)
    try:
        if checksum is not None:
            body = _verified_body(body, checksum, remaining, content_length)
        source = _BodyPieces(body, remaining, upload, token)
        if offset == 0:
            wanted = min(SNIFF_BYTES, remaining)
            head = source.head(wanted)
            if len(head) == wanted:  # a head cut short is checked at completion, like everything
                _check_first_bytes(upload, head)
        store = get_store()
        digest = _digests.take(upload.pk, offset)
        state = store.append(upload.store_state, source.pieces(digest))
        _commit(upload, token, offset + source.received, state, digest)
    except BaseException:
        _release_lease(upload, token)
        raise
    if isinstance(source.error, ServiceError):  # too slow (408); a client that went away hears nothing
        raise source.error
    if upload.offset == upload.length:
        return upload_complete(upload=upload)
    return upload


def upload_complete(*, upload: ResumableUpload) -> ResumableUpload:
    """Finish a fully received upload into an active file (or the owner's earlier copy). Retried by
    an empty PATCH at the final offset if it failed after the last bytes were recorded."""
    store, media = get_store(), upload.media
    if media is None or media.status != MediaFile.Status.PENDING:
        raise Conflict("The upload's file is no longer pending.", code="upload_not_pending")
    key_id = store.append_finish(upload.store_state)
    try:
        result = _activate(store, upload, media, key_id)
    except BaseException:
        _end(upload)  # the object and the pending file went with the refusal
        raise
    ResumableUpload.objects.filter(pk=upload.pk).update(
        status=ResumableUpload.Status.COMPLETED, media=result.media, completed_at=timezone.now(), store_state={})
    upload.refresh_from_db()
    return upload


def _activate(store: MediaStore, upload: ResumableUpload, media: MediaFile, key_id: str) -> StoreResult:
    encrypted = bool(key_id)
    try:
        sha256, head = _digests.result(upload.pk, upload.length) or hash_object(
            store, media.storage_key, encrypted=encrypted, size=upload.length)
        sniffed = sniff(head[:SNIFF_BYTES])
        _check_type(media, sniffed)
        width, height = measure_dimensions(head, sniffed, upload.length)
    except BaseException:
        abandon(store, media)
        raise
    encryption = MediaFile.Encryption.APP if encrypted else (
        MediaFile.Encryption.SSE if store.encryption == "sse" else MediaFile.Encryption.NONE)
    facts = file_facts(upload.length, sha256, sniffed, width, height, encryption, key_id)
    return activate_deduplicated(store, media, organization=upload.organization, owner=media.owner, facts=facts)


def _check_type(media: MediaFile, sniffed: Sniffed) -> None:
    category_check(get_category(media.category), sniffed)
    if declared_contradicts(media.declared_mime, sniffed):
        raise UnsupportedMediaType(f"The content is {sniffed.mime}, not {media.declared_mime}.",
                              code="content_type_mismatch", param="file")


def _check_first_bytes(upload: ResumableUpload, head: bytes) -> None:
    """Refuse a disallowed type as soon as its first bytes arrive; the upload ends with it."""
    try:
        _check_type(upload.media, sniff(head))
    except ServiceError:
        _end(upload)
        raise


# -- termination and expiry ---------------------------------------------------------------
def upload_terminate(*, upload: ResumableUpload) -> None:
    """tus termination: an unfinished upload's bytes and reservation go; a finished one's file stays."""
    if upload.status == ResumableUpload.Status.ACTIVE:
        _take_lease(upload, upload.offset)
    _end(upload)


def upload_expire(*, upload: ResumableUpload) -> bool:
    """End an upload past its expiry (for `expire_uploads`); False when it finished or ended meanwhile."""
    claimed = ResumableUpload.objects.filter(pk=upload.pk, status=ResumableUpload.Status.ACTIVE).update(
        status=ResumableUpload.Status.EXPIRED)
    if claimed:
        _abandon_storage(upload)
        ResumableUpload.objects.filter(pk=upload.pk).update(store_state={})
    return bool(claimed)


def _end(upload: ResumableUpload) -> None:
    if upload.status == ResumableUpload.Status.ACTIVE:
        _abandon_storage(upload)
    ResumableUpload.objects.filter(pk=upload.pk).delete()
    _digests.drop(upload.pk)


def _abandon_storage(upload: ResumableUpload) -> None:
    store = get_store()
    if upload.store_state:
        store.append_abort(upload.store_state)
    media = MediaFile.objects.filter(pk=upload.media_id).select_related("organization").first()
    if media is not None and media.status == MediaFile.Status.PENDING:
        abandon(store, media)  # a finish that got as far as the object leaves it under the key


# -- the lease ----------------------------------------------------------------------------
def _take_lease(upload: ResumableUpload, offset: int) -> str:
    token, now = secrets.token_hex(16), timezone.now()
    free = Q(lock_token="") | Q(locked_until__lt=now)
    taken = ResumableUpload.objects.filter(free, pk=upload.pk, offset=offset,
                                           status=ResumableUpload.Status.ACTIVE).update(
        lock_token=token, locked_until=now + LEASE)
    if taken:
        return token
    current = ResumableUpload.objects.filter(pk=upload.pk).values_list("offset", flat=True).first()
    if current is None:
        raise NotFound("No such upload.", code="upload_not_found")
    if current != offset:
        raise OffsetMismatch()
    raise UploadLocked()


def _release_lease(upload: ResumableUpload, token: str) -> None:
    ResumableUpload.objects.filter(pk=upload.pk, lock_token=token).update(lock_token="", locked_until=None)


def _commit(upload: ResumableUpload, token: str, offset: int, state: dict, digest: _Digest | None) -> None:
    expires = timezone.now() + timedelta(seconds=settings.MEDIA_UPLOAD_TTL)  # activity keeps it alive
    with transaction.atomic():
        done = ResumableUpload.objects.filter(pk=upload.pk, lock_token=token).update(
            offset=offset, store_state=state, lock_token="", locked_until=None, expires_at=expires)
        if not done:
            raise Conflict("The upload changed while this request was appending.", code="upload_changed")
        MediaFile.objects.filter(pk=upload.media_id, status=MediaFile.Status.PENDING).update(
            upload_expires_at=expires)
    upload.offset, upload.store_state, upload.expires_at = offset, state, expires
    if digest is not None:
        _digests.keep(upload.pk, offset, digest)


# -- reading the body ---------------------------------------------------------------------
class _BodyPieces:
    """A request body read in pieces up to `limit` bytes; a read that fails (client gone, too slow)
    ends it early, keeping the error to raise once what arrived is recorded."""

    def __init__(self, body: BinaryIO, limit: int, upload: ResumableUpload, token: str) -> None:
        self.body, self.limit, self.upload, self.token = body, limit, upload, token
        self.received = 0
        self.error: BaseException | None = None
        self._head = b""
        self._renewed = time.monotonic()

    def head(self, n: int) -> bytes:
        try:
            self._head = read_head(self.body, n)
        except (OSError, RequestTimeout) as exc:
            self.error = exc
        return self._head

    def pieces(self, digest: _Digest | None) -> Iterator[bytes]:
        hashing = Digest(digest.hash) if digest is not None else None  # on another core, as one-shot uploads do
        try:
            for piece in self._read():
                self.received += len(piece)
                if digest is not None:
                    hashing.update(piece)
                    digest.keep_head(piece)
                yield piece
        finally:
            if hashing is not None:
                hashing.close()

    def _read(self) -> Iterator[bytes]:
        if self._head:
            yield self._head
        left = self.limit - len(self._head)
        while left > 0 and self.error is None:
            try:
                piece = self.body.read(min(READ_PIECE, left))
            except (OSError, RequestTimeout) as exc:
                self.error = exc
                return
            if not piece:
                return
            left -= len(piece)
            self._renew()
            yield piece

    def _renew(self) -> None:
        if time.monotonic() - self._renewed >= RENEW_EVERY:
            self._renewed = time.monotonic()
            ResumableUpload.objects.filter(pk=self.upload.pk, lock_token=self.token).update(
                locked_until=timezone.now() + LEASE)


def _verified_body(body: BinaryIO, checksum: Checksum, limit: int, content_length: int | None) -> BinaryIO:
    """The body spooled and checked against its checksum before any of it is stored."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    hasher, size = hashlib.new(checksum.algorithm), 0
    while size < limit and (piece := body.read(min(READ_PIECE, limit - size))):
        spool.write(piece)
        hasher.update(piece)
        size += len(piece)
    if (content_length is not None and size != content_length) or hasher.digest() != checksum.digest:
        spool.close()
        raise ChecksumMismatch()
    spool.seek(0)
    return spool


def parse_checksum(value: str) -> Checksum:
    """`Upload-Checksum: <algorithm> <base64 digest>`."""
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise InvalidRequest(f"Checksum algorithm {algorithm!r} is not supported.",
                             code="checksum_algorithm_not_supported", param="Upload-Checksum")
    try:
        return Checksum(algorithm, base64.b64decode(encoded.strip(), validate=True))
    except ValueError:
        raise InvalidRequest("Upload-Checksum is not valid base64.", code="invalid_checksum",
                             param="Upload-Checksum") from None


# -- the running SHA-256 ------------------------------------------------------------------
class _Digest:
    """SHA-256 and the first KEEP_HEAD bytes of what an upload has received so far."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.head = b""

    def keep_head(self, piece: bytes) -> None:
        if len(self.head) < KEEP_HEAD:
            self.head += piece[:KEEP_HEAD - len(self.head)]


class _Digests:
    """The running hash of recent uploads, in this process, by upload id and offset.

    hashlib's state cannot be stored, so the next PATCH continues it only if this process serves
    it; otherwise the file is hashed by reading it back once at completion (`hash_object`).
    Bounded: the least recently used go first.
    """

    SIZE = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[int, _Digest | None]] = OrderedDict()

    def take(self, upload_id: str, offset: int) -> _Digest | None:
        """The digest at `offset` (a new one at 0); None when this process does not have it."""
        if offset == 0:
            return _Digest()
        with self._lock:
            kept = self._items.pop(upload_id, None)
        return kept[1] if kept is not None and kept[0] == offset else None

    def keep(self, upload_id: str, offset: int, digest: _Digest) -> None:
        with self._lock:
            self._items[upload_id] = (offset, digest)
            while len(self._items) > self.SIZE:
                self._items.popitem(last=False)

    def result(self, upload_id: str, length: int) -> tuple[str, bytes] | None:
        with self._lock:
            kept = self._items.pop(upload_id, None)
        if kept is None or kept[0] != length or kept[1] is None:
            return None
        return kept[1].hash.hexdigest(), kept[1].head

    def drop(self, upload_id: str) -> None:
        with self._lock:
            self._items.pop(upload_id, None)


_digests = _Digests()


def expired_uploads(*, now: datetime, organization: Organization | None = None):  # noqa: ANN201 - a QuerySet
    rows = ResumableUpload.objects.filter(status=ResumableUpload.Status.ACTIVE, expires_at__lte=now)
    return rows.filter(organization=organization) if organization is not None else rows


def live_multipart_ids() -> frozenset[str]:
    """The S3 multipart upload ids of uploads still under way (never swept as leftovers)."""
    tus = ResumableUpload.objects.filter(status=ResumableUpload.Status.ACTIVE).values_list("store_state", flat=True)
    direct = MediaFile.objects.filter(status=MediaFile.Status.PENDING).exclude(multipart_upload_id="")
    return frozenset([state.get("backend", {}).get("upload_id", "") for state in tus]
                     + list(direct.values_list("multipart_upload_id", flat=True))) - {""}
