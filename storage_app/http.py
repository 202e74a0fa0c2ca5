"""Serving stored bytes over HTTP: ranges, ETags, and safe headers for user content."""
from __future__ import annotations

import itertools
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.http import quote_etag

from config.errors import NotFound
from storage_app.backends import READ_BLOCK, MediaStore, content_disposition
from storage_app.keys import validate_key
from storage_app.sniff import is_inline_safe

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class ObjectView:
    """What a response needs to know about the object it serves."""

    key: str
    size: int  # plaintext bytes
    mime: str
    etag: str = ""  # unquoted; sha256 for rows
    encrypted: bool | None = False
    filename: str = ""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """(start, end) for one satisfiable range, None to send everything, "unsatisfiable" else.

    Multi-range requests are answered with the whole body, as RFC 9110 allows.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        length = int(last)
        if length == 0:
            return "unsatisfiable"
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return "unsatisfiable"
    return start, end


def serve_object(request: HttpRequest, store: MediaStore, obj: ObjectView, *, head: bool = False) -> HttpResponse:
    """Stream `obj` with Range, ETag/If-None-Match and headers that keep user content inert."""
    etag = quote_etag(obj.etag) if obj.etag else ""
    if etag and etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        response = HttpResponse(status=304)
        response["ETag"] = etag
        return response
    wanted = parse_range(request.headers.get("Range"), obj.size)
    if wanted == "unsatisfiable":
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{obj.size}"
        return response
    start, end = wanted if wanted else (0, obj.size - 1)
    status = 206 if wanted else 200
    if head or obj.size == 0:
        response = HttpResponse(status=status)
    elif (accel := _accel_redirect(store, obj)) is not None:
        apply_content_headers(accel, obj, etag)
        return accel  # nginx reads the file, ranges included
    elif (response := _file_response(store, obj, start, end, status)) is None:
        chunks = primed(store.open_range(obj.key, start, end, encrypted=obj.encrypted, plain_size=obj.size),
                        read_ahead=end - start + 1 > READ_BLOCK)
        response = StreamingHttpResponse(chunks, status=status)
    response["Content-Length"] = str(end - start + 1 if obj.size else 0)
    if wanted:
        response["Content-Range"] = f"bytes {start}-{end}/{obj.size}"
    apply_content_headers(response, obj, etag)
    return response


def _plain_local(store: MediaStore, obj: ObjectView) -> Path | None:
    """The file holding `obj`'s bytes as they are served: local and not encrypted; else None."""
    path = store.local_path(obj.key)
    if path is None or (obj.encrypted if obj.encrypted is not None else store.looks_encrypted(obj.key)):
        return None
    return path


def _file_response(store: MediaStore, obj: ObjectView, start: int, end: int, status: int) -> FileResponse | None:
    """A plaintext object on the local disk, as a file the WSGI server sends itself.

    Django hands `file_to_stream` to `wsgi.file_wrapper`; gunicorn then sends it with
    sendfile(2), from the descriptor's offset for Content-Length bytes, without the bytes
    passing through Python. Servers without sendfile read it in `block_size` pieces (1 MiB,
    not Django's 4 KiB). Anything else (encrypted, S3) streams through `open_range`.
    """
    path = _plain_local(store, obj)
    if path is None:
        return None
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise NotFound("The object does not exist.") from None
    response = FileResponse(RangeFile(handle, start, end - start + 1), status=status)
    response.block_size = READ_BLOCK
    return response


def _accel_redirect(store: MediaStore, obj: ObjectView) -> HttpResponse | None:
    """Behind nginx, with `MEDIA_ACCEL_REDIRECT_PREFIX` set: let nginx serve the file (README, Performance)."""
    prefix = getattr(settings, "MEDIA_ACCEL_REDIRECT_PREFIX", "")
    if not prefix or _plain_local(store, obj) is None:
        return None
    response = HttpResponse()
    response["X-Accel-Redirect"] = prefix.rstrip("/") + "/" + quote(validate_key(obj.key))
    return response


class RangeFile:
    """An open file, positioned at a range's start, that reads no further than the range's end."""

    def __init__(self, handle: BinaryIO, start: int, length: int) -> None:
        handle.seek(start)
        self._handle = handle
        self._left = length

    def fileno(self) -> int:
        return self._handle.fileno()

    def read(self, n: int | None = -1) -> bytes:
        if self._left <= 0:
            return b""
        data = self._handle.read(self._left if n is None or n < 0 else min(n, self._left))
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._handle.close()


def primed(chunks: Iterator[bytes], *, read_ahead: bool = False) -> Iterator[bytes]:
    """Pull the first chunk now, so a missing object, an outage or a failed integrity check
    becomes an error response instead of a 200 that breaks off. Later failures abort the
    connection: a client never receives bytes that failed authentication.

    With `read_ahead`, the rest is fetched by a `ReadAhead` thread while the server sends."""
    iterator = iter(chunks)
    first = next(iterator, None)
    if first is None:
        return iterator
    if read_ahead:
        return ReadAhead(iterator, first=first)
    return itertools.chain((first,), iterator)


class ReadAhead:
    """Iterates `chunks` on a helper thread, at most `depth` chunks ahead of the consumer.

    A proxied download alternates between reading a chunk from the backend (S3, or a
    decryption) and writing it to the client; with the next chunk fetched while the server
    sends the current one, the two overlap. Memory stays at `depth` + 1 chunks. Django
    closes the response's iterator when the response ends, early or not: `close()` stops
    the thread, which closes the backend stream.
    """

    def __init__(self, chunks: Iterator[bytes], *, first: bytes | None = None, depth: int = 4) -> None:
        self._pending = first
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stopped = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(chunks,), name="read-ahead", daemon=True)
        self._thread.start()

    def _run(self, chunks: Iterator[bytes]) -> None:
        try:
            for chunk in chunks:
                if not self._put((chunk, None)):
                    return
            self._put((None, None))
        except BaseException as exc:  # handed to the consumer, raised in the request's thread
            self._put((None, exc))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def _put(self, item: tuple) -> bool:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> ReadAhead:
        return self

    def __next__(self) -> bytes:
        if self._pending is not None:
            chunk, self._pending = self._pending, None
            return chunk
        if self._done:
            raise StopIteration
        chunk, error = self._queue.get()
        if chunk is not None:
            return chunk
        self._done = True
        self.close()
        if error is not None:
            raise error
        raise StopIteration

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=30)


def apply_content_headers(response: HttpResponse, obj: ObjectView, etag: str = "") -> None:
    response["Content-Type"] = obj.mime or "application/octet-stream"
    response["Accept-Ranges"] = "bytes"
    response["X-Content-Type-Options"] = "nosniff"
    if etag:
        response["ETag"] = etag
    response["Content-Disposition"] = content_disposition(obj.mime, obj.filename)
    if not is_inline_safe(obj.mime):
        # SVG, HTML, XML and anything else a browser could run: a sandboxed download.
        response["Content-Security-Policy"] = "sandbox; default-src 'none'"
