"""Compute images (seed 002): objects by path in an organization's `compute/` namespace, without rows.

The services behind `/api/v1/storage/images`. They work through the `MediaStore` interface only:
the version tag, a public (CDN) URL and the fast serving path are the backend's business.
Compute objects have no row: their encryption and type are read from the stored bytes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings

from config.errors import Conflict, NotFound
from storage_app import crypto
from storage_app.backends import MediaStore, SavedObject
from storage_app.categories import GENERAL, category_check
from storage_app.http import ObjectView
from storage_app.keys import compute_prefix
from storage_app.sniff import OCTET_STREAM, SNIFF_BYTES, Sniffed, sniff


@dataclass(frozen=True)
class StoredImage:
    view: ObjectView
    public_url: str | None  # where to redirect, when the object may be served by the CDN


def image_list(*, store: MediaStore, org_id: int, prefix: str, limit: int) -> list[str]:
    """Paths (relative to the organization's `compute/` namespace) starting with `prefix`."""
    namespace = compute_prefix(org_id)
    paths: list[str] = []
    for info in store.list(namespace + prefix):
        paths.append(info.key[len(namespace):])
        if len(paths) >= limit:
            break
    return paths


def image_get(*, store: MediaStore, key: str, redirect: bool) -> StoredImage:
    """What answering for `key` needs; `NotFound` (404 `image_not_found`) when it is absent.

    With `redirect`, an object the CDN may serve gets its public URL and is not read here;
    otherwise the head is read to sniff the type.
    """
    try:
        stat = store.stat(key)
    except NotFound:
        raise NotFound("No image at this path.", code="image_not_found", param="path") from None
    encrypted = store.looks_encrypted(key, stored_size=stat.size)
    size = crypto.plaintext_size(stat.size) if encrypted else stat.size
    public = image_public_url(store=store, key=key, encrypted=encrypted) if redirect else None
    mime = OCTET_STREAM if public else _stored_mime(store, key, size, encrypted)
    view = ObjectView(key=key, size=size, mime=mime, etag=stat.etag, encrypted=encrypted)
    return StoredImage(view=view, public_url=public)


def image_save(*, store: MediaStore, key: str, source: BinaryIO, max_bytes: int, overwrite: bool) -> SavedObject:
    """Stream `source` to `key`; executables and HTML are refused before a byte is written."""
    if not overwrite:
        image_refuse_existing(store=store, key=key)

    def check(sniffed: Sniffed) -> None:
        category_check(GENERAL, sniffed)

    return store.save_stream(key, source, max_bytes=max_bytes, check=check, replacing=overwrite)


def image_delete(*, store: MediaStore, key: str) -> None:
    if not store.exists(key):
        raise NotFound("No image at this path.", code="image_not_found", param="path")
    store.delete(key)


def image_refuse_existing(*, store: MediaStore, key: str) -> None:
    """409 `image_exists` when `key` is taken.

    A check, not a lock: two writers racing for a new path may both succeed (the last wins)."""
    if store.exists(key):
        raise Conflict("An image already exists at this path; add ?overwrite=true to replace it.",
                       code="image_exists", param="path")


def image_public_url(*, store: MediaStore, key: str, encrypted: bool) -> str | None:
    """The CDN URL, unless the bytes must pass through the app (ciphertext, or proxying asked for)."""
    if encrypted or settings.MEDIA_PROXY_DOWNLOAD:
        return None
    return store.public_url(key)


def _stored_mime(store: MediaStore, key: str, size: int, encrypted: bool) -> str:
    """The sniffed type: compute objects have no row, and a stored Content-Type is not trusted."""
    if size == 0:
        return OCTET_STREAM
    head = b"".join(store.open_range(key, 0, min(size, SNIFF_BYTES) - 1, encrypted=encrypted, plain_size=size))
    return sniff(head).mime
