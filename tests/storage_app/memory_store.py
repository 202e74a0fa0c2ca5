"""A third backend, to prove the interface: objects are bytes in a dict of this process.

One module plus `MEDIA_STORAGE_BACKEND=tests.storage_app.memory_store.MemoryStore` is all it
takes; the storage contract tests run on it beside local and S3 (`backend` fixture). Hashing,
limits, sniffing and app encryption come from the shared helpers in `MediaStore.save_stream`.
"""
from __future__ import annotations

import itertools
import threading
import uuid
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import BinaryIO

from config.errors import NotFound
from storage_app.backends import READ_BLOCK, MediaStore, ObjectInfo, ObjectStat
from storage_app.backends.streams import stream_chunks
from storage_app.keys import validate_key


@dataclass(frozen=True)
class _Stored:
    data: bytes
    version: int
    modified: datetime
    content_type: str


class _Bucket:
    def __init__(self) -> None:
        self.objects: dict[str, _Stored] = {}
        self.partial: dict[str, tuple[str, datetime]] = {}  # write id -> (key, begun): writes under way
        self.appends: dict[str, bytearray] = {}  # resumable writes under way, by id
        self.versions = itertools.count(1)
        self.lock = threading.Lock()


# One bucket per Django storage (one per test): the bytes outlive a store rebuilt for new
# encryption settings, as files and S3 objects do.
_buckets: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_buckets_lock = threading.Lock()


class MemoryStore(MediaStore):
    name = "memory"

    def __init__(self, storage, **kwargs) -> None:  # noqa: ANN001 - Django's storage: names the bucket
        super().__init__(storage, **kwargs)
        with _buckets_lock:
            bucket = _buckets.setdefault(storage, _Bucket())
        self._objects, self._partial, self._versions = bucket.objects, bucket.partial, bucket.versions
        self._appends = bucket.appends
        self._lock = bucket.lock

    def _write(self, key: str, stream: BinaryIO, *, content_type: str) -> None:
        write_id = uuid.uuid4().hex
        with self._lock:
            self._partial[write_id] = (key, datetime.now(timezone.utc))
        try:
            data = b"".join(stream_chunks(stream))
            with self._lock:  # atomic: readers see the earlier object or the whole new one
                if write_id in self._partial:  # a sweep that removed it abandoned this write
                    self._objects[key] = _Stored(data, next(self._versions), datetime.now(timezone.utc),
                                                 content_type)
        finally:
            with self._lock:
                self._partial.pop(write_id, None)

    def _append_open(self, key: str, *, content_type: str) -> dict:
        with self._lock:
            write_id = uuid.uuid4().hex
            self._appends[write_id] = bytearray()
        return {"id": write_id, "size": 0, "content_type": content_type}

    def _append(self, key: str, state: dict, chunks: Iterator[bytes | memoryview]) -> dict:
        with self._lock:
            data = self._appends[state["id"]]
            del data[state["size"]:]  # what a failed append wrote past the state
        for chunk in chunks:
            data += chunk
        return {**state, "size": len(data)}

    def _append_finish(self, key: str, state: dict, last: bytes) -> None:
        with self._lock:
            data = self._appends.pop(state["id"])
            self._objects[key] = _Stored(bytes(data[:state["size"]]) + last, next(self._versions),
                                         datetime.now(timezone.utc), state["content_type"])

    def _append_abort(self, key: str, state: dict) -> None:
        with self._lock:
            self._appends.pop(state["id"], None)

    def append_sizes(self) -> list[int]:
        """Bytes held by resumable writes under way (for tests of their cleanup)."""
        with self._lock:
            return [len(data) for data in self._appends.values()]

    def _get(self, key: str) -> _Stored:
        stored = self._objects.get(validate_key(key))
        if stored is None:
            raise NotFound("The object does not exist.")
        return stored

    def _read(self, key: str, start: int, end: int | None) -> Iterator[bytes]:
        data = self._get(key).data
        stop = len(data) if end is None else min(end + 1, len(data))
        return (data[offset:min(offset + READ_BLOCK, stop)] for offset in range(start, stop, READ_BLOCK))

    def stat(self, key: str) -> ObjectStat:
        stored = self._get(key)
        return ObjectStat(size=len(stored.data), etag=f"{stored.version:x}", modified=stored.modified)

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(validate_key(key), None)

    def copy(self, source: str, destination: str) -> None:
        validate_key(destination)
        with self._lock:
            stored = self._get(source)
            self._objects[destination] = _Stored(stored.data, next(self._versions), datetime.now(timezone.utc),
                                                 stored.content_type)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        with self._lock:
            found = sorted((key, stored) for key, stored in self._objects.items() if key.startswith(prefix))
        for key, stored in found:
            yield ObjectInfo(key, len(stored.data), stored.modified)

    def sweep_partial(self, *, prefix: str, older_than: datetime, dry_run: bool = False,
                      keep: frozenset[str] = frozenset()) -> list[str]:
        """Writes under `prefix` begun before `older_than` and still unfinished are abandoned."""
        with self._lock:
            old = sorted((key, write_id) for write_id, (key, begun) in self._partial.items()
                         if key.startswith(prefix) and begun < older_than)
            if not dry_run:
                for _, write_id in old:
                    del self._partial[write_id]
        return [f"{key} (write {write_id})" for key, write_id in old]

    def leave_partial(self, key: str, *, begun: datetime) -> None:
        """What a worker killed mid-write leaves (for tests of `sweep_partial`)."""
        with self._lock:
            self._partial[uuid.uuid4().hex] = (validate_key(key), begun)

    def partial_keys(self) -> list[str]:
        with self._lock:
            return sorted(key for key, _ in self._partial.values())
