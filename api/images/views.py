"""Compute image storage, `/api/v1/storage/images` (seed 002): objects by path, per organization.

Service keys only. Each organization has its own namespace: a request's path `gen/a.png` is the
object `compute/<org id>/gen/a.png` (`storage_app.keys.compute_key`), and paths in requests and
responses stay relative to it, so one organization never sees or touches another's objects.
Every path is validated (`compute_key`) before the store is even looked up, so a hostile path
never reaches a backend. Writes take the same streaming, size-limited, type-sniffed path as
every upload (`MediaStore.save_stream`); compute objects have no row and are not charged to a
quota.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpResponseRedirect
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import ServiceKeyOnly
from accounts.principal import principal_for
from accounts.throttles import ConcurrentUploads, RateLimits
from config.api import validated
from config.errors import Conflict, InvalidRequest, NotFound, StorageUnavailable, TooLarge
from storage_app import crypto
from api.images import schema
from storage_app.backends import LocalStore, MediaStore, S3Store, SavedObject, get_store
from storage_app.categories import GENERAL, category_check
from storage_app.http import ObjectView, serve_object
from storage_app.keys import MAX_COMPUTE_PATH_LENGTH, compute_key, compute_prefix, validate_key
from storage_app.sniff import OCTET_STREAM, SNIFF_BYTES, Sniffed, sniff
from storage_app.uploads import NonEmpty, declared_body_size, open_upload_form

DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000
MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around the file in a multipart body
_TRUE = ("1", "true", "yes", "on")


class ImageListQuerySerializer(serializers.Serializer):
    # `prefix` is read raw and checked by the path validator (DRF's CharField has its own NUL error).
    limit = serializers.IntegerField(required=False, default=DEFAULT_LIST_LIMIT, min_value=1)


# -- the operations ------------------------------------------------------------------------
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
        stored, version = _stat(store, key)
    except NotFound:
        raise NotFound("No image at this path.", code="image_not_found", param="path") from None
    encrypted = _looks_encrypted(store, key, stored)
    size = crypto.plaintext_size(stored) if encrypted else stored
    public = _public_url(store, key, encrypted=encrypted) if redirect else None
    mime = OCTET_STREAM if public else _stored_mime(store, key, size, encrypted)
    view = ObjectView(key=key, size=size, mime=mime, etag=version, encrypted=encrypted)
    return StoredImage(view=view, public_url=public)


def image_save(*, store: MediaStore, key: str, source, max_bytes: int, overwrite: bool) -> SavedObject:  # noqa: ANN001
    """Stream `source` to `key`; executables and HTML are refused before a byte is written."""
    if not overwrite:
        _refuse_existing(store, key)

    def check(sniffed: Sniffed) -> None:
        category_check(GENERAL, sniffed)

    return store.save_stream(key, source, max_bytes=max_bytes, check=check, replacing=overwrite)


def image_delete(*, store: MediaStore, key: str) -> None:
    if not store.exists(key):
        raise NotFound("No image at this path.", code="image_not_found", param="path")
    store.delete(key)


def _refuse_existing(store: MediaStore, key: str) -> None:
    # A check, not a lock: two writers racing for a new path may both succeed (the last wins).
    if store.exists(key):
        raise Conflict("An image already exists at this path; add ?overwrite=true to replace it.",
                       code="image_exists", param="path")


def _stat(store: MediaStore, key: str) -> tuple[int, str]:
    """Stored size and a version tag that changes whenever the object is rewritten."""
    if isinstance(store, S3Store):
        head = store._call(key, store.client.head_object, Bucket=store.bucket, Key=key)
        return head["ContentLength"], head.get("ETag", "").strip('"')
    if isinstance(store, LocalStore):
        try:
            stat = store.path(key).stat()
        except FileNotFoundError:
            raise NotFound() from None
        except OSError as exc:
            raise StorageUnavailable(f"Local storage failed: {exc.strerror}.") from exc
        # os.replace gives every rewrite a new inode; mtime and size catch in-place edits.
        return stat.st_size, f"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}"
    return store.size(key), ""


def _looks_encrypted(store: MediaStore, key: str, stored: int) -> bool:
    if stored < crypto.HEADER_SIZE:
        return False
    return b"".join(store.open_range(key, 0, len(crypto.MAGIC) - 1, encrypted=False)) == crypto.MAGIC


def _public_url(store: MediaStore, key: str, *, encrypted: bool) -> str | None:
    """The CDN URL, unless the bytes must pass through the app (ciphertext, or proxying asked for)."""
    if encrypted or settings.MEDIA_PROXY_DOWNLOAD or not isinstance(store, S3Store):
        return None
    return store.public_url(key)


def _stored_mime(store: MediaStore, key: str, size: int, encrypted: bool) -> str:
    """The sniffed type: compute objects have no row, and a stored Content-Type is not trusted."""
    if size == 0:
        return OCTET_STREAM
    head = b"".join(store.open_range(key, 0, min(size, SNIFF_BYTES) - 1, encrypted=encrypted, plain_size=size))
    return sniff(head).mime


# -- the views -------------------------------------------------------------------------------
def _list_prefix(prefix: str) -> str:
    """A prefix may end inside a segment (`gen`) or after one (`generations/`); else like a path."""
    if prefix:
        validate_key(prefix[:-1] if prefix.endswith("/") else prefix, max_length=MAX_COMPUTE_PATH_LENGTH,
                     param="prefix")
    return prefix


class _ImagesView(APIView):
    permission_classes = [IsAuthenticated, ServiceKeyOnly]


class ImageListView(_ImagesView):
    @schema.image_list
    def get(self, request: Request) -> Response:
        query = validated(ImageListQuerySerializer, request.query_params)
        prefix = _list_prefix(request.query_params.get("prefix", ""))
        limit = min(query["limit"], MAX_LIST_LIMIT)
        org_id = principal_for(request).organization.pk
        return Response(image_list(store=get_store(), org_id=org_id, prefix=prefix, limit=limit))


class ImageView(_ImagesView):
    """GET, HEAD, POST and DELETE of one path. `path` is checked before anything else happens."""

    throttle_classes = [RateLimits, ConcurrentUploads]  # counts the POSTs (saves) only

    @schema.image_get
    def get(self, request: Request, path: str):  # noqa: ANN201 - a redirect or a stream
        key = compute_key(path, principal_for(request).organization.pk)
        store = get_store()
        image = image_get(store=store, key=key, redirect=True)
        if image.public_url:
            return HttpResponseRedirect(image.public_url)
        return serve_object(request, store, image.view)

    @schema.image_head
    def head(self, request: Request, path: str):  # noqa: ANN201
        key = compute_key(path, principal_for(request).organization.pk)
        store = get_store()
        # HEAD answers here, with the real length and type, even where GET redirects.
        image = image_get(store=store, key=key, redirect=False)
        return serve_object(request, store, image.view, head=True)

    @schema.image_save
    def post(self, request: Request, path: str) -> Response:
        key = compute_key(path, principal_for(request).organization.pk)
        overwrite = str(request.query_params.get("overwrite", "")).lower() in _TRUE
        limit = _write_limit(request)
        store = get_store()
        if not overwrite:  # refuse before reading the body; checked again just before writing
            _refuse_existing(store, key)
        # Streamed from the request body into storage as it arrives: no temporary file.
        form = open_upload_form(request._request)
        if form.file is None:
            raise InvalidRequest("A 'file' field is required.", code="required", param="file")
        saved = image_save(store=store, key=key, source=NonEmpty(form.file), max_bytes=limit, overwrite=overwrite)
        form.finish()
        url = _public_url(store, key, encrypted=saved.encryption == "app")
        return Response({"path": path, "url": url or request.build_absolute_uri(request.path),
                         "bytes": saved.size, "mime": saved.sniffed.mime, "sha256": saved.sha256}, status=201)

    @schema.image_delete
    def delete(self, request: Request, path: str) -> Response:
        key = compute_key(path, principal_for(request).organization.pk)
        image_delete(store=get_store(), key=key)
        return Response(status=204)


def _write_limit(request: Request) -> int:
    """The per-file limit of the caller's plan and deployment; a body declared past it is refused unread."""
    from media_app.services import upload_limit

    limit = upload_limit(organization=principal_for(request).organization, category=GENERAL)
    declared = declared_body_size(request)
    if declared is not None and declared > limit + MULTIPART_SLACK:
        raise TooLarge(f"File size exceeds the maximum of {limit} bytes.", param="file")
    return limit

