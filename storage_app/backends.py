"""The storage layer: what Django's `Storage` lacks, over `storages["media"]`.

One interface, two implementations: `LocalStore` over `FileSystemStorage` and `S3Store` over
django-storages' `S3Storage` (its boto3 client). Both:
- save a stream in one pass: sniff the head, hash (SHA-256), count, enforce a byte limit and
  (with `MEDIA_ENCRYPTION=app`) encrypt while writing; a failed write leaves no object;
- read byte ranges as an iterator of chunks, decrypting only the chunks a range needs;
- copy, delete (a missing key is fine), test existence, list by prefix;
- sign download and upload URLs: boto3 presign on S3, HMAC-signed app URLs otherwise.
Every key is validated before any call reaches the backend.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files.storage import Storage, storages

from config.errors import NotFound, StorageUnavailable, TooLarge
from storage_app import crypto, signing
from storage_app.keys import validate_key
from storage_app.sniff import SNIFF_BYTES, Sniffed, is_inline_safe, sniff

logger = logging.getLogger("mediastore.storage")

READ_BLOCK = 1024 * 1024
KEEP_HEAD = 64 * 1024  # plaintext kept from a write, enough for image headers
WRITE_BLOCK = 1024 * 1024
TMP_DIR = ".tmp"  # local temp files; a leading-dot segment can never be a valid key


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


@dataclass
class HashingReader:
    """A file-like that hashes, counts and limits what is read through it.

    Raises `TooLarge` as soon as one byte more than `max_bytes` has been read, so a
    writer stops at the limit whatever the client declared.
    """

    source: BinaryIO
    max_bytes: int
    head: bytes = b""
    size: int = 0
    kept: bytes = b""
    _hash: "hashlib._Hash" = field(default_factory=hashlib.sha256)

    def __post_init__(self) -> None:
        self._account(self.head)

    def _account(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise TooLarge(f"File size exceeds the maximum of {self.max_bytes} bytes.", param="file")
        self._hash.update(data)
        if len(self.kept) < KEEP_HEAD:
            self.kept += data[:KEEP_HEAD - len(self.kept)]

    def read(self, n: int = -1) -> bytes:
        """Exactly `n` bytes unless the source ends: boto3 takes a short read for EOF."""
        n = n if n and n > 0 else WRITE_BLOCK
        prefix = b""
        if self.head:
            prefix, self.head = self.head[:n], self.head[n:]
            if len(prefix) == n:
                return prefix
        data = read_head(self.source, n - len(prefix))
        self._account(data)
        return prefix + data

    def readable(self) -> bool:
        return True

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def read_head(source: BinaryIO, n: int = SNIFF_BYTES) -> bytes:
    """Up to `n` bytes, looping because sockets and request bodies may return short reads."""
    parts, remaining = [], n
    while remaining > 0:
        chunk = source.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


class MediaStore(ABC):
    """The one interface every surface uses for bytes."""

    name = "abstract"

    def __init__(self, storage: Storage, *, encryption: str, keyring: crypto.Keyring | None) -> None:
        self.storage = storage
        self.encryption = encryption
        self.keyring = keyring
        if encryption == "app" and keyring is None:
            raise ValueError("MEDIA_ENCRYPTION=app needs MEDIA_MASTER_KEYS")

    # -- writing ----------------------------------------------------------------------
    def save_stream(self, key: str | Callable[[Sniffed], str], source: BinaryIO, *, max_bytes: int,
                    check: Callable[[Sniffed], None] | None = None) -> SavedObject:
        """Store `source` under `key` in one pass; nothing is left behind on failure.

        `check` sees the sniffed type before the first byte is written and may raise
        (type not allowed here), so refused content never reaches the backend. `key` may
        be a function of the sniffed type (the extension of a new key comes from content).
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
        if self.encryption == "app":
            stream = crypto.EncryptingReader(reader, keyring=self.keyring)
            key_id = stream.key_id
        try:
            self._write(key, stream, content_type=sniffed.mime)
        except BaseException:
            self._discard(key)
            raise
        return SavedObject(key=key, size=reader.size, sha256=reader.sha256, sniffed=sniffed,
                           encryption=self.encryption, key_id=key_id, head=reader.kept)

    @abstractmethod
    def _write(self, key: str, stream: BinaryIO, *, content_type: str) -> None: ...

    def _discard(self, key: str) -> None:
        try:
            self.delete(key)
        except Exception:  # the original error matters more; reconciliation finds leftovers
            logger.exception("could not remove partial object %s", key)

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

    def looks_encrypted(self, key: str) -> bool:
        if self.size(key) < crypto.HEADER_SIZE:
            return False
        return b"".join(self._read(key, 0, len(crypto.MAGIC) - 1)) == crypto.MAGIC

    @abstractmethod
    def _read(self, key: str, start: int, end: int | None) -> Iterator[bytes]: ...

    @abstractmethod
    def size(self, key: str) -> int:
        """Stored size in bytes; `NotFound` when absent."""

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

    @abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...

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

    def serves_presigned_downloads(self, *, encrypted: bool) -> bool:
        """Whether a download URL points at the backend itself (never for ciphertext)."""
        return False

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
    from urllib.parse import quote

    kind = "inline" if is_inline_safe(content_type) else "attachment"
    if not filename:
        return kind
    ascii_name = "".join(c for c in filename if 32 <= ord(c) < 127 and c not in '"\\') or "file"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def _expiry(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


class LocalStore(MediaStore):
    name = "local"

    @property
    def root(self) -> Path:
        return Path(self.storage.location)

    def path(self, key: str) -> Path:
        return Path(self.storage.path(validate_key(key)))

    def _write(self, key: str, stream: BinaryIO, *, content_type: str) -> None:
        target = self.path(key)
        tmp_dir = self.root / TMP_DIR
        try:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = tmp_dir / f"{uuid.uuid4().hex}.part"
            try:
                with open(tmp, "wb") as out:
                    while chunk := stream.read(WRITE_BLOCK):
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, target)  # atomic: readers see the whole object or none
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"Local storage write failed: {exc.strerror}.") from exc

    def _read(self, key: str, start: int, end: int | None) -> Iterator[bytes]:
        try:
            handle = open(self.path(key), "rb")
        except FileNotFoundError:
            raise NotFound("The object does not exist.") from None
        except OSError as exc:
            raise StorageUnavailable(f"Local storage read failed: {exc.strerror}.") from exc
        return _file_chunks(handle, start, end)

    def open_file(self, key: str) -> BinaryIO:
        """A plain file handle, for the server's sendfile path on unencrypted objects."""
        try:
            return open(self.path(key), "rb")
        except FileNotFoundError:
            raise NotFound("The object does not exist.") from None

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            raise NotFound("The object does not exist.") from None
        except OSError as exc:
            raise StorageUnavailable(f"Local storage failed: {exc.strerror}.") from exc

    def delete(self, key: str) -> None:
        try:
            self.path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"Local storage delete failed: {exc.strerror}.") from exc

    def copy(self, source: str, destination: str) -> None:
        src, dst = self.path(source), self.path(destination)
        if not src.exists():
            raise NotFound("The source object does not exist.")
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.root / TMP_DIR / f"{uuid.uuid4().hex}.part"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        finally:
            tmp.unlink(missing_ok=True)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Keys starting with `prefix`, walking only the directory the prefix names."""
        directory = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not directory.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(directory):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                full = Path(dirpath) / filename
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    stat = full.stat()
                    yield ObjectInfo(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc))


def _file_chunks(handle: BinaryIO, start: int, end: int | None) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        remaining = None if end is None else end - start + 1
        while remaining is None or remaining > 0:
            chunk = handle.read(READ_BLOCK if remaining is None else min(READ_BLOCK, remaining))
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk


class S3Store(MediaStore):
    name = "s3"

    def __init__(self, storage: Storage, **kwargs) -> None:
        super().__init__(storage, **kwargs)
        from boto3.s3.transfer import TransferConfig

        # Bounds the memory one upload holds: chunk size x concurrency.
        self.transfer = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024,
                                       max_concurrency=4, use_threads=True)
        self._local = threading.local()

    @property
    def bucket(self) -> str:
        return self.storage.bucket_name

    @property
    def client(self):  # noqa: ANN201 - boto3 client
        # S3Storage keeps one boto3 resource per thread; its client is reused for every call.
        return self.storage.connection.meta.client

    @property
    def presign_client(self):  # noqa: ANN201 - boto3 client
        """Signs URLs for the host clients reach (MEDIA_S3_PRESIGN_ENDPOINT), which may differ
        from the one this server talks to (e.g. `http://minio:9000` inside Compose).
        Signing is local: this client never opens a connection."""
        endpoint = settings.MEDIA_S3_PRESIGN_ENDPOINT
        if not endpoint or endpoint == self.storage.endpoint_url:
            return self.client
        cached = getattr(self, "_presign_client", None)
        if cached is None or cached[0] != endpoint:
            import boto3

            client = boto3.session.Session().client(
                "s3", endpoint_url=endpoint, region_name=self.storage.region_name,
                aws_access_key_id=self.storage.access_key or None,
                aws_secret_access_key=self.storage.secret_key or None, config=self.storage.client_config)
            cached = self._presign_client = (endpoint, client)
        return cached[1]

    def _errors(self, exc: Exception, key: str) -> Exception:
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                return NotFound("The object does not exist.")
            logger.error("S3 error on %s: %s", key, code)
            return StorageUnavailable(f"The storage backend answered {code or 'an error'}.")
        if isinstance(exc, BotoCoreError):
            logger.error("S3 unreachable on %s: %s", key, exc)
            return StorageUnavailable("The storage backend is unreachable.")
        return exc

    def _call(self, key: str, fn: Callable, *args, **kwargs):  # noqa: ANN202
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            mapped = self._errors(exc, key)
            if mapped is exc:
                raise
            raise mapped from exc

    def _write(self, key: str, stream: BinaryIO, *, content_type: str) -> None:
        extra = {"ContentType": content_type}
        if self.encryption == "sse":
            extra["ServerSideEncryption"] = "AES256"
        self._call(key, self.client.upload_fileobj, stream, self.bucket, key, ExtraArgs=extra, Config=self.transfer)

    def _read(self, key: str, start: int, end: int | None) -> Iterator[bytes]:
        kwargs = {"Bucket": self.bucket, "Key": key}
        if start or end is not None:
            kwargs["Range"] = f"bytes={start}-{'' if end is None else end}"
        body = self._call(key, self.client.get_object, **kwargs)["Body"]
        return _body_chunks(self, key, body)

    def size(self, key: str) -> int:
        return self._call(key, self.client.head_object, Bucket=self.bucket, Key=key)["ContentLength"]

    def delete(self, key: str) -> None:
        self._call(key, self.client.delete_object, Bucket=self.bucket, Key=key)

    def copy(self, source: str, destination: str) -> None:
        validate_key(source)
        validate_key(destination)
        # Managed copy: server-side, multipart above 8 MB, never through this process.
        self._call(source, self.client.copy, {"Bucket": self.bucket, "Key": source}, self.bucket, destination,
                   Config=self.transfer)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._call(prefix, lambda: iter(paginator.paginate(Bucket=self.bucket, Prefix=prefix)))
        while True:
            page = self._call(prefix, next, pages, None)
            if page is None:
                return
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"], item["Size"], item.get("LastModified"))

    def serves_presigned_downloads(self, *, encrypted: bool) -> bool:
        return not encrypted

    def signed_download_url(self, key: str, ttl: float, *, encrypted: bool = False,
                            filename: str = "", content_type: str = "") -> str:
        if encrypted:  # a presigned S3 URL would hand out ciphertext
            return super().signed_download_url(key, ttl, filename=filename, content_type=content_type)
        params = {"Bucket": self.bucket, "Key": validate_key(key)}
        if content_type:
            # The bucket serves what the URL says: active content (SVG, HTML) only as a download.
            params["ResponseContentType"] = content_type
            params["ResponseContentDisposition"] = content_disposition(content_type, filename)
        return self.presign_client.generate_presigned_url("get_object", Params=params, ExpiresIn=int(ttl))

    def signed_upload(self, key: str, *, content_type: str, max_bytes: int, ttl: float) -> SignedUpload:
        if self.encryption == "app":  # bytes must pass through the app to be encrypted
            return super().signed_upload(key, content_type=content_type, max_bytes=max_bytes, ttl=ttl)
        validate_key(key)
        expires = int(ttl)
        params = {"Bucket": self.bucket, "Key": key, "ContentType": content_type, "ContentLength": max_bytes}
        extra_fields: dict[str, str] = {"Content-Type": content_type}
        conditions: list = [{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]]
        if self.encryption == "sse":
            params["ServerSideEncryption"] = "AES256"
            extra_fields["x-amz-server-side-encryption"] = "AES256"
            conditions.append({"x-amz-server-side-encryption": "AES256"})
        url = self.presign_client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires)
        post = self.presign_client.generate_presigned_post(self.bucket, key, Fields=extra_fields,
                                                   Conditions=conditions, ExpiresIn=expires)
        headers = {"Content-Type": content_type}
        if self.encryption == "sse":
            headers["x-amz-server-side-encryption"] = "AES256"
        return SignedUpload(url=url, method="PUT", headers=headers, post_url=post["url"],
                            post_fields=post["fields"],
                            expires_at=datetime.now(timezone.utc) + timedelta(seconds=expires))

    def public_url(self, key: str) -> str | None:
        base = settings.MEDIA_S3_PUBLIC_ENDPOINT
        return f"{base}/{validate_key(key)}" if base else None


def _body_chunks(store: S3Store, key: str, body) -> Iterator[bytes]:  # noqa: ANN001 - botocore StreamingBody
    try:
        yield from store._call(key, lambda: iter(body.iter_chunks(READ_BLOCK)))
    finally:
        body.close()


_cache: dict[tuple, MediaStore] = {}
_cache_lock = threading.Lock()


def get_store() -> MediaStore:
    """The configured store. Rebuilt when `STORAGES` or the encryption settings change (tests)."""
    storage = storages["media"]
    cache_key = (id(storage), settings.MEDIA_ENCRYPTION, settings.MEDIA_MASTER_KEYS)
    store = _cache.get(cache_key)
    if store is None:
        with _cache_lock:
            keyring = crypto.Keyring.parse(settings.MEDIA_MASTER_KEYS) if settings.MEDIA_MASTER_KEYS else None
            cls = S3Store if storage.__class__.__name__ == "S3Storage" else LocalStore
            store = cls(storage, encryption=settings.MEDIA_ENCRYPTION, keyring=keyring)
            _cache.clear()
            _cache[cache_key] = store
    return store
