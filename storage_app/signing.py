"""HMAC-signed app URLs for the local backend and for app-encrypted objects.

A URL is `{MEDIA_LOCAL_STORAGE_BASE_URL}/{key}?op=get&exp=...&sig=...`, optionally with
`ct` (content type) and `len` (maximum bytes) for uploads, `dl` (download file name) and `tf`
(an image transform, opaque here: media_app.transforms names it). The signature covers every
one of them, so a changed path, expiry, limit or transform answers 403.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

from django.conf import settings
from django.utils.crypto import constant_time_compare

from config.errors import SignatureInvalid

_SALT = "mediastore.storage_app.signed-url.v1"
OPS = ("get", "put", "post")


@dataclass(frozen=True)
class SignedGrant:
    op: str
    key: str
    expires: int
    content_type: str = ""
    max_bytes: int | None = None
    filename: str = ""
    transform: str = ""


def _signature(grant: SignedGrant) -> str:
    parts = [grant.op, grant.key, str(grant.expires), grant.content_type,
             "" if grant.max_bytes is None else str(grant.max_bytes), grant.filename]
    if grant.transform:  # appended only when present: URLs signed before transforms stay valid
        parts.append(f"tf={grant.transform}")
    message = "\n".join(parts)
    return hmac.new(_hmac_key(settings.SECRET_KEY), message.encode(), hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=4)
def _hmac_key(secret: str) -> bytes:
    """Django's `salted_hmac(_SALT, ..., algorithm="sha256")` key, derived once per secret instead of for
    every URL (a list page signs 50): the signatures are the same, so URLs signed before stay valid."""
    return hashlib.sha256((_SALT + secret).encode()).digest()


def grant_params(grant: SignedGrant) -> dict[str, str]:
    params = {"op": grant.op, "exp": str(grant.expires)}
    if grant.content_type:
        params["ct"] = grant.content_type
    if grant.max_bytes is not None:
        params["len"] = str(grant.max_bytes)
    if grant.filename:
        params["dl"] = grant.filename
    if grant.transform:
        params["tf"] = grant.transform
    params["sig"] = _signature(grant)
    return params


# What `quote(key)` leaves as it is; most keys have nothing else, and need no quoting pass.
_UNQUOTED_KEY = re.compile(r"[A-Za-z0-9_.~/-]*")


def file_url(key: str) -> str:
    path = key if _UNQUOTED_KEY.fullmatch(key) else quote(key)
    return f"{settings.MEDIA_LOCAL_STORAGE_BASE_URL}/{path}"


@functools.lru_cache(maxsize=256)
def _quoted_type(content_type: str) -> str:
    """A content type as `urlencode` writes it; a page has a few distinct ones."""
    return quote_plus(content_type, safe="")


def signed_url(grant: SignedGrant) -> str:
    """The same query string `urlencode(grant_params(grant))` makes, built directly: `urlencode` was
    a third of signing a list page's URLs (docs/benchmarks.md, row 7). `op`, `exp`, `len` and `sig`
    are letters, digits and hex, which it leaves as they are; the free-text values are quoted as it would."""
    query = f"op={grant.op}&exp={grant.expires}"
    if grant.content_type:
        query += f"&ct={_quoted_type(grant.content_type)}"
    if grant.max_bytes is not None:
        query += f"&len={grant.max_bytes}"
    if grant.filename:
        query += f"&dl={quote_plus(grant.filename, safe='')}"
    if grant.transform:
        query += f"&tf={quote_plus(grant.transform, safe='')}"
    return f"{file_url(grant.key)}?{query}&sig={_signature(grant)}"


def make_grant(op: str, key: str, ttl: float, **extra) -> SignedGrant:
    return SignedGrant(op=op, key=key, expires=int(time.time() + ttl), **extra)


def verify(op: str, key: str, params: Mapping[str, str], *, now: float | None = None) -> SignedGrant:
    """The grant `params` carry for `key`, or `SignatureInvalid` (403)."""
    try:
        max_bytes = params.get("len")
        grant = SignedGrant(
            op=params.get("op", ""), key=key, expires=int(params.get("exp", "")),
            content_type=params.get("ct", ""), max_bytes=int(max_bytes) if max_bytes is not None else None,
            filename=params.get("dl", ""), transform=params.get("tf", ""),
        )
    except (TypeError, ValueError):
        raise SignatureInvalid() from None
    if grant.op != op or not constant_time_compare(_signature(grant), params.get("sig", "")):
        raise SignatureInvalid()
    if grant.expires < (now if now is not None else time.time()):
        raise SignatureInvalid("The signed URL has expired.", code="signature_expired")
    return grant
