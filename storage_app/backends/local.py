"""The local backend: objects are files under `MEDIA_LOCAL_STORAGE_PATH` (Django's `FileSystemStorage`).

Writes go to a temp file in `.tmp/` and are renamed into place (atomic); plaintext objects can be
sent by the server itself (`local_path`: sendfile, nginx).
"""
from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from config.errors import NotFound, StorageUnavailable
from storage_app.backends.base import MediaStore, ObjectInfo, ObjectStat
from storage_app.backends.streams import READ_BLOCK, WRITE_BLOCK, stream_chunks
from storage_app.keys import validate_key

WRITEBACK_STEP = 8 * 1024 * 1024  # start writing to disk every 8 MiB, not all at the fsync
TMP_DIR = ".tmp"  # temp files; a leading-dot segment can never be a valid key
APPEND_DIR = ".uploads"  # resumable writes under way: kept until finished or aborted, never swept


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
                _write_file(tmp, stream_chunks(stream))
                os.replace(tmp, target)  # atomic: readers see the whole object or none
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"Local storage write failed: {exc.strerror}.") from exc

    def _append_open(self, key: str, *, content_type: str) -> dict:
        return {"part": f"{APPEND_DIR}/{uuid.uuid4().hex}.part", "size": 0}

    def _append(self, key: str, state: dict, chunks: Iterator[bytes | memoryview]) -> dict:
        path = self._append_path(state)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
            try:
                os.ftruncate(fd, state["size"])  # what a failed append wrote past the state goes
                os.lseek(fd, state["size"], os.SEEK_SET)
                written = _write_fd(fd, chunks)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StorageUnavailable(f"Local storage write failed: {exc.strerror}.") from exc
        return {**state, "size": state["size"] + written}

    def _append_finish(self, key: str, state: dict, last: bytes) -> None:
        state = self._append(key, state, iter((last,))) if last else state
        path, target = self._append_path(state), self.path(key)
        try:
            os.truncate(path, state["size"])
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        except OSError as exc:
            raise StorageUnavailable(f"Local storage write failed: {exc.strerror}.") from exc

    def _append_abort(self, key: str, state: dict) -> None:
        try:
            self._append_path(state).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"Local storage delete failed: {exc.strerror}.") from exc

    def _append_path(self, state: dict) -> Path:
        name = state["part"]
        if not (name.startswith(f"{APPEND_DIR}/") and name.count("/") == 1 and ".." not in name):
            raise ValueError(f"not a partial upload: {name!r}")
        return self.root / name

    def _read(self, key: str, start: int, end: int | None) -> Iterator[bytes]:
        try:
            handle = open(self.path(key), "rb")
        except FileNotFoundError:
            raise NotFound("The object does not exist.") from None
        except OSError as exc:
            raise StorageUnavailable(f"Local storage read failed: {exc.strerror}.") from exc
        return _file_chunks(handle, start, end)

    def local_path(self, key: str) -> Path:
        return self.path(key)

    def stat(self, key: str) -> ObjectStat:
        try:
            stat = self.path(key).stat()
        except FileNotFoundError:
            raise NotFound("The object does not exist.") from None
        except OSError as exc:
            raise StorageUnavailable(f"Local storage failed: {exc.strerror}.") from exc
        # os.replace gives every rewrite a new inode; mtime and size catch in-place edits.
        return ObjectStat(size=stat.st_size, etag=f"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}",
                          modified=datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc))

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

    def move(self, source: str, destination: str) -> None:
        src, dst = self.path(source), self.path(destination)
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)  # a rename: atomic, no bytes copied
        except FileNotFoundError:
            raise NotFound("The source object does not exist.") from None
        except OSError as exc:
            raise StorageUnavailable(f"Local storage move failed: {exc.strerror}.") from exc

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

    def sweep_partial(self, *, prefix: str, older_than: datetime, dry_run: bool = False,
                      keep: frozenset[str] = frozenset()) -> list[str]:
        """The `.part` files of unfinished writes. They name no key, so a sweep of any prefix
        takes them all; one still being written has a fresh modification time."""
        found = []
        for path in sorted((self.root / TMP_DIR).glob("*.part")):
            try:
                if datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc) >= older_than:
                    continue
                if not dry_run:
                    path.unlink()
            except FileNotFoundError:
                continue  # its write finished (renamed) or failed (unlinked) meanwhile
            except OSError as exc:
                raise StorageUnavailable(f"Local storage sweep failed: {exc.strerror}.") from exc
            found.append(f"{TMP_DIR}/{path.name}")
        return found



def _write_file(path: Path, chunks: Iterator[bytes | memoryview]) -> None:
    """Write `chunks` to a new file in ~1 MiB `writev` batches (no joining), then fsync it.

    Every `WRITEBACK_STEP` bytes, writeback of what was just written starts (see
    `_start_writeback`), so the final fsync does not wait for the whole file.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        _write_fd(fd, chunks)
    finally:
        os.close(fd)


def _write_fd(fd: int, chunks: Iterator[bytes | memoryview]) -> int:
    """Write `chunks` at the descriptor's position, fsync, and answer how many bytes went."""
    start = os.lseek(fd, 0, os.SEEK_CUR)
    batch: list[bytes | memoryview] = []
    batched = written = flushed = 0
    for chunk in chunks:
        batch.append(chunk)
        batched += len(chunk)
        if batched >= WRITE_BLOCK or len(batch) >= 256:
            _write_all(fd, batch)
            written, batch, batched = written + batched, [], 0
            if written - flushed >= WRITEBACK_STEP:
                _start_writeback(fd, start + flushed, written - flushed)
                flushed = written
    _write_all(fd, batch)
    os.fsync(fd)
    return written + batched


def _write_all(fd: int, buffers: list[bytes | memoryview]) -> None:
    views = [memoryview(b) for b in buffers if len(b)]
    while views:
        done = os.writev(fd, views)  # may write less than asked: drop what went, retry the rest
        while views and done >= len(views[0]):
            done -= len(views.pop(0))
        if views and done:
            views[0] = views[0][done:]


def _writeback_starter() -> Callable[[int, int, int], None]:
    """Linux's sync_file_range(SYNC_FILE_RANGE_WRITE): start writing a stretch of a file to disk
    now, without waiting, as PostgreSQL's `*_flush_after` settings do. A no-op elsewhere; errors
    are ignored (the final fsync reports real ones)."""
    if not sys.platform.startswith("linux"):
        return lambda fd, offset, length: None
    try:
        import ctypes

        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return lambda fd, offset, length: None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    sync_file_range_write = 2
    return lambda fd, offset, length: function(fd, offset, length, sync_file_range_write)


_start_writeback = _writeback_starter()


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
