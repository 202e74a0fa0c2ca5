"""gunicorn's gthread worker, with gunicorn's own errors in the JSON envelope and closes off the main loop.

JSON errors. A request line gunicorn cannot parse, a URI over `limit_request_line` (414), header fields over
their limits (431) and the like are answered by gunicorn before any application code runs, as an
HTML page (`Worker.handle_error` writes it with `util.write_error`). Which status answers which
error stays gunicorn's decision: its answer is written to a stand-in socket, and the status line
found there is answered as the envelope. The path is often not known (a request line too long to
read), so these answers are JSON on every path.

Lingering closes. Before closing a connection gunicorn lingers up to 2 s reading what the client
still sends (so the answer is not cut by a reset), in the worker's main loop, which meanwhile accepts
nothing: a few slow clients refused mid-body (429, 408) froze /healthz for seconds. The request
thread lingers instead, and leaves the main loop a socket with nothing more to read.

No more connections than threads. gunicorn's gthread accepts every connection it can (up to
`worker_connections`, 1000) and queues it for its thread pool. Waking on the shared listening socket,
one worker can take a whole burst: 32 trickling uploads filled one worker's 32 threads while the other
sat idle, and a /healthz it also took waited seconds in the queue behind them. A worker here stops
accepting while every thread is busy, so a new connection stays in the listening socket's backlog for
a worker with a free thread. Kept-alive connections waiting for their next request hold no thread and
are not counted.
"""
from __future__ import annotations

import json
import socket
import time

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

_ERRORS = {  # status: (code, type, message)
    400: ("invalid_request", "invalid_request_error", "The request line or headers are malformed."),
    403: ("permission_denied", "permission_error", "Forbidden."),
    414: ("uri_too_long", "invalid_request_error", "The request URI is too long."),
    417: ("expectation_failed", "invalid_request_error", "The Expect header is not supported."),
    431: ("headers_too_large", "invalid_request_error", "The request's header fields are too large."),
    500: ("internal_error", "api_error", "Internal server error."),
    501: ("not_implemented", "invalid_request_error", "The request's transfer coding is not supported."),
}


LINGER_SECONDS = 2.0  # gunicorn's own (util.close_graceful)
LINGER_BYTES = 64 * 1024


class _Captured:
    """Stands in for the client socket while gunicorn writes its HTML answer."""

    def __init__(self) -> None:
        self.data = bytearray()

    def gettimeout(self) -> float:
        return 0.0  # so gunicorn's write_nonblock leaves the blocking mode alone

    def sendall(self, data: bytes) -> None:
        self.data += data


class MediastoreWorker(ThreadWorker):
    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - gunicorn's signature
        super().__init__(*args, **kwargs)
        self.in_threads = 0  # connections handed to the pool and not finished; main loop only, no lock

    def set_accept_enabled(self, enabled: bool) -> None:
        """gunicorn's loop enables accepting below `worker_connections`; here also below `threads` busy."""
        super().set_accept_enabled(enabled and self.in_threads < self.cfg.threads)

    def enqueue_req(self, conn) -> None:  # noqa: ANN001 - gunicorn's signature
        self.in_threads += 1
        super().enqueue_req(conn)
        if self.in_threads >= self.cfg.threads:
            self.set_accept_enabled(False)

    def finish_request(self, conn, fs) -> None:  # noqa: ANN001 - gunicorn's signature
        self.in_threads -= 1  # before: the connection may go straight back to the pool (enqueue_req)
        super().finish_request(conn, fs)

    def handle(self, conn):  # noqa: ANN001, ANN201 - gunicorn's signature
        keep = super().handle(conn)
        if not keep:  # False: the main loop closes the connection next (a deferred one is truthy)
            _linger(conn.sock)
        return keep

    def handle_error(self, req, client, addr, exc) -> None:  # noqa: ANN001 - gunicorn's signature
        captured = _Captured()
        super().handle_error(req, captured, addr, exc)  # logs as gunicorn does, and picks the status
        status, reason = _status_line(bytes(captured.data))
        try:
            util.write_nonblock(client, error_answer(status, reason))
        except Exception:  # noqa: BLE001 - the client may be gone, as gunicorn's own answer allows
            self.log.debug("Failed to send error message.")


def _linger(sock: socket.socket) -> None:
    """Half-close, read what the client still sends for a while, then stop reading for good."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:  # already closed
        return
    deadline, drained = time.monotonic() + LINGER_SECONDS, 0
    try:
        while drained < LINGER_BYTES and (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            data = sock.recv(4096)
            if not data:
                break
            drained += len(data)
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_RD)  # the main loop's own linger then ends at once
        sock.setblocking(True)
    except OSError:
        pass


def _status_line(answer: bytes) -> tuple[int, str]:
    """(status, reason) of `HTTP/1.1 414 URI Too Long`; 500 when there is none."""
    parts = answer.split(b"\r\n", 1)[0].split(b" ", 2)
    if len(parts) == 3 and parts[1].isdigit():
        return int(parts[1]), parts[2].decode("latin-1")
    return 500, "Internal Server Error"


def error_answer(status: int, reason: str) -> bytes:
    """A whole HTTP/1.1 answer with the envelope; the connection closes after it, as gunicorn's does."""
    code, type_, message = _ERRORS.get(status, ("invalid_request", "invalid_request_error", reason + "."))
    body = json.dumps({"error": {"message": message, "type": type_, "code": code}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body
