"""The storage interface: what Django's `Storage` lacks, over `storages["media"]`.

`MediaStore` is the one interface every caller uses for bytes; callers never learn which
backend they hold (local.py, s3.py, or any class `MEDIA_STORAGE_BACKEND` names). Every backend:
- saves a stream in one pass: sniff the head, hash (SHA-256), count, enforce a byte limit and
  (with `MEDIA_ENCRYPTION=app`) encrypt while writing; a failed write leaves no object;
- reads byte ranges as an iterator of chunks, decrypting only the chunks a range needs;
- copies, moves, deletes (a missing key is fine), stats, lists by prefix, sweeps partial writes;
- signs download and upload URLs (app-signed by default; a backend may presign its own).
A backend implements `_write`, `_read`, `stat`, `delete`, `copy`, `list`, `sweep_partial` and the four
`_append*` steps of a resumable write; the
rest has defaults here. Every key is validated before any call reaches the backend.
"""
from __future__ import annotations

import io
import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from django.core.files.storage import Storage

from config.errors import InvalidRequest, NotFound, StorageUnavailable
from storage_app import crypto, signing
from storage_app.backends.streams import HashingReader, read_head
from storage_app.keys import validate_key
from storage_app.sniff import Sniffed, is_inline_safe, sniff

logger = logging.getLogger("mediastore.storage")


@dataclass(frozen=True)
class SavedObject:
    key: str
    size: int  # plaintext bytes
    sha256: str  # of the plaintext
    sniffed: Sniffed
    encryption: str  # none | app | sse
    key_id: str = ""
    head: bytes = b""  # the first KEEP_HEAD plaintext bytes, for dimensions


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int  # stored bytes (ciphertext when app-encrypted)
    modified: datetime | None = None


@dataclass(frozen=True)
class SignedUpload:
    url: str
    method: str
    headers: dict[str, str]
    post_url: str
    post_fields: dict[str, str]
    expires_at: datetime



@dataclass(frozen=True)
class SignedMultipart:
    """An S3 multipart upload a client sends straight to the bucket: one presigned URL per part."""

    upload_id: str
    part_size: int  # every part but the last has exactly this many bytes
    part_urls: list[str]  # part n (1-based) goes to part_urls[n - 1], by PUT
    expires_at: datetime


class MultipartNotSupported(InvalidRequest):
    code = "multipart_not_supported"
    message = ("Direct multipart uploads need the S3 backend without app encryption; "
               "use a resumable (tus) upload at /v1/uploads/ instead.")


@dataclass(frozen=True)
class ObjectStat:
    size: int  # stored bytes (ciphertext when app-encrypted)
    etag: str  # changes whenever the object is rewritten; "" where the backend has none
    modified: datetime | None = None


class MediaStore(ABC):
    """The one interface every surface uses for bytes.

    Made by `get_store()` as `cls(storages["media"], encryption=..., keyring=...)`; a backend may
    build on that Django storage (local, S3) or ignore it.
    """

    name = "abstract"  # the registry name, shown by the Storage API

    def __init__(self, storage: Storage, *, encryption: str, keyring: crypto.Keyring | None) -> None:
        self.storage = storage
        self.encryption = encryption
        self.keyring = keyring
        if encryption == "app" and keyring is None:
            raise ValueError("MEDIA_ENCRYPTION=app needs MEDIA_MASTER_KEYS")

    # -- writing ----------------------------------------------------------------------
    def save_stream(self, key: str | Callable[[Sniffed], str], source: BinaryIO, *, max_bytes: int,
                    check: Callable[[Sniffed], None] | None = None, replacing: bool = False) -> SavedObject:
        """Store `source` under `key` in one pass; nothing is left behind on failure.

        `check` sees the sniffed type before the first byte is written and may raise
        (type not allowed here), so refused content never reaches the backend. `key` may
        be a function of the sniffed type (the extension of a new key comes from content).
        Every backend writes atomically (local: a rename; S3: a single or completed multipart PUT),
        so a failed write leaves any earlier object under `key` as it was; the belt-and-braces
        delete after a failure is skipped when `replacing` one, so the old object survives.
        """
        if isinstance(key, str):
            validate_key(key)
        head = read_head(source)
        sniffed = sniff(head)
        if check is not None:
            check(sniffed)
        if not isinstance(key, str):
            key = validate_key(key(sniffed))
        reader = HashingReader(source, max_bytes, head)
        stream: BinaryIO = reader
        key_id = ""
        try:
            if self.encryption == "app":
                stream = crypto.EncryptingReader(reader, keyring=self.keyring)
                key_id = stream.key_id
            self._write(key, stream, content_type=sniffed.mime)
        except BaseException:
            reader.close()
            if not replacing:
                self._discard(key)
            raise
        return SavedObject(key=key, size=reader.size, sha256=reader.sha256, sniffed=sniffed,
                           encryption=self.encryption, key_id=key_id, head=reader.kept)

    @abstractmethod
    def _write(self, key: str, stream: BinaryIO, *, content_type: str) -> None:
        """Store all of `stream` (`streams.stream_chunks` gives its chunks) under `key`, atomically:
        a reader sees the earlier object or the whole new one, never a part."""

    def _discard(self, key: str) -> None:
        try:
            self.delete(key)
        except Exception:  # the original error matters more; reconciliation finds leftovers
            logger.exception("could not remove partial object %s", key)

    # -- resumable writes (tus) --------------------------------------------------------
    # An object written over several requests. The caller persists the state dict (JSON) after
    # each `append` and passes it back: the backend's own part (a partial file, an S3 multipart
    # upload and its parts) and, with app encryption, the `crypto.StreamSealer` state. The state
    # is the truth: bytes a failed append wrote beyond it are discarded by the next append.
    # Nothing is visible under `key` until `append_finish`; `append_abort` removes everything.
    def append_open(self, key: str, *, content_type: str, total: int) -> dict:
        """Begin a resumable write of `total` plaintext bytes to `key`."""
        validate_key(key)
        state = {"key": key, "total": total, "backend": self._append_open(key, content_type=content_type)}
        if self.encryption == "app":
            state["crypto"] = crypto.StreamSealer.begin(self.keyring)
        return state

    def append(self, state: dict, chunks: Iterable[bytes | memoryview]) -> dict:
        """Append plaintext `chunks`; answers the state to persist. Memory stays bounded (a part)."""
        key = validate_key(state["key"])
        if "crypto" not in state:
            return {**state, "backend": self._append(key, state["backend"], iter(chunks))}
        sealer = crypto.StreamSealer(self.keyring, state["crypto"], total=state["total"])
        backend = self._append(key, state["backend"], sealer.seal(chunks))
        return {**state, "backend": backend, "crypto": sealer.state}

    def append_finish(self, state: dict) -> str:
        """Make the whole object visible under its key, atomically; answers the master key id ("" when
        not app-encrypted)."""
        key = validate_key(state["key"])
        if "crypto" not in state:
            self._append_finish(key, state["backend"], b"")
            return ""
        sealer = crypto.StreamSealer(self.keyring, state["crypto"], total=state["total"])
        self._append_finish(key, state["backend"], sealer.final_chunk())
        return sealer.key_id

    def append_abort(self, state: dict) -> None:
        """Remove what a resumable write stored; safe to call twice."""
        self._append_abort(validate_key(state["key"]), state["backend"])

    @abstractmethod
    def _append_open(self, key: str, *, content_type: str) -> dict:
        """The backend's state of a new resumable write (JSON-able)."""

    @abstractmethod
    def _append(self, key: str, state: dict, chunks: Iterator[bytes | memoryview]) -> dict:
        """Append stored bytes after what `state` holds (dropping anything beyond it first)."""

    @abstractmethod
    def _append_finish(self, key: str, state: dict, last: bytes) -> None:
        """Append `last`, then put the whole object under `key` atomically."""

    @abstractmethod
    def _append_abort(self, key: str, state: dict) -> None:
        """Remove the partial object; a missing one is fine."""

    # -- direct multipart uploads (S3) ---------------------------------------------------
    def signed_multipart_upload(self, key: str, *, content_type: str, size: int, ttl: float) -> SignedMultipart:
        """Presigned part URLs a client uploads `size` bytes to, straight to the backend."""
        raise MultipartNotSupported()

    def complete_multipart(self, key: str, *, upload_id: str, parts: list[tuple[int, str]]) -> None:
        """Join the uploaded parts (number, ETag) into the object under `key`."""
        raise MultipartNotSupported()

    def abort_multipart(self, key: str, *, upload_id: str) -> None:
        raise MultipartNotSupported()

    # -- reading ----------------------------------------------------------------------
    def open_range(self, key: str, start: int = 0, end: int | None = None, *,
                   encrypted: bool | None = None, plain_size: int | None = None) -> Iterator[bytes]:
        """Plaintext bytes `start..end` (inclusive) of `key`, as an iterator of chunks.

        `encrypted=None` means "look at the object" (objects without a row, such as compute
        images); rows know their encryption and pass it.
        """
        validate_key(key)
        if encrypted is None:
            encrypted = self.looks_encrypted(key)
        if not encrypted:
            return self._read(key, start, end)
        if self.keyring is None:
            raise crypto.EncryptionKeyMissing("No master keys are configured (MEDIA_MASTER_KEYS).")
        if plain_size is None:
            plain_size = self.plain_size(key, encrypted=True)
        if plain_size == 0:
            return iter(())
        return crypto.decrypt_range(lambda offset, length: self._read(key, offset, offset + length - 1),
                                    keyring=self.keyring, plain_size=plain_size, start=start, end=end)

    def read_bytes(self, key: str, *, encrypted: bool | None = None) -> bytes:
        return b"".join(self.open_range(key, encrypted=encrypted))

    def plain_size(self, key: str, *, encrypted: bool | None = None) -> int:
        stored = self.size(key)
        if encrypted is None:
            encrypted = self.looks_encrypted(key)
        return crypto.plaintext_size(stored) if encrypted else stored

    def looks_encrypted(self, key: str, *, stored_size: int | None = None) -> bool:
        """Whether the stored bytes start with the app-encryption header (`stored_size` saves a stat)."""
        if (self.size(key) if stored_size is None else stored_size) < crypto.HEADER_SIZE:
            return False
        return b"".join(self._read(key, 0, len(crypto.MAGIC) - 1)) == crypto.MAGIC

    @abstractmethod
    def _read(self, key: str, start: int, end: int | None) -> Iterator[bytes]:
        """Stored bytes `start..end` (inclusive; `None`: to the end) as chunks; `NotFound` when absent."""

    @abstractmethod
    def stat(self, key: str) -> ObjectStat:
        """Stored size and version tag; `NotFound` when absent."""

    def size(self, key: str) -> int:
        """Stored size in bytes; `NotFound` when absent."""
        return self.stat(key).size

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except NotFound:
            return False
        return True

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete `key`; a missing key is not an error."""

    @abstractmethod
    def copy(self, source: str, destination: str) -> None: ...

    def move(self, source: str, destination: str) -> None:
        """Give an object a new key; if this fails, the object is still (only) under `source`."""
        self.copy(source, destination)
        try:
            self.delete(source)
        except BaseException:
            self._discard(destination)
            raise

    @abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...

    @abstractmethod
    def sweep_partial(self, *, prefix: str, older_than: datetime, dry_run: bool = False,
                      keep: frozenset[str] = frozenset()) -> list[str]:
        """Remove what writes that never finished left behind (a worker killed mid-upload) and
        that is older than `older_than`; answer what was (or, dry run, would be) removed. `keep`
        names writes still under way (S3 multipart upload ids) that must stay whatever their age."""

    # -- signed URLs -------------------------------------------------------------------
    def signed_download_url(self, key: str, ttl: float, *, encrypted: bool = False,
                            filename: str = "", content_type: str = "") -> str:
        validate_key(key)
        return signing.signed_url(signing.make_grant("get", key, ttl, filename=filename, content_type=content_type))

    def signed_upload(self, key: str, *, content_type: str, max_bytes: int, ttl: float) -> SignedUpload:
        """An app-signed PUT (and POST form) upload, bound to type and size."""
        validate_key(key)
        put = signing.make_grant("put", key, ttl, content_type=content_type, max_bytes=max_bytes)
        post = signing.make_grant("post", key, ttl, content_type=content_type, max_bytes=max_bytes)
        return SignedUpload(
            url=signing.signed_url(put), method="PUT", headers={"Content-Type": content_type},
            post_url=signing.file_url(key), post_fields=signing.grant_params(post),
            expires_at=_expiry(put.expires),
        )

    def takes_direct_uploads(self) -> bool:
        """Whether `signed_upload` and `signed_multipart_upload` send a client's bytes straight to the
        backend, past the app (never under app encryption: the app must encrypt them)."""
        return False

    def allow_browser_uploads(self, origins: list[str]) -> list[dict]:
        """Let pages served from `origins` send direct uploads to the backend; the rules now in force
        (`manage.py configure_bucket_cors`). A backend that takes no direct uploads needs none."""
        return []

    def serves_presigned_downloads(self, *, encrypted: bool) -> bool:
        """Whether a download URL points at the backend itself (never for ciphertext)."""
        return False

    def public_url(self, key: str) -> str | None:
        """The unsigned URL a CDN or public endpoint serves `key`'s stored bytes at; None where there is none."""
        validate_key(key)
        return None

    def local_path(self, key: str) -> Path | None:
        """A file on this machine holding `key`'s stored bytes, which the server may send itself
        (sendfile, nginx's X-Accel-Redirect); None for backends whose bytes live elsewhere."""
        validate_key(key)
        return None

    @property
    def bucket_name(self) -> str:
        """The one bucket the Storage API lists this store as."""
        return self.name

    def ping(self) -> None:
        """Write, read back and delete a probe object; `StorageUnavailable` on any failure."""
        key = f"_health/probe-{uuid.uuid4().hex}"
        payload = b"mediastore readiness probe"
        try:
            self._write(key, io.BytesIO(payload), content_type="text/plain")
            if b"".join(self._read(key, 0, None)) != payload:
                raise StorageUnavailable("The storage probe read back different bytes.")
        finally:
            self.delete(key)



def content_disposition(content_type: str, filename: str = "") -> str:
    """`inline` only for types a browser cannot execute; `attachment` for the rest."""
    kind = "inline" if is_inline_safe(content_type) else "attachment"
    if not filename:
        return kind
    ascii_name = "".join(c for c in filename if 32 <= ord(c) < 127 and c not in '"\\') or "file"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def _expiry(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)

