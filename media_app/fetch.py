"""Fetch a user-supplied `remote_url` server-side without becoming an SSRF proxy.

The rules (address policy, pinned address, redirects re-checked, one deadline, a size
cap) are `config.http_client`'s; this module adds what is particular to a media source:
a refusal names the `source.url` parameter, and only the networks the caller passes
(`MEDIA_REMOTE_FETCH_ALLOW_NETWORKS`) may be private. The view streams the body into the store.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from config import http_client
from config.http_client import CHUNK_SIZE, USER_AGENT, RemoteBody, Resolver, Target, default_resolver

__all__ = [
    "CHUNK_SIZE", "USER_AGENT", "RemoteBody", "Target", "UrlNotAllowed",
    "check_addresses", "check_url", "default_resolver", "is_address_allowed", "open_remote",
]
is_address_allowed = http_client.is_address_allowed


class UrlNotAllowed(http_client.UrlNotAllowed):
    """The remote source's URL (or a redirect target) may not be fetched."""

    message = "This URL is not allowed as a remote source."

    def __init__(self, message: str | None = None, *, code: str | None = None,
                 param: str | None = "source.url", status: int | None = None) -> None:
        super().__init__(message, code=code, param=param, status=status)


@contextmanager
def _as_source_error() -> Iterator[None]:
    """The client's refusal, as the API reports it for a media source."""
    try:
        yield
    except http_client.UrlNotAllowed as exc:
        if isinstance(exc, UrlNotAllowed):
            raise
        raise UrlNotAllowed(exc.message) from None


def check_addresses(addresses: Sequence[str], allow_networks: Sequence[str] = ()) -> tuple[str, ...]:
    """Return the canonical addresses if ALL are allowed, else raise `UrlNotAllowed`."""
    with _as_source_error():
        return http_client.check_addresses(addresses, allow_networks)


def check_url(url: str, *, allow_networks: Sequence[str] = (), resolver: Resolver | None = None,
              timeout: float = 10.0) -> Target:
    """Validate `url` and resolve + check its host, without connecting anywhere."""
    with _as_source_error():
        return http_client.check_url(url, allow_networks=allow_networks, resolver=resolver, timeout=timeout)


@contextmanager
def open_remote(url: str, *, max_bytes: int, timeout: float, allow_networks: Sequence[str] = (),
                max_redirects: int = 3, resolver: Resolver | None = None) -> Iterator[RemoteBody]:
    """Open `url` for streaming (see `config.http_client.open_url` for what it raises)."""
    policy = http_client.AddressPolicy.allowing(allow_networks)
    with _as_source_error(), http_client.open_url(
            url, max_bytes=max_bytes, timeout=timeout, policy=policy, max_redirects=max_redirects,
            resolver=resolver) as body:
        yield body
