"""Shared streaming helpers of every backend: read a request body in full pieces, hash it beside
the writer, count and limit it, and hand its chunks to a writer without joining them."""
from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Iterator
from typing import BinaryIO

from config.errors import RequestTimeout, TooLarge
from storage_app import crypto
from storage_app.sniff import SNIFF_BYTES

READ_BLOCK = 1024 * 1024
KEEP_HEAD = 64 * 1024  # plaintext kept from a write, enough for image headers
WRITE_BLOCK = 1024 * 1024


class Digest:
    """SHA-256 of a stream, computed beside the writer.

    Past `THREADED_AFTER` bytes the updates move to a helper thread: hashlib releases the GIL
    on large buffers, so hashing runs on another core while this thread receives and writes.
    Chunks are handed over in batches of at least `BATCH` bytes (a hand-over costs a lock
    round trip; 64 KiB reads, as encryption makes, would spend more on those than on hashing),
    and at most `QUEUED` batches wait (bounded memory). `close()` must be called (it is, by
    `MediaStore.save_stream`), also when the write fails.
    """

    THREADED_AFTER = 4 * 1024 * 1024
    BATCH = 4 * 1024 * 1024
    QUEUED = 2

    def __init__(self, running: hashlib._Hash | None = None) -> None:
        # `running`: a hash to continue (a resumable upload's, one request after another); it
        # holds everything once `close()` returns.
        self._hash = running if running is not None else hashlib.sha256()
        self._seen = 0
        self._batch: list[bytes | memoryview] = []
        self._batched = 0
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None

    def update(self, data: bytes | memoryview) -> None:
        """`data` must not change afterwards (bytes, or a view of bytes)."""
        if self._queue is None:
            self._seen += len(data)
            if self._seen <= self.THREADED_AFTER:
                self._hash.update(data)
                return
            self._queue = queue.Queue(maxsize=self.QUEUED)
            self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
            self._thread.start()
        self._batch.append(data)
        self._batched += len(data)
        if self._batched >= self.BATCH:
            self._hand_over()

    def _hand_over(self) -> None:
        self._queue.put(self._batch)
        self._batch, self._batched = [], 0

    def _run(self) -> None:
        # One update per batch: between two updates this thread needs the GIL back, which a busy
        # request thread may hold for a whole switch interval (5 ms).
        while (batch := self._queue.get()) is not None:
            self._hash.update(batch[0] if len(batch) == 1 else b"".join(batch))

    def close(self) -> None:
        if self._thread is not None:
            if self._batch:
                self._hand_over()
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def hexdigest(self) -> str:
        self.close()
        return self._hash.hexdigest()


class HashingReader:
    """A file-like that hashes, counts and limits what is read through it.

    Raises `TooLarge` as soon as one byte more than `max_bytes` has been read, so a
    writer stops at the limit whatever the client declared. `read(n)` answers exactly `n`
    bytes (boto3 takes a short read for the end); iterating answers the source's chunks as
    they come, without joining them (for writers that take any size).
    """

    def __init__(self, source: BinaryIO, max_bytes: int, head: bytes = b"") -> None:
        self.source = source
        self.max_bytes = max_bytes
        self.head = head  # already read from `source` (to sniff), handed out first
        self.size = 0
        self.kept = b""
        self._digest = Digest()
        self._account(head)

    def _account(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise TooLarge(f"File size exceeds the maximum of {self.max_bytes} bytes.", param="file")
        self._digest.update(data)
        if len(self.kept) < KEEP_HEAD:
            self.kept += data[:KEEP_HEAD - len(self.kept)]

    def read(self, n: int = -1) -> bytes:
        """Exactly `n` bytes unless the source ends: boto3 takes a short read for EOF.

        Each piece is counted as it arrives, so a read of a large part still stops a piece
        past the limit."""
        n = n if n and n > 0 else WRITE_BLOCK
        parts: list[bytes | memoryview] = []
        if self.head:
            parts.append(self.head[:n])
            self.head = self.head[n:]
        remaining = n - len(parts[0]) if parts else n
        while remaining > 0 and (chunk := _frozen(_read_source(self.source, min(remaining, WRITE_BLOCK)))):
            self._account(chunk)
            parts.append(chunk)
            remaining -= len(chunk)
        return parts[0] if len(parts) == 1 and isinstance(parts[0], bytes) else b"".join(parts)

    def __iter__(self) -> Iterator[bytes | memoryview]:
        if self.head:
            head, self.head = self.head, b""
            yield head
        while chunk := _frozen(_read_source(self.source, WRITE_BLOCK)):
            self._account(chunk)
            yield chunk

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._digest.close()

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


def _frozen(data: bytes | bytearray | memoryview) -> bytes | memoryview:
    """`data`, or a copy of it when its owner could change it (chunks are hashed and written later)."""
    if isinstance(data, bytes) or (isinstance(data, memoryview) and isinstance(data.obj, bytes)):
        return data
    return bytes(data)


def _read_source(source: BinaryIO, n: int) -> bytes | memoryview:
    """`source.read(n)`. A socket timeout while reading a request body is the client's (408), not the
    storage's: the local backend would otherwise report it as a failed write (503)."""
    try:
        return source.read(n)
    except OSError as exc:  # Django's request.read() re-raises as UnreadablePostError, from the original
        if isinstance(exc, TimeoutError) or isinstance(exc.__cause__, TimeoutError):
            raise RequestTimeout() from exc
        raise


def read_head(source: BinaryIO, n: int = SNIFF_BYTES) -> bytes:
    """Up to `n` bytes, looping because sockets and request bodies may return short reads."""
    parts, remaining = [], n
    while remaining > 0:
        chunk = _read_source(source, remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def stream_chunks(stream: BinaryIO) -> Iterator[bytes | memoryview]:
    """A stream's chunks as it makes them, for writers that take any size (a file, a dict)."""
    if isinstance(stream, (HashingReader, crypto.EncryptingReader)):
        return iter(stream)
    return iter(lambda: stream.read(WRITE_BLOCK), b"")
