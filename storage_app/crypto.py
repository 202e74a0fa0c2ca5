"""Encryption at rest: chunked, streaming AES-256-GCM with wrapped per-object keys.

Stored object layout (all integers big-endian)::

    header  (HEADER_SIZE = 94 bytes, fixed so range arithmetic is constant)
        magic        4   b"MSE1"
        version      1   FORMAT_VERSION
        key_id_len   1   1..32
        key_id      32   ASCII master key id, zero padded
        chunk_size   4   plaintext bytes per chunk (all chunks but the last are full)
        nonce_prefix 8   random per object
        wrapped_key 40   the object's 256-bit data key, RFC 3394 AES key wrap
                         under the master key named by key_id
        header_crc   4   CRC-32 of the 90 bytes above
    chunk 0 .. n-1
        AES-256-GCM(data_key, nonce, plaintext_chunk, aad) = ciphertext || 16-byte tag

    nonce(i) = nonce_prefix || uint32(i)
    aad(i)   = header || uint32(i) || uint8(final)

Why it looks like this:

* Per-object random data key: the master key only ever wraps 32 random bytes, so
  rotating master keys means re-wrapping a header, never re-encrypting content,
  and the GCM usage limits apply per object instead of across the whole store.
* AES key wrap (RFC 3394) is deterministic and has its own integrity check; unlike
  GCM with random nonces it has no birthday bound on how many keys one master key
  may wrap.
* Nonces never repeat under one data key because the chunk counter is part of the
  nonce.  The random prefix is defence in depth: should a data key ever be reused
  (RNG failure, cloned VM), two objects would still (w.h.p.) use distinct nonces.
* The AAD binds every chunk to the exact header bytes (magic, version, key id,
  chunk size, nonce prefix, wrapped key), so editing any header field fails
  authentication of the very first chunk read.  The index makes reordering or
  swapping chunks fail, and the "final" flag makes truncation at a chunk
  boundary (dropping trailing chunks) and extension (appending chunks) fail: the
  last chunk must authenticate as final, and a final chunk only authenticates as
  the last one.  An empty plaintext still has one empty final chunk, so even an
  empty object authenticates its header.
* The header CRC is not a security control (the AAD is).  It exists so that bit
  rot in the key id field reads as "corrupted" (409) rather than as "key not
  configured" (503), since the key id must be trusted before anything can be
  authenticated.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import struct
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)

from config.errors import ServiceError

logger = logging.getLogger("mediastore.crypto")

MAGIC = b"MSE1"
FORMAT_VERSION = 1
CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 16 * 1024 * 1024
TAG_SIZE = 16
KEY_SIZE = 32
KEY_ID_MAX = 32
NONCE_PREFIX_SIZE = 8
WRAPPED_KEY_SIZE = KEY_SIZE + 8  # RFC 3394 adds one 64-bit integrity block
MAX_CHUNKS = 2**32  # the counter is the last 4 bytes of the 96-bit GCM nonce

_HEADER = struct.Struct(f">4sBB{KEY_ID_MAX}sI{NONCE_PREFIX_SIZE}s{WRAPPED_KEY_SIZE}s")
_CRC = struct.Struct(">I")
HEADER_SIZE = _HEADER.size + _CRC.size  # 94
_CHUNK_AAD = struct.Struct(">IB")
_COUNTER = struct.Struct(">I")
_KEY_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,%d}" % KEY_ID_MAX)


class ObjectCorrupted(ServiceError):
    """The stored ciphertext does not authenticate: tampered, truncated or mis-sized."""

    status = 409
    code = "object_corrupted"
    type = "storage_error"
    message = "The stored object failed its integrity check and cannot be served."
    detail = ""  # operator-facing reason; also logged, never sent to clients


class EncryptionKeyMissing(ServiceError):
    """The object was encrypted under a master key this deployment no longer has."""

    status = 503
    code = "encryption_key_unavailable"
    type = "storage_error"
    message = "The encryption key for this object is not available."


def _corrupted(reason: str, **context: object) -> ObjectCorrupted:
    """Log the detail for operators; the client only gets the generic message."""
    logger.error("encrypted object failed integrity check: %s %s", reason, context)
    exc = ObjectCorrupted()
    exc.detail = reason
    return exc


# --------------------------------------------------------------------------- keys


def _validate_key_id(key_id: str) -> str:
    if not key_id:
        raise ValueError("master key id is empty")
    if not _KEY_ID_RE.fullmatch(key_id):
        raise ValueError(
            f"master key id {key_id!r} is invalid: use 1-{KEY_ID_MAX} characters "
            "from A-Z a-z 0-9 . _ -"
        )
    return key_id


def _decode_key(key_id: str, text: str) -> bytes:
    """Standard or urlsafe base64, padding optional. Never echoes the key material."""
    text = text.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"master key {key_id!r} is not valid base64") from None
    if len(key) != KEY_SIZE:
        raise ValueError(
            f"master key {key_id!r} decodes to {len(key)} bytes, expected {KEY_SIZE}"
        )
    return key


@dataclass(frozen=True, repr=False)
class Keyring:
    """Master keys by id, in priority order; the first one encrypts new objects."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("keyring needs at least one master key")

    @classmethod
    def parse(cls, value: str) -> Keyring:
        """Parse ``"id:BASE64,id2:BASE64"`` (e.g. the MEDIA_MASTER_KEYS setting)."""
        if not value or not value.strip():
            raise ValueError("MEDIA_MASTER_KEYS is empty: expected 'id:base64key,...'")
        entries: list[tuple[str, bytes]] = []
        for position, item in enumerate(value.split(","), start=1):
            entries.append(cls._parse_entry(position, item.strip()))
        ids = [key_id for key_id, _ in entries]
        duplicates = sorted({key_id for key_id in ids if ids.count(key_id) > 1})
        if duplicates:
            raise ValueError(f"duplicate master key id(s): {', '.join(duplicates)}")
        return cls(tuple(entries))

    @staticmethod
    def _parse_entry(position: int, item: str) -> tuple[str, bytes]:
        if not item:
            raise ValueError(f"master key entry {position} is empty (stray comma?)")
        key_id, sep, encoded = item.partition(":")
        if not sep:
            raise ValueError(f"master key entry {position} has no ':' (expected 'id:base64key')")
        key_id = key_id.strip()
        if not key_id:
            raise ValueError(f"master key entry {position} has an empty key id")
        _validate_key_id(key_id)
        return key_id, _decode_key(key_id, encoded)

    @property
    def current_id(self) -> str:
        return self.keys[0][0]

    @property
    def ids(self) -> list[str]:
        return [key_id for key_id, _ in self.keys]

    def get(self, key_id: str) -> bytes:
        for candidate, key in self.keys:
            if candidate == key_id:
                return key
        logger.error("master key %r is not configured in MEDIA_MASTER_KEYS", key_id)
        raise EncryptionKeyMissing()

    def __contains__(self, key_id: object) -> bool:
        return any(candidate == key_id for candidate, _ in self.keys)

    def __repr__(self) -> str:  # never print key material
        return f"Keyring(ids={self.ids!r})"


def generate_key_string(key_id: str) -> str:
    """A fresh ``"id:base64"`` entry for MEDIA_MASTER_KEYS."""
    _validate_key_id(key_id)
    return f"{key_id}:{base64.b64encode(os.urandom(KEY_SIZE)).decode('ascii')}"


# ------------------------------------------------------------------------- header


@dataclass(frozen=True)
class Header:
    key_id: str
    chunk_size: int
    nonce_prefix: bytes
    wrapped_key: bytes
    raw: bytes  # the exact stored bytes, used as AAD

    def nonce(self, index: int) -> bytes:
        return self.nonce_prefix + _COUNTER.pack(index)

    def aad(self, index: int, final: bool) -> bytes:
        return self.raw + _CHUNK_AAD.pack(index, final)


def _check_chunk_size(chunk_size: int) -> int:
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be between 1 and {MAX_CHUNK_SIZE}")
    return chunk_size


def _random_bytes(n: int) -> bytes:
    """All key and nonce material comes from here (tests patch it for determinism)."""
    return os.urandom(n)


def _build_header(key_id: str, master_key: bytes, data_key: bytes, chunk_size: int) -> Header:
    nonce_prefix = _random_bytes(NONCE_PREFIX_SIZE)
    wrapped = aes_key_wrap(master_key, data_key)
    encoded_id = key_id.encode("ascii")
    body = _HEADER.pack(MAGIC, FORMAT_VERSION, len(encoded_id), encoded_id,
                        chunk_size, nonce_prefix, wrapped)
    raw = body + _CRC.pack(zlib.crc32(body))
    return Header(key_id, chunk_size, nonce_prefix, wrapped, raw)


def parse_header(raw: bytes) -> Header:
    """Structural checks only; authenticity is established by the first chunk's tag."""
    if len(raw) != HEADER_SIZE:
        raise _corrupted("short header", got=len(raw))
    body, (crc,) = raw[:_HEADER.size], _CRC.unpack(raw[_HEADER.size:])
    magic, version, id_len, padded_id, chunk_size, prefix, wrapped = _HEADER.unpack(body)
    if magic != MAGIC:
        raise _corrupted("bad magic", magic=magic)
    if zlib.crc32(body) != crc:
        raise _corrupted("header checksum mismatch")
    if version != FORMAT_VERSION:
        raise _corrupted("unsupported format version", version=version)
    if not 1 <= id_len <= KEY_ID_MAX or any(padded_id[id_len:]):
        raise _corrupted("malformed key id field")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise _corrupted("chunk size out of range", chunk_size=chunk_size)
    try:
        key_id = padded_id[:id_len].decode("ascii")
    except UnicodeDecodeError:
        raise _corrupted("non-ascii key id") from None
    return Header(key_id, chunk_size, prefix, wrapped, bytes(raw))


def read_header_key_id(header_bytes: bytes) -> str:
    """The master key id an object was encrypted with (e.g. to find objects to re-wrap)."""
    return parse_header(bytes(header_bytes[:HEADER_SIZE])).key_id


def _unwrap(header: Header, keyring: Keyring) -> AESGCM:
    master = keyring.get(header.key_id)
    try:
        return AESGCM(aes_key_unwrap(master, header.wrapped_key))
    except InvalidUnwrap:
        # Either the header was tampered with, or the configured key for this id
        # is not the one that wrapped it (a configuration mistake).
        raise _corrupted("data key unwrap failed", key_id=header.key_id) from None


# -------------------------------------------------------------------- size math


def _chunk_count(plain_size: int, chunk_size: int) -> int:
    return max(1, -(-plain_size // chunk_size))


def ciphertext_size(plain_size: int, chunk_size: int = CHUNK_SIZE) -> int:
    """Stored size of a ``plain_size`` byte object."""
    if plain_size < 0:
        raise ValueError("plain_size must be >= 0")
    _check_chunk_size(chunk_size)
    return HEADER_SIZE + plain_size + TAG_SIZE * _chunk_count(plain_size, chunk_size)


def plaintext_size(cipher_size: int, chunk_size: int = CHUNK_SIZE) -> int:
    """Inverse of :func:`ciphertext_size`; raises ObjectCorrupted for impossible sizes."""
    _check_chunk_size(chunk_size)
    body = cipher_size - HEADER_SIZE
    if body < TAG_SIZE:
        raise _corrupted("ciphertext shorter than header + one tag", size=cipher_size)
    stored_chunk = chunk_size + TAG_SIZE
    chunks = -(-body // stored_chunk)
    last = body - (chunks - 1) * stored_chunk
    if chunks > 1 and last == TAG_SIZE:  # only a lone chunk may be empty
        raise _corrupted("impossible ciphertext size", size=cipher_size)
    return body - TAG_SIZE * chunks


# ---------------------------------------------------------------------- encrypt


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def _read_full(source: Readable, n: int) -> bytes:
    """Read exactly n bytes unless EOF: sockets and pipes may return short reads."""
    data = source.read(n)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("EncryptingReader source must return bytes from read()")
    if len(data) > n:
        raise ValueError(f"source.read({n}) returned {len(data)} bytes")
    if len(data) == n or not data:
        return bytes(data)
    parts = [bytes(data)]
    got = len(data)
    while got < n:
        more = source.read(n - got)
        if not more:
            break
        parts.append(bytes(more))
        got += len(more)
    return b"".join(parts)


class EncryptingReader:
    """File-like view of the encrypted form of ``source``: ``read(n)`` gives ciphertext.

    Memory stays bounded (one plaintext chunk of read-ahead plus the ciphertext not
    yet handed out), whatever ``n`` callers pass. Usable as boto3 ``upload_fileobj``
    Fileobj (deliberately not seekable, so s3transfer streams it) or iterated.
    After EOF, ``plain_size`` / ``cipher_size`` tell the caller what to record.
    """

    def __init__(self, source: Readable, *, keyring: Keyring,
                 chunk_size: int = CHUNK_SIZE) -> None:
        self._source = source
        self._chunk_size = _check_chunk_size(chunk_size)
        self.key_id = keyring.current_id
        data_key = _random_bytes(KEY_SIZE)
        self._aead = AESGCM(data_key)
        self._header = _build_header(self.key_id, keyring.get(self.key_id),
                                     data_key, chunk_size)
        # Ciphertext produced but not yet handed out, as views so a partial read
        # slices without copying; _buffered is their total length.
        self._out: deque[memoryview] = deque([memoryview(self._header.raw)])
        self._buffered = HEADER_SIZE
        self._ahead: bytes | None = None  # next plaintext chunk, read one step early
        self._index = 0
        self._done = False
        self.plain_size = 0
        self.cipher_size = 0

    @property
    def header(self) -> bytes:
        return self._header.raw

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int | None = -1) -> bytes:
        """Exactly ``n`` bytes unless the stream ends (s3transfer relies on that)."""
        if n is None or n < 0:
            return self._read_all()
        while self._buffered < n and not self._done:
            self._push(self._next_chunk())
        return self._take(n)

    def _push(self, sealed: bytes) -> None:
        self._out.append(memoryview(sealed))
        self._buffered += len(sealed)

    def _take(self, n: int) -> bytes:
        parts = []
        while n > 0 and self._out:
            head = self._out[0]
            if len(head) > n:
                parts.append(head[:n])
                self._out[0] = head[n:]
            else:
                parts.append(self._out.popleft())
            n -= len(parts[-1])
        data = b"".join(parts)
        self._buffered -= len(data)
        self.cipher_size += len(data)
        return data

    def _read_all(self) -> bytes:
        for sealed in self._remaining_chunks():
            self._push(sealed)
        return self._take(self._buffered)

    def __iter__(self) -> Iterator[bytes]:
        if self._buffered:
            yield self._take(self._buffered)
        for sealed in self._remaining_chunks():
            self.cipher_size += len(sealed)
            yield sealed

    def _remaining_chunks(self) -> Iterator[bytes]:
        while not self._done:
            yield self._next_chunk()

    def _next_chunk(self) -> bytes:
        """Encrypt the next chunk; reading one chunk ahead tells us if it is the last."""
        if self._ahead is None:
            self._ahead = _read_full(self._source, self._chunk_size)
        current = self._ahead
        if len(current) < self._chunk_size:
            final, self._ahead = True, b""  # a short read is EOF: no need to look further
        else:
            self._ahead = _read_full(self._source, self._chunk_size)
            final = not self._ahead
        return self._seal(current, final)

    def _seal(self, plain: bytes, final: bool) -> bytes:
        index = self._index
        if index >= MAX_CHUNKS:
            raise ValueError("object too large for this chunk size (nonce counter exhausted)")
        sealed = self._aead.encrypt(self._header.nonce(index), plain,
                                    self._header.aad(index, final))
        self._index += 1
        self.plain_size += len(plain)
        self._done = final
        return sealed


# ---------------------------------------------------------------------- decrypt

Fetch = Callable[[int, int], bytes | Iterable[bytes]]


@dataclass(frozen=True)
class _Plan:
    """Which stored chunks cover plaintext [start, end] and where they live."""

    first: int
    last: int
    chunk_count: int
    chunk_size: int
    plain_size: int

    def stored_len(self, index: int) -> int:
        if index == self.chunk_count - 1:
            return self.plain_size - index * self.chunk_size + TAG_SIZE
        return self.chunk_size + TAG_SIZE

    @property
    def offset(self) -> int:
        return HEADER_SIZE + self.first * (self.chunk_size + TAG_SIZE)

    @property
    def length(self) -> int:
        full = (self.last - self.first) * (self.chunk_size + TAG_SIZE)
        return full + self.stored_len(self.last)


def _normalise_range(plain_size: int, start: int, end: int | None) -> tuple[int, int]:
    """HTTP-like: ``end`` is inclusive and clamped to the last byte."""
    if plain_size < 0:
        raise ValueError("plain_size must be >= 0")
    last_byte = plain_size - 1
    end = last_byte if end is None else min(end, last_byte)
    if plain_size == 0 and start == 0:
        return 0, -1  # whole empty object: still authenticate its empty final chunk
    if start < 0 or start > end:
        raise ValueError(f"unsatisfiable range {start}-{end} for {plain_size} bytes")
    return start, end


def _pieces(result: bytes | Iterable[bytes]) -> Iterator[bytes]:
    if isinstance(result, (bytes, bytearray, memoryview)):
        return iter((bytes(result),))
    return iter(result)


def _split_exact(pieces: Iterator[bytes],
                 sizes: Iterable[tuple[int, int]]) -> Iterator[bytes | memoryview]:
    """Re-cut the fetched stream into stored chunks; short or long data is corruption.

    Works on memoryviews, so a piece that already holds a whole chunk is not copied;
    at most one fetched piece plus one stored chunk is held at a time.
    """
    tail = memoryview(b"")  # unconsumed end of the last fetched piece
    for index, size in sizes:
        if len(tail) >= size:
            yield tail[:size]
            tail = tail[size:]
            continue
        parts, have = [tail], len(tail)
        while have < size:
            piece = next(pieces, None)
            if piece is None:
                raise _corrupted("ciphertext truncated", chunk=index, expected=size, got=have)
            view = memoryview(piece)
            parts.append(view[:size - have])
            tail = view[size - have:]
            have += len(parts[-1])
        yield b"".join(parts)
    if len(tail) or next((p for p in pieces if p), None) is not None:
        raise _corrupted("more ciphertext than expected")


def _open(aead: AESGCM, header: Header, index: int, final: bool,
          sealed: bytes | memoryview) -> bytes:
    try:
        return aead.decrypt(header.nonce(index), sealed, header.aad(index, final))
    except InvalidTag:
        raise _corrupted("chunk authentication failed", key_id=header.key_id,
                         chunk=index, final=final) from None


def decrypt_range(fetch: Fetch, *, keyring: Keyring, plain_size: int,
                  start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """Plaintext bytes ``[start, end]`` (inclusive) of a stored encrypted object.

    ``fetch(offset, length)`` returns the stored bytes ``[offset, offset+length)``
    as bytes or an iterable of byte pieces (an S3 ranged GetObject body, a
    seek+read loop on a local file). It is called twice: once for the header and
    once for the contiguous run of chunks covering the range; only those chunks
    are decrypted. ``plain_size`` is the size recorded at upload time; a wrong
    value fails authentication of the final chunk.

    The header and the first chunk are fetched and authenticated before this
    returns, so key and most corruption errors surface before a response starts;
    later chunks are decrypted lazily and a failure raises mid-iteration. No
    plaintext from a chunk that fails authentication is ever yielded.
    ``end`` is clamped to the last byte; an unsatisfiable range is a ValueError.

    If the chunk-run iterable has ``close()`` (e.g. ``fetch`` is a generator with a
    ``finally: body.close()``), it is closed when the stream ends, fails, or the
    returned iterator is closed early (client went away).
    """
    start, end = _normalise_range(plain_size, start, end)
    header = parse_header(_fetch_exact(fetch, 0, HEADER_SIZE))
    aead = _unwrap(header, keyring)
    cs = header.chunk_size
    count = _chunk_count(plain_size, cs)
    if count > MAX_CHUNKS:
        raise _corrupted("plain size too large for chunk size", plain_size=plain_size)
    plan = _Plan(start // cs, max(end, 0) // cs, count, cs, plain_size)
    sizes = ((i, plan.stored_len(i)) for i in range(plan.first, plan.last + 1))
    source = _pieces(fetch(plan.offset, plan.length))
    chunks = _decrypt_chunks(aead, header, plan, _split_exact(source, sizes))
    try:
        first = next(chunks)  # eager: authenticate header + first chunk now
    except BaseException:
        _close(source)
        raise
    return _trimmed(first, chunks, plan, start, end, source)


def _close(source: Iterator[bytes]) -> None:
    close = getattr(source, "close", None)
    if close is not None:
        close()


def _fetch_exact(fetch: Fetch, offset: int, length: int) -> bytes:
    data = b"".join(_pieces(fetch(offset, length)))
    if len(data) != length:
        raise _corrupted("short read", offset=offset, expected=length, got=len(data))
    return data


def _decrypt_chunks(aead: AESGCM, header: Header, plan: _Plan,
                    sealed: Iterator[bytes | memoryview]) -> Iterator[tuple[int, bytes]]:
    for index in range(plan.first, plan.last + 1):
        final = index == plan.chunk_count - 1
        yield index, _open(aead, header, index, final, next(sealed))
    for _ in sealed:  # drain: lets _split_exact check for trailing bytes
        pass


def _trimmed(first: tuple[int, bytes], rest: Iterator[tuple[int, bytes]],
             plan: _Plan, start: int, end: int, source: Iterator[bytes]) -> Iterator[bytes]:
    """Cut the decrypted chunks down to exactly [start, end]."""
    cs = plan.chunk_size
    try:
        for index, plain in _chain(first, rest):
            base = index * cs
            lo = max(start - base, 0)
            hi = min(end - base + 1, len(plain))
            if hi > lo:
                yield plain if (lo == 0 and hi == len(plain)) else plain[lo:hi]
    finally:
        _close(source)


def _chain(first: tuple[int, bytes], rest: Iterator[tuple[int, bytes]]
           ) -> Iterator[tuple[int, bytes]]:
    yield first
    yield from rest


def file_fetcher(fileobj: object, *, piece_size: int = 1024 * 1024) -> Fetch:
    """A ``fetch`` for a seekable local file: seek, then read in bounded pieces."""

    def fetch(offset: int, length: int) -> Iterator[bytes]:
        fileobj.seek(offset)  # type: ignore[attr-defined]
        remaining = length
        while remaining > 0:
            piece = fileobj.read(min(piece_size, remaining))  # type: ignore[attr-defined]
            if not piece:
                return
            remaining -= len(piece)
            yield piece

    return fetch


# ------------------------------------------------------------- resumable writes


class StreamSealer:
    """Encrypts an object that arrives in several requests (tus PATCHes) into exactly the layout
    `EncryptingReader` writes in one pass, so a resumable upload reads back like any other.

    Between requests the caller persists `state` (JSON): the header (it holds the wrapped data
    key), the next chunk index, and the plaintext that does not yet fill a chunk. That tail is
    sealed under a key derived from the data key (HMAC-SHA256), with a random nonce and the
    plaintext offset as AAD, so no plaintext is kept at rest and it cannot be moved elsewhere.
    `total` (the declared length) tells which chunk is the final one: a chunk ending exactly at
    `total` is held back until `final_chunk()`, which seals it as final.
    """

    TAIL_INFO = b"mediastore resumable tail v1"

    def __init__(self, keyring: Keyring, state: dict, *, total: int) -> None:
        self._header = parse_header(base64.b64decode(state["header"]))
        data_key = aes_key_unwrap(keyring.get(self._header.key_id), self._header.wrapped_key)
        self._aead = AESGCM(data_key)
        self._tail_aead = AESGCM(hmac.new(data_key, self.TAIL_INFO, hashlib.sha256).digest())
        self._index = state["index"]
        self._sealed_plain = state["sealed"]  # plaintext bytes already in stored chunks
        self._started = state["started"]  # the header has been handed to the backend
        self._total = total
        self._tail = self._open_tail(state["tail"])

    @staticmethod
    def begin(keyring: Keyring, chunk_size: int = CHUNK_SIZE) -> dict:
        key_id = keyring.current_id
        header = _build_header(key_id, keyring.get(key_id), _random_bytes(KEY_SIZE), chunk_size)
        return {"header": base64.b64encode(header.raw).decode(), "index": 0, "sealed": 0, "started": False,
                "tail": ""}

    @property
    def key_id(self) -> str:
        return self._header.key_id

    def _aad(self) -> bytes:
        return self._header.raw + struct.pack(">Q", self._sealed_plain)

    def _open_tail(self, text: str) -> bytearray:
        if not text:
            return bytearray()
        blob = base64.b64decode(text)
        try:
            return bytearray(self._tail_aead.decrypt(blob[:12], blob[12:], self._aad()))
        except InvalidTag:
            raise _corrupted("resumable upload tail failed authentication") from None

    def seal(self, chunks: Iterable[bytes | memoryview]) -> Iterator[bytes]:
        """Stored bytes for the plaintext `chunks`: the header first, then every full chunk that
        is not the last of the object."""
        if not self._started:
            self._started = True
            yield self._header.raw
        size = self._header.chunk_size
        for piece in chunks:
            self._tail += piece
            done = 0  # cut the sealed chunks off once per piece, not once per chunk
            while len(self._tail) - done >= size and self._sealed_plain + size < self._total:
                yield self._seal(bytes(self._tail[done:done + size]), final=False)
                done += size
            del self._tail[:done]

    def final_chunk(self) -> bytes:
        """The last stored chunk (what is left, sealed as final); the header too if never sent."""
        head = b"" if self._started else self._header.raw
        self._started = True
        return head + self._seal(bytes(self._tail), final=True)

    def _seal(self, plain: bytes, *, final: bool) -> bytes:
        sealed = self._aead.encrypt(self._header.nonce(self._index), plain, self._header.aad(self._index, final))
        self._index += 1
        self._sealed_plain += len(plain)
        return sealed

    @property
    def state(self) -> dict:
        tail = ""
        if self._tail:
            nonce = _random_bytes(12)
            tail = base64.b64encode(nonce + self._tail_aead.encrypt(nonce, bytes(self._tail), self._aad())).decode()
        return {"header": base64.b64encode(self._header.raw).decode(), "index": self._index,
                "sealed": self._sealed_plain, "started": self._started, "tail": tail}
