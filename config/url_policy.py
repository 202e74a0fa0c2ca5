"""Which URLs and addresses the outbound HTTP client (`config.http_client`) may reach.

The rules, in order, for the first URL and for every redirect target:

1. Only `http`/`https`, a host is required, userinfo (`user:pw@`) is refused.
2. A host that ends in a number is an IPv4 literal, parsed here the way browsers
   parse it (`2130706433`, `0177.0.0.1`, `0x7f.1` are all 127.0.0.1); it is never
   handed to DNS. Other names are resolved ONCE.
3. EVERY resolved address must pass the `AddressPolicy`: loopback, private,
   link-local (cloud metadata), CGNAT, multicast, reserved, unspecified, site-local
   and anything not globally routable are refused, also when hidden in an IPv6
   form (IPv4-mapped, IPv4-compatible, 6to4, Teredo, NAT64). The policy's
   `allow_networks` (CIDRs, from a setting) lets chosen ranges through; `allow_any`
   is for a URL the operator configured (an identity provider on the LAN).

Config is the bottom layer: nothing here imports an app.
"""
from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from config.errors import InvalidRequest, RemoteFetchFailed, ServiceError

DEFAULT_PORTS = {"http": 80, "https": 443}

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

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
    message = "This URL is not allowed."
    refusal = "ssrf"


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


def parse_networks(networks: Sequence[str] | str) -> tuple[Network, ...]:
    """CIDRs from a list or a "a/8, b/16" setting; ValueError (a configuration error) if bad."""
    if isinstance(networks, str):
        networks = [n for n in re.split(r"[\s,]+", networks) if n]
    try:
        return tuple(ipaddress.ip_network(str(n).strip(), strict=False) for n in networks)
    except ValueError as exc:
        raise ValueError(f"Invalid network in an address allow list: {exc}") from exc


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses may be connected to: public ones, `allow_networks`, or (allow_any) all."""

    allow_networks: tuple[Network, ...] = ()
    allow_any: bool = False

    @classmethod
    def allowing(cls, networks: Sequence[str] | str = ()) -> AddressPolicy:
        return cls(allow_networks=parse_networks(networks))

    def allows(self, addr: IPAddress) -> bool:
        if self.allow_any:
            return True
        candidates = [addr]
        if addr.version == 6 and addr.ipv4_mapped is not None:
            candidates.append(addr.ipv4_mapped)
        if any(c in net for c in candidates for net in self.allow_networks):
            return True
        return not _forbidden(addr)

    def check(self, addresses: Sequence[str]) -> tuple[str, ...]:
        """The canonical addresses if ALL are allowed, else `UrlNotAllowed`."""
        checked: list[str] = []
        for address in addresses:
            try:
                addr = ipaddress.ip_address(str(address))
            except ValueError:
                raise UrlNotAllowed("The host did not resolve to a valid address.") from None
            if not self.allows(addr):
                # Do not echo the address: it may describe the internal network.
                raise UrlNotAllowed("The host resolves to an address that is not allowed.")
            if str(addr) not in checked:
                checked.append(str(addr))
        if not checked:
            raise RemoteFetchFailed("The remote host could not be resolved.")
        return tuple(checked)


def is_address_allowed(address: str, allow_networks: Sequence[str] | str = ()) -> bool:
    """Whether one IP address (string) may be connected to."""
    try:
        addr = ipaddress.ip_address(str(address))
    except ValueError:
        return False
    return AddressPolicy.allowing(allow_networks).allows(addr)


def check_addresses(addresses: Sequence[str], allow_networks: Sequence[str] | str = ()) -> tuple[str, ...]:
    """Return the canonical addresses if ALL are allowed, else raise `UrlNotAllowed`."""
    return AddressPolicy.allowing(allow_networks).check(addresses)


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
    numbers = [int(p[2:] or "0", 16) if p.startswith("0x") else int(p, 8) if p.startswith("0") else int(p)
               for p in parts]
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        raise UrlNotAllowed("The URL host is not a valid IPv4 address.")
    return ipaddress.IPv4Address(last + sum(n << (8 * (3 - i)) for i, n in enumerate(head)))


def _host_of(hostname: str) -> tuple[str, IPAddress | None]:
    """(ASCII host or canonical IP, the IP literal or None) of urlsplit's lower-cased hostname."""
    if ":" in hostname:                                # urlsplit only allows this bracketed
        try:
            literal = ipaddress.IPv6Address(hostname)
        except ValueError:
            raise UrlNotAllowed("The URL host is not a valid IPv6 address.") from None
        return str(literal), literal
    try:
        host = hostname.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UrlNotAllowed("The URL host is not a valid hostname.") from None
    if not _HOSTNAME_RE.fullmatch(host):
        raise UrlNotAllowed("The URL host is not a valid hostname.")
    literal = _ipv4_literal(host)
    return (str(literal), literal) if literal is not None else (host, None)


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
    if "@" in parts.netloc:
        raise UrlNotAllowed("URLs with credentials (user:password@) are not allowed.")
    if "\\" in parts.netloc or not parts.hostname:
        raise UrlNotAllowed("The URL has no valid host.")
    host, literal = _host_of(parts.hostname)
    if port is None:
        port = DEFAULT_PORTS[scheme]
    elif port == 0:
        raise UrlNotAllowed("The URL port is not valid.")
    # Percent-encode what may not go on the request line (spaces, non-ASCII).
    safe = "!#$%&'()*+,/:;=?@[]~"
    path = quote(parts.path or "/", safe=safe) + ("?" + quote(parts.query, safe=safe) if parts.query else "")
    bracketed = f"[{host}]" if ":" in host else host
    clean = f"{scheme}://{bracketed}" + ("" if port == DEFAULT_PORTS[scheme] else f":{port}") + path
    return scheme, host, port, path, clean, literal


def time_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("outbound HTTP deadline exceeded")
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
    worker.join(time_left(deadline))
    if worker.is_alive():
        raise TimeoutError("name resolution timed out")
    if "error" in outcome:
        exc = outcome["error"]
        if isinstance(exc, (ServiceError, TimeoutError)):
            raise exc
        raise RemoteFetchFailed("The remote host could not be resolved.") from exc
    return list(outcome["value"] or ())


def check_target(url: str, policy: AddressPolicy, resolver: Resolver, deadline: float) -> Target:
    scheme, host, port, path, clean, literal = _split_url(url)
    addresses = [str(literal)] if literal is not None else _resolve(resolver, host, port, deadline)
    return Target(url=clean, scheme=scheme, host=host, port=port, path=path,
                  addresses=policy.check(addresses))


def check_url(url: str, *, allow_networks: Sequence[str] | str = (), resolver: Resolver | None = None,
              timeout: float = 10.0) -> Target:
    """Validate `url` and resolve + check its host, without connecting anywhere."""
    policy = AddressPolicy.allowing(allow_networks)
    with network_errors():
        return check_target(url, policy, resolver or default_resolver, time.monotonic() + timeout)


@contextmanager
def network_errors() -> Iterator[None]:
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
