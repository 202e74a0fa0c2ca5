"""The Storage API, `/api/v1/storage` (seeds 001/003): thin views over the services."""
from __future__ import annotations

import math

from django.conf import settings
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.principal import Principal, principal_for
from accounts.throttles import ConcurrentUploads, RateLimits
from config.api import refuse_unknown, validated
from config.errors import InvalidRequest, NotFound, PermissionDenied
from media_app.links import MediaLinks
from media_app.models import MediaFile
from media_app.selectors import media_get_by_key, media_visible_to
from media_app.services import (
    FileOptions, LateFields, check_body_quota, media_delete, media_store_form,
)
from api.storage import schema
from api.storage import serializers as s
from storage_app.backends import get_store
from storage_app.categories import get_category
from storage_app.keys import user_prefix, validate_key
from storage_app.uploads import declared_body_size, open_upload_form

DEFAULT_PRESIGN_SECONDS = 3600


def _bucket_name() -> str:
    return get_store().bucket_name


class BucketListView(APIView):
    @schema.storage_buckets
    def get(self, request: Request) -> Response:
        principal_for(request)
        refuse_unknown(request.query_params.keys(), ())
        store = get_store()
        return Response({"buckets": [{"name": _bucket_name(), "backend": store.name}]})


class BucketObjectsView(APIView):
    """The real bucket listing, restricted to the caller's own folder."""

    @schema.storage_bucket_objects
    def get(self, request: Request, bucket: str) -> Response:
        principal = principal_for(request)
        if bucket != _bucket_name():
            raise NotFound("No such bucket.", code="bucket_not_found")
        query = validated(s.ObjectListQuerySerializer, request.query_params)
        folder = user_prefix(principal.organization.pk, principal.user.pk)
        prefix = folder + query["prefix"]
        if query["prefix"]:
            validate_key(prefix.rstrip("/") or folder.rstrip("/"), param="prefix")
        objects = []
        for info in get_store().list(prefix):
            objects.append({"key": info.key, "name": info.key[len(folder):], "size": info.size,
                            "last_modified": info.modified})
            if len(objects) >= query["limit"]:
                break
        return Response({"bucket": bucket, "prefix": prefix, "objects": objects})


class FileListView(APIView):
    @schema.storage_files
    def get(self, request: Request) -> Response:
        principal = principal_for(request)
        query = validated(s.FileListQuerySerializer, request.query_params)
        rows = media_visible_to(principal)
        if query.get("category"):
            rows = rows.filter(category=get_category(query["category"]).name)
        wanted = query.get("user") or "me"
        if wanted != "me" and not principal.sees_whole_organization:
            raise PermissionDenied("Only organization owners and admins may list other members' files.")
        if wanted == "me":
            rows = rows.filter(owner=principal.user)
        elif wanted != "*":
            rows = rows.filter(owner__username=wanted)
        total = rows.count()
        size, page = query["page_size"], query["page"]
        items = rows.order_by("-created_at", "-id")[(page - 1) * size: page * size]
        return Response({"files": s.StoredFileSerializer(items, many=True).data, "page": page, "page_size": size,
                         "total": total, "total_pages": max(math.ceil(total / size), 1)})


class UploadView(APIView):
    throttle_classes = [RateLimits, ConcurrentUploads]

    @schema.storage_upload
    def post(self, request: Request) -> Response:
        principal = principal_for(request)
        org = principal.organization
        declared = declared_body_size(request)
        check_body_quota(organization=org, declared=declared)
        # Streamed: the file part goes to storage as it arrives; a category after it comes in late().
        form = open_upload_form(request._request)
        data = validated(s.UploadSerializer, form.fields, partial=True)
        if form.file is None:
            raise ValidationError({"file": [ErrorDetail("A 'file' field is required.", code="required")]})
        name = form.file.name or "file"

        def late(fields: dict) -> LateFields:
            category = validated(s.UploadSerializer, fields, partial=True).get("category")
            return LateFields(owner=principal.user, options=FileOptions(original_name=name, category=category))

        result = media_store_form(organization=org, owner=principal.user, form=form, late=late,
                                  length_known=declared is not None, quota_checked=True,
                                  options=FileOptions(original_name=name, category=data.get("category")))
        # As the Media API answers: the existing file, 200 and `deduped: true`, for bytes already stored.
        body = {**s.StoredFileSerializer(result.media).data, "deduped": result.deduped}
        return Response(body, status=200 if result.deduped else 201)


def _object(principal: Principal, object_name: str) -> MediaFile:
    """A file by full key or by its unique name inside the caller's folder."""
    validate_key(object_name, param="object_name")
    key = object_name if "/" in object_name else user_prefix(principal.organization.pk, principal.user.pk) + object_name
    return media_get_by_key(principal, key)


class ObjectMetadataView(APIView):
    @schema.storage_object_metadata
    def get(self, request: Request, object_name: str) -> Response:
        refuse_unknown(request.query_params.keys(), ())
        media = _object(principal_for(request), object_name)
        return Response(s.StoredFileSerializer(media).data)


class ObjectPresignView(APIView):
    @schema.storage_object_presign
    def get(self, request: Request, object_name: str) -> Response:
        principal = principal_for(request)
        query = validated(s.PresignQuerySerializer, request.query_params)
        cap = int(settings.MEDIA_S3_PRESIGN_TTL)
        expires_in = query.get("expires_in", min(DEFAULT_PRESIGN_SECONDS, cap))
        if not 1 <= expires_in <= cap:
            raise InvalidRequest(f"expires_in must be between 1 and {cap} seconds.", code="invalid_expires_in",
                                 param="expires_in")
        media = _object(principal, object_name)
        url, expires_at = MediaLinks(absolute=request.build_absolute_uri).download(media, expires_in)
        return Response({"object_name": media.storage_key, "url": url, "expires_in": expires_in,
                         "expires_at": expires_at})


class ObjectDeleteView(APIView):
    @schema.storage_object_delete
    def delete(self, request: Request, object_name: str) -> Response:
        media = _object(principal_for(request), object_name)
        media_delete(media=media)
        return Response(status=204)
