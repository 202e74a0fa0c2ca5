"""The one outbound HTTP client: a GET (or a webhook's POST) with a deadline, a size cap and an address policy.

Every URL, the first and each redirect target, is checked by `config.url_policy` (scheme,
form, and every resolved address against the `AddressPolicy`). The TCP connection then goes
to the checked address itself, so a second DNS answer (DNS rebinding) can never change where
we connect. The Host header is the original host, and for https the certificate is verified
against the original hostname (SNI + hostname check).

One deadline (`timeout`) bounds the whole exchange: resolution, connect, TLS, every
read of the headers and the body, and all redirects. Every socket operation gets
only the time that is left, so a server dripping one byte a second is cut off.
The body is streamed; more than `max_bytes` raises `TooLarge`, whatever the
server declared. Every failure is a `ServiceError` (`UrlNotAllowed` 400,
`TooLarge` 413, `RemoteFetchFailed` 502); no raw exception escapes.

Config is the bottom layer: nothing here imports an app.
"""
from __future__ import annotations

import http.client
import io
import json
import socket
import ssl
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from config.errors import RemoteFetchFailed, TooLarge
from config.url_policy import (  # noqa: F401 - the policy's names, for callers of the client
    DEFAULT_PORTS, AddressPolicy, IPAddress, Network, Resolver, Target, UrlNotAllowed, check_addresses, check_url,
    check_target, default_resolver, is_address_allowed, network_errors, parse_networks, time_left,
)

CHUNK_SIZE = 64 * 1024
USER_AGENT = "Mediastore/1.0"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

# --------------------------------------------------------------------------- connections

def _connect(address: tuple[str, int], timeout: float) -> socket.socket:
    """Open the TCP connection (a seam for tests: nothing else connects)."""
    return socket.create_connection(address, timeout=timeout)


_ssl_context_cache: ssl.SSLContext | None = None


def _ssl_context() -> ssl.SSLContext:
    """Verifying client context (CERT_REQUIRED + check_hostname), built once."""
    global _ssl_context_cache
    if _ssl_context_cache is None:
        _ssl_context_cache = ssl.create_default_context()
    return _ssl_context_cache


def _unverified_ssl_context() -> ssl.SSLContext:
    """For an operator who turned verification off (OIDC_VERIFY_SSL=false), never for users' URLs."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _DeadlineReader(io.RawIOBase):
    """Raw reader over a socket: every recv gets only the time left until the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock, self._deadline = sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001 - a writable buffer
        self._sock.settimeout(time_left(self._deadline))
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """The part of a socket http.client uses (sendall, makefile, close), deadline-bound.

    `close()` is a no-op: http.client closes the connection's socket while the
    response still reads from it; the exchange closes the real socket when it is done.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock, self._deadline = sock, deadline

    def sendall(self, data: bytes) -> None:
        self.sock.settimeout(time_left(self._deadline))
        self.sock.sendall(data)

    def makefile(self, mode: str = "rb", *args, **kwargs) -> io.BufferedReader:  # noqa: ANN002, ANN003
        return io.BufferedReader(_DeadlineReader(self.sock, self._deadline))

    def close(self) -> None:
        pass


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to `target.host` whose TCP socket goes to a checked IP."""

    def __init__(self, target: Target, deadline: float, verify_tls: bool) -> None:
        super().__init__(target.host, target.port)
        self.target, self.deadline, self.verify_tls = target, deadline, verify_tls
        self.raw_sock: socket.socket | None = None

    def connect(self) -> None:
        last_error: OSError | None = None
        for ip in self.target.addresses:               # all of them passed the check
            try:
                sock = _connect((ip, self.target.port), time_left(self.deadline))
                break
            except TimeoutError:
                raise
            except OSError as exc:
                last_error = exc
        else:
            raise last_error or OSError("no address to connect to")
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.target.scheme == "https":
                sock.settimeout(time_left(self.deadline))   # the handshake as a whole
                context = _ssl_context() if self.verify_tls else _unverified_ssl_context()
                sock = context.wrap_socket(sock, server_hostname=self.target.host)
        except BaseException:
            sock.close()
            raise
        self.raw_sock = sock
        self.sock = _DeadlineSocket(sock, self.deadline)

    def shutdown(self, response: http.client.HTTPResponse | None = None) -> None:
        for closer in (getattr(response, "close", None), self.close,
                       getattr(self.raw_sock, "close", None)):
            if closer is not None:
                try:
                    closer()
                except Exception:  # closing is best effort
                    pass
        self.raw_sock = None


# --------------------------------------------------------------------------- body

class RemoteBody:
    """The streamed body of a successful response (file-like `read`, iterable chunks)."""

    def __init__(self, response: http.client.HTTPResponse, *, url: str, max_bytes: int,
                 chunk_size: int = CHUNK_SIZE) -> None:
        self._response = response
        self._max_bytes = max_bytes
        self._chunk_size = chunk_size
        self.url = url
        self.status: int = response.status
        self.content_type: str | None = response.getheader("Content-Type")
        # http.client's framing length: None when chunked or absent/invalid.
        self.declared_length: int | None = response.length
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        """Up to `n` bytes (all remaining if n < 0); b"" at end of body."""
        if n is None or n < 0:
            return b"".join(iter(self))
        if n == 0:
            return b""
        want = min(n, self._max_bytes - self.bytes_read + 1)   # one past the limit at most
        with network_errors():
            data = self._response.read(want)
        self.bytes_read += len(data)
        if self.bytes_read > self._max_bytes:
            raise TooLarge(f"The remote file is larger than {self._max_bytes} bytes.")
        if not data and self.declared_length is not None and self.bytes_read < self.declared_length:
            raise RemoteFetchFailed("The remote server closed the connection before "
                                    "sending the whole file.")
        return data

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(self._chunk_size):
            yield chunk


# --------------------------------------------------------------------------- the GET

def _request(target: Target, deadline: float, headers: Mapping[str, str], verify_tls: bool, *,
             method: str = "GET", body: bytes | None = None) -> tuple[_PinnedConnection, http.client.HTTPResponse]:
    conn = _PinnedConnection(target, deadline, verify_tls)
    try:
        conn.request(method, target.path, body=body, headers={
            "User-Agent": USER_AGENT, "Accept": "*/*", **headers,
            "Host": target.host_header, "Accept-Encoding": "identity", "Connection": "close",
        })
        return conn, conn.getresponse()
    except BaseException:
        conn.shutdown()
        raise


@contextmanager
def open_url(url: str, *, max_bytes: int, timeout: float, policy: AddressPolicy = AddressPolicy(),
             max_redirects: int = 3, resolver: Resolver | None = None,
             headers: Mapping[str, str] | None = None, verify_tls: bool = True) -> Iterator[RemoteBody]:
    """GET `url` for streaming; the `with` block must read the body before the deadline.

    Raises `UrlNotAllowed` (400) for a refused URL or redirect target, `TooLarge`
    (413) past `max_bytes`, `RemoteFetchFailed` (502) otherwise, with code
    `remote_fetch_timeout` once `timeout` seconds have passed since the call and
    `too_many_redirects` after more than `max_redirects` redirects. Every redirect
    target is checked again, as the first URL was.
    """
    if max_bytes < 0 or timeout <= 0:
        raise ValueError("max_bytes must be >= 0 and timeout > 0")
    deadline = time.monotonic() + timeout
    current, redirects = url, 0
    while True:
        with network_errors():
            target = check_target(current, policy, resolver or default_resolver, deadline)
            conn, response = _request(target, deadline, headers or {}, verify_tls)
        location = response.getheader("Location")
        if response.status not in REDIRECT_STATUSES or not location:
            break
        conn.shutdown(response)
        if redirects >= max_redirects:
            raise RemoteFetchFailed(f"More than {max_redirects} redirects.", code="too_many_redirects")
        redirects += 1
        current = urljoin(target.url, location.strip())
    try:
        yield _body(response, target, max_bytes)
    finally:
        conn.shutdown(response)


def _body(response: http.client.HTTPResponse, target: Target, max_bytes: int) -> RemoteBody:
    if not 200 <= response.status < 300:
        error = RemoteFetchFailed(f"The remote server answered HTTP {response.status}.")
        error.upstream_status = response.status
        raise error
    body = RemoteBody(response, url=target.url, max_bytes=max_bytes)
    if body.declared_length is not None and body.declared_length > max_bytes:
        raise TooLarge(f"The remote file is larger than {max_bytes} bytes.")
    return body


def get_json(url: str, *, max_bytes: int, timeout: float, policy: AddressPolicy = AddressPolicy(),
             max_redirects: int = 0, verify_tls: bool = True) -> Any:
    """GET `url` and decode its JSON body, all within `timeout`; `RemoteFetchFailed` if not JSON."""
    with open_url(url, max_bytes=max_bytes, timeout=timeout, policy=policy, max_redirects=max_redirects,
                  headers={"Accept": "application/json"}, verify_tls=verify_tls) as body:
        data = body.read()
    try:
        return json.loads(data)
    except ValueError:
        raise RemoteFetchFailed("The remote server's answer is not JSON.") from None


@dataclass(frozen=True)
class PostResult:
    status: int
    body: bytes  # the first `max_bytes` of the answer, for the sender's records


def post(url: str, *, body: bytes, headers: Mapping[str, str], timeout: float,
         policy: AddressPolicy = AddressPolicy(), resolver: Resolver | None = None,
         max_bytes: int = 4096, verify_tls: bool = True) -> PostResult:
    """POST `body` to `url` under the same rules and one deadline as a GET; redirects are not followed.

    Any HTTP answer is returned (the caller judges the status); a refused URL raises `UrlNotAllowed`,
    a network failure or the deadline `RemoteFetchFailed`."""
    if timeout <= 0:
        raise ValueError("timeout must be > 0")
    deadline = time.monotonic() + timeout
    with network_errors():
        target = check_target(url, policy, resolver or default_resolver, deadline)
        conn, response = _request(target, deadline, {"Content-Type": "application/json", **headers}, verify_tls,
                                  method="POST", body=body)
        try:
            return PostResult(status=response.status, body=response.read(max_bytes))
        finally:
            conn.shutdown(response)
