"""Slow request bodies: an idle timeout on every body read, and a minimum rate after a grace period.

A client that trickles its body holds one of the server's threads for as long as it likes
(slowloris), and no proxy shields the app when request buffering is off (README, nginx). `BodyGuard`
wraps the WSGI application. For a request with a body it

- sets a socket timeout on gunicorn's client socket (`environ["gunicorn.socket"]`): a body read
  that receives nothing for MEDIA_BODY_IDLE_TIMEOUT fails;
- wraps `wsgi.input`: after MEDIA_BODY_GRACE, the body must have arrived at MEDIA_BODY_MIN_RATE
  bytes per second on average since the request began (Apache's mod_reqtimeout `MinRate`).

Either failure raises `RequestTimeout`, answered 408 in the error envelope.

Under gunicorn, a body of declared length is read straight from the socket (`SocketBody`) once
gunicorn's own read-ahead is used up: its reader copied every byte about six times on the way (its
buffers and their slices), a fifth of a large local upload's samples (docs/benchmarks.md, row 1).

gunicorn's `Body.read(n)` blocks until `n` bytes have arrived, one recv after another, each with
the whole socket timeout: a client sending a byte now and then keeps one read going for hours,
and the rate could only be checked once it returns. So the input is read in pieces of about what
the client sends in a second, each with a deadline: the moment the body falls below the minimum
rate even if the whole piece arrived at once. A watchdog thread cuts a read past its deadline by
shrinking the socket's timeout: the recv under way ends within the idle timeout, the next at once.
"""
from __future__ import annotations

import io
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import SocketUnreader

from config.errors import RequestTimeout

PIECE_SECONDS = 1.0  # a piece is what the client sent in about this long, so deadlines stay close
MIN_PIECE = 1024  # gunicorn reads at least this much per call anyway
MAX_PIECE = 1024 * 1024
CUT_TIMEOUT = 0.001  # the socket timeout that ends a cut read's next recv at once


@dataclass(frozen=True)
class BodyLimits:
    idle_timeout: float  # seconds without a byte; 0: none
    min_rate: int  # bytes per second on average after the grace period; 0: none
    grace: float  # seconds before the rate counts

    @classmethod
    def from_settings(cls) -> BodyLimits:
        from django.conf import settings

        return cls(idle_timeout=settings.MEDIA_BODY_IDLE_TIMEOUT, min_rate=settings.MEDIA_BODY_MIN_RATE,
                   grace=settings.MEDIA_BODY_GRACE)


@dataclass(eq=False)
class _Watch:
    sock: socket.socket
    deadline: float
    fired: bool = False

    def cut(self) -> None:
        self.fired = True
        try:
            self.sock.settimeout(CUT_TIMEOUT)
        except OSError:  # the connection is already gone: the read fails by itself
            pass


@dataclass(eq=False)
class _Watchdog:
    """One thread per process that cuts body reads past their deadline."""

    _cond: threading.Condition = field(default_factory=threading.Condition)
    _watches: set[_Watch] = field(default_factory=set)
    _thread: threading.Thread | None = None

    def watch(self, sock: socket.socket, deadline: float) -> _Watch:
        watch = _Watch(sock, deadline)
        with self._cond:
            self._watches.add(watch)
            if self._thread is None:  # started in each gunicorn worker, after the fork
                self._thread = threading.Thread(target=self._run, name="body-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
        return watch

    def unwatch(self, watch: _Watch) -> None:
        with self._cond:
            self._watches.discard(watch)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for watch in [w for w in self._watches if w.deadline <= now]:
                    self._watches.discard(watch)
                    watch.cut()  # under the lock: a read that has unwatched is never cut
                nearest = min((w.deadline for w in self._watches), default=None)
                self._cond.wait(None if nearest is None else nearest - now)


_watchdog = _Watchdog()


class SocketBody:
    """gunicorn's request body of known length (`Content-Length`), read from the client socket itself.

    `read(n)` answers what gunicorn already holds of the body first (read with the headers, or by a
    `readline`, which stays gunicorn's), then receives the rest of the `n` bytes: one bytes object
    when one receive brings them, else the receives joined; each receive at most `RECV_MAX`, so a
    `read()` of a large body never allocates it whole at once. gunicorn's count of the body still
    to come is kept, so it drains the rest for keep-alive, or closes the connection after a failed
    read, as it would have. The socket's timeout applies to every receive (BodyGuard, the watchdog).
    """

    RECV_MAX = 1024 * 1024  # gunicorn's own largest receive of a body

    def __init__(self, body) -> None:  # noqa: ANN001 - gunicorn.http.body.Body over a LengthReader
        self._body = body
        self._reader = body.reader
        self._sock = body.reader.unreader.sock

    @classmethod
    def over(cls, raw):  # noqa: ANN001, ANN206 - any wsgi.input
        """A `SocketBody` for gunicorn's body of known length on a socket; `raw` itself otherwise."""
        if type(raw) is Body and type(raw.reader) is LengthReader and type(raw.reader.unreader) is SocketUnreader:
            return cls(raw)
        return raw

    @property
    def failed(self) -> bool:
        return self._body.failed

    @failed.setter
    def failed(self, value: bool) -> None:
        self._body.failed = value

    def read(self, size: int | None = -1) -> bytes:
        limit = sys.maxsize if size is None or size < 0 else size
        parts = [held] if (held := self._take_held(limit)) else []
        want, got = min(limit - len(held), self._reader.length), 0
        try:
            while got < want and (data := self._sock.recv(min(want - got, self.RECV_MAX))):
                parts.append(data)
                got += len(data)
        except BaseException:
            self._body.failed = True  # where the next request would start is unknown: gunicorn closes
            raise
        finally:
            self._reader.length -= got
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        return self._body.readline(size)

    def _take_held(self, limit: int) -> bytes:
        """Up to `limit` bytes of the body that gunicorn holds, without receiving any: first what its
        `Body` read and kept, then what its unreader read ahead (never past the body's end)."""
        body, unreader = self._body, self._reader.unreader
        kept = body.buf.seek(0, io.SEEK_END)  # the size of what gunicorn's Body holds
        read_ahead = unreader.buf.seek(0, io.SEEK_END) if self._reader.length else 0
        if not kept and not read_ahead:
            return b""
        ahead = unreader.buf.getvalue()
        counted = ahead[:self._reader.length]
        data = body.buf.getvalue() + counted
        self._reader.length -= len(counted)
        unreader.buf = io.BytesIO(ahead[len(counted):])
        unreader.buf.seek(0, io.SEEK_END)
        body.buf = io.BytesIO(data[limit:])  # taken from the reader and not handed out: where gunicorn keeps it
        body.buf.seek(0, io.SEEK_END)
        return data[:limit]


class GuardedInput:
    """`wsgi.input` with the idle timeout turned into `RequestTimeout` and the minimum rate enforced."""

    def __init__(self, raw, limits: BodyLimits, *, sock: socket.socket | None = None,  # noqa: ANN001
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._raw = raw
        self._limits = limits
        self._sock = sock
        self._clock = clock
        self._start = clock()
        self._received = 0

    def read(self, size: int | None = -1) -> bytes:
        if not self._limits.min_rate:
            return self._guarded(self._raw.read, size)
        want = sys.maxsize if size is None or size < 0 else size
        parts = []
        while want > 0 and (piece := self._guarded(self._raw.read, min(want, self._piece_size()))):
            parts.append(piece)
            want -= len(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    @property
    def received(self) -> int:
        """Body bytes read so far (request metrics and logs)."""
        return self._received

    def readline(self, size: int | None = -1) -> bytes:
        return self._guarded(self._raw.readline, size)

    def __iter__(self) -> Iterable[bytes]:
        while line := self.readline():
            yield line

    def _piece_size(self) -> int:
        elapsed = max(self._clock() - self._start, 0.001)
        return int(min(max(self._received / elapsed * PIECE_SECONDS, MIN_PIECE), MAX_PIECE))

    def _guarded(self, read: Callable[[int | None], bytes], size: int | None) -> bytes:
        watch = self._watch(size)
        try:
            data = read(size)
        except TimeoutError as exc:  # the socket timeout: idle, or cut by the watchdog
            raise self._failed(watch is not None and watch.fired) from exc
        finally:
            if watch is not None:
                _watchdog.unwatch(watch)
        if watch is not None and watch.fired:
            raise self._failed(True)
        self._received += len(data)
        if data and self._behind():  # without a socket to cut (other servers, tests): checked after the read
            raise self._failed(True)
        return data

    def _watch(self, size: int | None) -> _Watch | None:
        if self._sock is None or not self._limits.min_rate or size is None or size < 0:
            return None
        deadline = self._start + self._limits.grace + (self._received + size) / self._limits.min_rate
        return _watchdog.watch(self._sock, deadline)

    def _behind(self) -> bool:
        counted = self._clock() - self._start - self._limits.grace
        return bool(self._limits.min_rate) and counted > 0 and self._received < self._limits.min_rate * counted

    def _failed(self, too_slow: bool) -> RequestTimeout:
        # gunicorn closes a connection whose body "failed" instead of draining the rest for keep-alive.
        if hasattr(self._raw, "failed"):
            self._raw.failed = True
        if too_slow:
            return RequestTimeout(f"The request body arrived slower than {self._limits.min_rate} bytes per second.")
        return RequestTimeout(f"No part of the request body arrived for {self._limits.idle_timeout:g} seconds.")


class BodyGuard:
    """WSGI middleware: guards the body of every request that has one (see the module's docstring)."""

    def __init__(self, app: Callable, limits: BodyLimits | None = None) -> None:
        self.app = app
        self.limits = limits

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not _has_body(environ):
            return self.app(environ, start_response)
        limits = self.limits or BodyLimits.from_settings()
        sock = environ.get("gunicorn.socket")
        prior = sock.gettimeout() if sock is not None else None
        if sock is not None and limits.idle_timeout:
            sock.settimeout(limits.idle_timeout)
        environ["wsgi.input"] = GuardedInput(SocketBody.over(environ["wsgi.input"]), limits, sock=sock)
        try:
            return self.app(environ, start_response)
        finally:
            if sock is not None:  # the response is written as before (downloads are not limited here)
                _restore_timeout(sock, prior)


def _has_body(environ: dict) -> bool:
    length = environ.get("CONTENT_LENGTH") or ""
    return (length.isdigit() and int(length) > 0) or bool(environ.get("HTTP_TRANSFER_ENCODING"))


def _restore_timeout(sock: socket.socket, prior: float | None) -> None:
    try:
        sock.settimeout(prior)
    except OSError:  # closed meanwhile
        pass
