"""The storage layer's entry point: `get_store()` and the interface every caller uses.

`MEDIA_STORAGE_BACKEND` picks the backend: a name in `BACKENDS`, or the dotted path of any
`MediaStore` subclass (a third backend is one module plus that setting). Callers import from
here and never name a backend class.
"""
from __future__ import annotations

import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import storages
from django.utils.module_loading import import_string

from storage_app import crypto
from storage_app.metered import meter
from storage_app.backends.base import (
    MediaStore, MultipartNotSupported, ObjectInfo, ObjectStat, SavedObject, SignedMultipart, SignedUpload,
    content_disposition,
)
from storage_app.backends.streams import KEEP_HEAD, READ_BLOCK, HashingReader, read_head

__all__ = [
    "BACKENDS", "KEEP_HEAD", "READ_BLOCK", "HashingReader", "MediaStore", "MultipartNotSupported", "ObjectInfo",
    "ObjectStat", "SavedObject", "SignedMultipart", "SignedUpload", "backend_class", "content_disposition", "get_store", "read_head",
]

BACKENDS = {
    "local": "storage_app.backends.local.LocalStore",
    "s3": "storage_app.backends.s3.S3Store",
}


def backend_class(name: str) -> type[MediaStore]:
    """The class `MEDIA_STORAGE_BACKEND=name` means; `ImproperlyConfigured` for anything else."""
    try:
        cls = import_string(BACKENDS.get(name, name))
    except ImportError as exc:
        raise ImproperlyConfigured(f"MEDIA_STORAGE_BACKEND={name!r} cannot be imported: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, MediaStore)):
        raise ImproperlyConfigured(f"MEDIA_STORAGE_BACKEND={name!r} is not a MediaStore subclass.")
    return cls


_cache: dict[tuple, tuple[object, MediaStore]] = {}
_cache_lock = threading.Lock()


def get_store() -> MediaStore:
    """The configured store. Rebuilt when the backend, `STORAGES` or the encryption settings change (tests)."""
    storage = storages["media"]
    cache_key = (settings.MEDIA_STORAGE_BACKEND, id(storage), settings.MEDIA_ENCRYPTION, settings.MEDIA_MASTER_KEYS)
    cached = _cache.get(cache_key)
    if cached is None:
        with _cache_lock:
            keyring = crypto.Keyring.parse(settings.MEDIA_MASTER_KEYS) if settings.MEDIA_MASTER_KEYS else None
            cls = backend_class(settings.MEDIA_STORAGE_BACKEND)
            # The storage is kept beside its store so its id, part of the key, is never reused meanwhile.
            cached = (storage, meter(cls(storage, encryption=settings.MEDIA_ENCRYPTION, keyring=keyring)))
            _cache.clear()
            _cache[cache_key] = cached
    return cached[1]
