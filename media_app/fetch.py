"""Fetch a user-supplied `remote_url` server-side without becoming an SSRF proxy.

The rules, in order, for the first URL and for every redirect target:

1. Only `http`/`https`, a host is required, userinfo (`user:pw@`) is refused.
2. A host that ends in a number is an IPv4 literal, parsed here the way browsers
   parse it (`2130706433`, `0177.0.0.1`, `0x7f.1` are all 127.0.0.1); it is never
   handed to DNS. Other names are resolved ONCE.
3. EVERY resolved address must be allowed (`check_addresses`): loopback, private,
   link-local (cloud metadata), CGNAT, multicast, reserved, unspecified, site-local
   and anything not globally routable are refused, also when hidden in an IPv6
   form (IPv4-mapped, IPv4-compatible, 6to4, Teredo, NAT64). `allow_networks`
   (CIDRs, off by default) lets chosen ranges through.
4. The TCP connection goes to the checked address itself, so a second DNS answer
   (DNS rebinding) can never change where we connect. The Host header is the
   original host, and for https the certificate is verified against the original
   hostname (SNI + hostname check).

One deadline (`timeout`) bounds the whole fetch: resolution, connect, TLS, every
read of the headers and the body, and all redirects. Every socket operation gets
only the time that is left, so a server dripping one byte a second is cut off.
The body is streamed; more than `max_bytes` raises `TooLarge`, whatever the
server declared. Every failure is a `ServiceError`; no raw exception escapes.

No Django here: only the domain exceptions from `config.errors`.
"""
from __future__ import annotations

import http.client
import io
import ipaddress
import re
import socket
import ssl
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence, Union
from urllib.parse import quote, urljoin, urlsplit

from config.errors import InvalidRequest, RemoteFetchFailed, ServiceError, TooLarge

__all__ = [
    "CHUNK_SIZE", "USER_AGENT", "RemoteBody", "Target", "UrlNotAllowed",
    "check_addresses", "check_url", "default_resolver", "is_address_allowed",
    "open_remote",
]

USER_AGENT = "Mediastore/1.0"
CHUNK_SIZE = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}

Resolver = Callable[[str, int], "list[str]"]
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

# Special-purpose ranges refused whatever this Python's `ipaddress` tables say
# (they differ between patch releases): CGNAT, IETF protocol assignments,
# benchmarking, "this network", class E, and the IPv6 counterparts.
_ALWAYS_DENIED = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "240.0.0.0/4",
    "100::/64", "2001::/23", "2001:db8::/32", "64:ff9b:1::/48", "fc00::/7", "fec0::/10",
))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")          # well-known NAT64 prefix
_HOSTNAME_RE = re.compile(r"[a-z0-9_.-]+")              # after IDNA encoding
_IPV4_PART_RE = re.compile(r"0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*")


class UrlNotAllowed(InvalidRequest):
    """The URL (or a redirect target) may not be fetched: scheme, form or address."""

    code = "url_not_allowed"
    message = "This URL is not allowed as a remote source."

    def __init__(self, message: str | None = None, *, code: str | None = None,
                 param: str | None = "source.url", status: int | None = None) -> None:
        super().__init__(message, code=code, param=param, status=status)


# --------------------------------------------------------------------------- addresses

def _forbidden(addr: IPAddress) -> bool:
    """True when `addr` is not a plain, globally routable unicast address."""
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if (not addr.is_global or addr.is_private or addr.is_loopback or addr.is_link_local
            or addr.is_multicast or addr.is_reserved or addr.is_unspecified
            or any(addr in net for net in _ALWAYS_DENIED)):
        return True
    if addr.version == 4:
        return False
    if addr.is_site_local or addr.scope_id:
        return True
    # IPv6 forms that carry an IPv4 address the packets may end up at.
    embedded: list[ipaddress.IPv4Address] = []
    if addr.sixtofour is not None:
        embedded.append(addr.sixtofour)
    if addr.teredo is not None:
        embedded.extend(addr.teredo)
    if int(addr) >> 32 == 0 or addr in _NAT64:        # IPv4-compatible ::a.b.c.d, NAT64
        embedded.append(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    return any(_forbidden(v4) for v4 in embedded)


def _parse_networks(allow_networks: Sequence[str] | str) -> tuple[Network, ...]:
    if isinstance(allow_networks, str):                 # "a/8, b/16" from an env setting
        allow_networks = [n for n in re.split(r"[\s,]+", allow_networks) if n]
    try:
        return tuple(ipaddress.ip_network(str(n).strip(), strict=False) for n in allow_networks)
    except ValueError as exc:                           # a configuration error, not the user's
        raise ValueError(f"Invalid entry in MEDIA_REMOTE_FETCH_ALLOW_NETWORKS: {exc}") from exc


def _address_allowed(addr: IPAddress, networks: tuple[Network, ...]) -> bool:
    candidates = [addr]
    if addr.version == 6 and addr.ipv4_mapped is not None:
        candidates.append(addr.ipv4_mapped)
    if any(c in net for c in candidates for net in networks):
        return True
    return not _forbidden(addr)


def is_address_allowed(address: str, allow_networks: Sequence[str] = ()) -> bool:
    """Whether one IP address (string) may be connected to."""
    try:
        addr = ipaddress.ip_address(str(address))
    except ValueError:
        return False
    return _address_allowed(addr, _parse_networks(allow_networks))


def _check_addresses(addresses: Sequence[str], networks: tuple[Network, ...]) -> tuple[str, ...]:
    checked: list[str] = []
    for address in addresses:
        try:
            addr = ipaddress.ip_address(str(address))
        except ValueError:
            raise UrlNotAllowed("The host did not resolve to a valid address.") from None
        if not _address_allowed(addr, networks):
            # Do not echo the address: it may describe the internal network.
            raise UrlNotAllowed("The host resolves to an address that is not allowed.")
        if str(addr) not in checked:
            checked.append(str(addr))
    if not checked:
        raise RemoteFetchFailed("The remote host could not be resolved.")
    return tuple(checked)


def check_addresses(addresses: Sequence[str], allow_networks: Sequence[str] = ()) -> tuple[str, ...]:
    """Return the canonical addresses if ALL are allowed, else raise `UrlNotAllowed`."""
    return _check_addresses(addresses, _parse_networks(allow_networks))


# --------------------------------------------------------------------------- URLs

@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`addresses`) and what to say (`host`, `path`)."""

    url: str                      # without fragment
    scheme: str
    host: str                     # ASCII hostname or canonical IP, no brackets
    port: int
    path: str                     # request target: path + query
    addresses: tuple[str, ...]    # checked addresses, to connect to in this order

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def _ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """Parse a host that ends in a number as IPv4 (WHATWG URL rules), else None.

    `2130706433`, `0177.0.0.1`, `0x7f.1` and `127.1` all give 127.0.0.1. Such a
    host is never sent to DNS; an invalid one (`1.2.3.4.5`, `0x7f.999`) is refused.
    """
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not (parts[-1].isdigit() or parts[-1].startswith("0x")):
        return None
    if len(parts) > 4 or not all(_IPV4_PART_RE.fullmatch(p) for p in parts):
        raise UrlNotAllowed("The URL host is not a valid IPv4 address.")
    numbers = []
    for part in parts:
        if part.startswith("0x"):
            numbers.append(int(part[2:] or "0", 16))
        elif part.startswith("0"):
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part))
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        raise UrlNotAllowed("The URL host is not a valid IPv4 address.")
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _split_url(url: str) -> tuple[str, str, int, str, str, IPAddress | None]:
    """-> (scheme, host, port, path, url_without_fragment, ip_literal_or_None)."""
    if not isinstance(url, str) or not url.strip():
        raise UrlNotAllowed("A URL is required.")
    url = url.strip()
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise UrlNotAllowed("The URL contains control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlNotAllowed("The URL is malformed.") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UrlNotAllowed("Only http and https URLs can be fetched.")
    netloc = parts.netloc
    if "@" in netloc:
        raise UrlNotAllowed("URLs with credentials (user:password@) are not allowed.")
    if "\\" in netloc or not parts.hostname:
        raise UrlNotAllowed("The URL has no valid host.")
    hostname = parts.hostname                          # lower-cased, brackets removed
    literal: IPAddress | None = None
    if ":" in hostname:                                # urlsplit only allows this bracketed
        try:
            literal = ipaddress.IPv6Address(hostname)
        except ValueError:
            raise UrlNotAllowed("The URL host is not a valid IPv6 address.") from None
        host = str(literal)
    else:
        try:
            host = hostname.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise UrlNotAllowed("The URL host is not a valid hostname.") from None
        if not _HOSTNAME_RE.fullmatch(host):
            raise UrlNotAllowed("The URL host is not a valid hostname.")
        literal = _ipv4_literal(host)
        if literal is not None:
            host = str(literal)
    if port is None:
        port = DEFAULT_PORTS[scheme]
    elif port == 0:
        raise UrlNotAllowed("The URL port is not valid.")
    # Percent-encode what may not go on the request line (spaces, non-ASCII).
    safe = "!#$%&'()*+,/:;=?@[]~"
    path = quote(parts.path or "/", safe=safe)
    if parts.query:
        path += "?" + quote(parts.query, safe=safe)
    bracketed = f"[{host}]" if ":" in host else host
    clean = f"{scheme}://{bracketed}" + ("" if port == DEFAULT_PORTS[scheme] else f":{port}") + path
    return scheme, host, port, path, clean, literal


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("remote fetch deadline exceeded")
    return left


def default_resolver(host: str, port: int) -> list[str]:
    """All addresses of `host` (every family), in resolver order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _resolve(resolver: Resolver, host: str, port: int, deadline: float) -> list[str]:
    """Call the resolver once, giving up at the deadline (getaddrinfo has no timeout)."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = resolver(host, port)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="mediastore-resolve", daemon=True)
    worker.start()
    worker.join(_remaining(deadline))
    if worker.is_alive():
        raise TimeoutError("name resolution timed out")
    if "error" in outcome:
        exc = outcome["error"]
        if isinstance(exc, (ServiceError, TimeoutError)):
            raise exc
        raise RemoteFetchFailed("The remote host could not be resolved.") from exc
    return list(outcome["value"] or ())


def _check_url(url: str, networks: tuple[Network, ...], resolver: Resolver,
               deadline: float) -> Target:
    scheme, host, port, path, clean, literal = _split_url(url)
    if literal is not None:
        addresses = [str(literal)]
    else:
        addresses = _resolve(resolver, host, port, deadline)
    checked = _check_addresses(addresses, networks)
    return Target(url=clean, scheme=scheme, host=host, port=port, path=path, addresses=checked)


def check_url(url: str, *, allow_networks: Sequence[str] = (), resolver: Resolver | None = None,
              timeout: float = 10.0) -> Target:
    """Validate `url` and resolve + check its host, without connecting anywhere."""
    networks = _parse_networks(allow_networks)
    with _network_errors():
        return _check_url(url, networks, resolver or default_resolver, time.monotonic() + timeout)


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


class _DeadlineReader(io.RawIOBase):
    """Raw reader over a socket: every recv gets only the time left until the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock, self._deadline = sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self._sock.settimeout(_remaining(self._deadline))
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """The part of a socket http.client uses (sendall, makefile, close), deadline-bound.

    `close()` is a no-op: http.client closes the connection's socket while the
    response still reads from it; the fetch closes the real socket when it is done.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock, self._deadline = sock, deadline

    def sendall(self, data: bytes) -> None:
        self.sock.settimeout(_remaining(self._deadline))
        self.sock.sendall(data)

    def makefile(self, mode: str = "rb", *args, **kwargs) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self.sock, self._deadline))

    def close(self) -> None:
        pass


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to `target.host` whose TCP socket goes to a checked IP."""

    def __init__(self, target: Target, deadline: float) -> None:
        super().__init__(target.host, target.port)
        self.target, self.deadline = target, deadline
        self.raw_sock: socket.socket | None = None

    def connect(self) -> None:
        last_error: OSError | None = None
        for ip in self.target.addresses:               # all of them passed the check
            try:
                sock = _connect((ip, self.target.port), _remaining(self.deadline))
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
                sock.settimeout(_remaining(self.deadline))   # the handshake as a whole
                sock = _ssl_context().wrap_socket(sock, server_hostname=self.target.host)
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


@contextmanager
def _network_errors() -> Iterator[None]:
    """Turn socket / TLS / HTTP errors into `RemoteFetchFailed`."""
    try:
        yield
    except ServiceError:
        raise
    except TimeoutError as exc:
        raise RemoteFetchFailed("The remote server did not answer in time.",
                                code="remote_fetch_timeout") from exc
    except ssl.SSLCertVerificationError as exc:
        raise RemoteFetchFailed("The remote server's TLS certificate is not valid "
                                "for this host.") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise RemoteFetchFailed() from exc


# --------------------------------------------------------------------------- body

class RemoteBody:
    """The streamed body of a successful fetch (file-like `read`, iterable chunks)."""

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
        with _network_errors():
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


# --------------------------------------------------------------------------- fetch

def _request(target: Target, deadline: float) -> tuple[_PinnedConnection, http.client.HTTPResponse]:
    conn = _PinnedConnection(target, deadline)
    try:
        conn.request("GET", target.path, headers={
            "Host": target.host_header,
            "User-Agent": USER_AGENT,
            "Accept": "*/*",
            "Accept-Encoding": "identity",
            "Connection": "close",
        })
        return conn, conn.getresponse()
    except BaseException:
        conn.shutdown()
        raise


@contextmanager
def open_remote(url: str, *, max_bytes: int, timeout: float, allow_networks: Sequence[str] = (),
                max_redirects: int = 3, resolver: Resolver | None = None) -> Iterator[RemoteBody]:
    """Open `url` for streaming; the `with` block must read the body before the deadline.

    Raises `UrlNotAllowed` (400) for a refused URL or redirect target, `TooLarge`
    (413) past `max_bytes`, `RemoteFetchFailed` (502) otherwise, with code
    `remote_fetch_timeout` once `timeout` seconds have passed since the call and
    `too_many_redirects` after more than `max_redirects` redirects.
    """
    if max_bytes < 0 or timeout <= 0:
        raise ValueError("max_bytes must be >= 0 and timeout > 0")
    deadline = time.monotonic() + timeout
    networks = _parse_networks(allow_networks)
    resolver = resolver or default_resolver
    current = url
    redirects = 0
    while True:
        with _network_errors():
            target = _check_url(current, networks, resolver, deadline)
            conn, response = _request(target, deadline)
        location = response.getheader("Location")
        if response.status in REDIRECT_STATUSES and location:
            conn.shutdown(response)
            if redirects >= max_redirects:
                raise RemoteFetchFailed(f"More than {max_redirects} redirects.",
                                        code="too_many_redirects")
            redirects += 1
            current = urljoin(target.url, location.strip())
            continue
        break
    try:
        if not 200 <= response.status < 300:
            error = RemoteFetchFailed(f"The remote server answered HTTP {response.status}.")
            error.upstream_status = response.status
            raise error
        body = RemoteBody(response, url=target.url, max_bytes=max_bytes)
        if body.declared_length is not None and body.declared_length > max_bytes:
            raise TooLarge(f"The remote file is larger than {max_bytes} bytes.")
        yield body
    finally:
        conn.shutdown(response)
