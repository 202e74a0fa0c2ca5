"""Compute image storage, `/api/v1/storage/images` (seed 002): objects by path, per organization.

Service keys only. Each organization has its own namespace: a request's path `gen/a.png` is the
object `compute/<org id>/gen/a.png` (`storage_app.keys.compute_key`), and paths in requests and
responses stay relative to it, so one organization never sees or touches another's objects.
Every path is validated (`compute_key`) before the store is even looked up, so a hostile path
never reaches a backend. The views parse and call the services in `storage_app.images`; writes
take the same streaming, size-limited, type-sniffed path as every upload
(`MediaStore.save_stream`); compute objects have no row and are not charged to a quota.
"""
from __future__ import annotations

from django.http import HttpResponseRedirect
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import ServiceKeyOnly
from accounts.principal import principal_for
from accounts.throttles import ConcurrentUploads, RateLimits
from config.api import refuse_unknown, validated
from config.errors import InvalidRequest, TooLarge
from api.images import schema
from storage_app.backends import MediaStore, get_store
from storage_app.categories import GENERAL
from storage_app.http import serve_object
from storage_app.images import (
    image_delete, image_get, image_list, image_public_url, image_refuse_existing, image_save,
)
from storage_app.keys import MAX_COMPUTE_PATH_LENGTH, compute_key, validate_key
from storage_app.uploads import NonEmpty, declared_body_size, open_upload_form

DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000
MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around the file in a multipart body
_TRUE = ("1", "true", "yes", "on")


class ImageListQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(required=False, default=DEFAULT_LIST_LIMIT, min_value=1)

    # Read raw and checked by the path validator (DRF's CharField has its own NUL error).
    accepted_aliases = ("prefix",)


SAVE_QUERY = ("overwrite",)


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
        refuse_unknown(request.query_params.keys(), SAVE_QUERY)
        overwrite = str(request.query_params.get("overwrite", "")).lower() in _TRUE
        limit = _write_limit(request)
        store = get_store()
        if not overwrite:  # refuse before reading the body; checked again just before writing
            image_refuse_existing(store=store, key=key)
        # Streamed from the request body into storage as it arrives: no temporary file.
        form = open_upload_form(request._request)
        refuse_unknown(form.fields, ("file",))
        if form.file is None:
            raise InvalidRequest("A 'file' field is required.", code="required", param="file")
        saved = image_save(store=store, key=key, source=NonEmpty(form.file), max_bytes=limit, overwrite=overwrite)
        _refuse_late_unknown(store, key, form.finish())
        url = image_public_url(store=store, key=key, encrypted=saved.encryption == "app")
        return Response({"path": path, "url": url or request.build_absolute_uri(request.path),
                         "bytes": saved.size, "mime": saved.sniffed.mime, "sha256": saved.sha256}, status=201)

    @schema.image_delete
    def delete(self, request: Request, path: str) -> Response:
        key = compute_key(path, principal_for(request).organization.pk)
        image_delete(store=get_store(), key=key)
        return Response(status=204)


def _refuse_late_unknown(store: MediaStore, key: str, fields: dict[str, str]) -> None:
    """A typo after the file part is refused like one before it; the object just written goes."""
    try:
        refuse_unknown(fields, ("file",))
    except InvalidRequest:
        image_delete(store=store, key=key)
        raise


def _write_limit(request: Request) -> int:
    """The per-file limit of the caller's plan and deployment; a body declared past it is refused unread."""
    from media_app.services import upload_limit

    limit = upload_limit(organization=principal_for(request).organization, category=GENERAL)
    declared = declared_body_size(request)
    if declared is not None and declared > limit + MULTIPART_SLACK:
        raise TooLarge(f"File size exceeds the maximum of {limit} bytes.", param="file")
    return limit

