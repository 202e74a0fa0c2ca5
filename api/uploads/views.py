"""Resumable uploads, tus 1.0.0 (https://tus.io/protocols/resumable-upload), at `/v1/uploads/`.

Core protocol plus creation, creation-with-upload, termination, expiration and checksum. The
views parse tus headers and call `media_app.resumable`; every response carries `Tus-Resumable`
and, for browsers from MEDIA_CORS_ALLOWED_ORIGINS, CORS headers exposing the tus ones.
"""
from __future__ import annotations

import base64
import binascii

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from django.utils.http import http_date
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.principal import owner_for, principal_for
from accounts.throttles import ConcurrentUploads
from config.errors import InvalidRequest, ServiceError, UnsupportedMediaType
from media_app.models import MediaFile, ResumableUpload
from media_app.resumable import (
    CHECKSUM_ALGORITHMS, parse_checksum, resumable_limit, upload_append, upload_create, upload_get,
    upload_terminate,
)
from media_app.storing import FileOptions, Provenance
from quotas.models import Plan
from storage_app.uploads import declared_body_size, request_body

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,termination,expiration,checksum"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
MEDIA_ID_HEADER = "Mediastore-Media-Id"
EXPOSED = ("Location, Upload-Offset, Upload-Length, Upload-Metadata, Upload-Expires, Tus-Resumable, Tus-Version, "
           f"Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, {MEDIA_ID_HEADER}, X-Request-ID")
ALLOWED_HEADERS = ("Authorization, Content-Type, Upload-Length, Upload-Offset, Upload-Metadata, Upload-Checksum, "
                   "Upload-Defer-Length, Upload-Concat, Tus-Resumable, X-Requested-With, X-Request-ID")
METADATA_LIMITS = {"filename": 255, "content_type": 127, "category": 40, "visibility": 10, "model": 200,
                   "provider": 100, "prompt": 20000, "user_id": 150}


class PreconditionFailed(ServiceError):
    status = 412
    code = "tus_version_not_supported"
    message = f"Send Tus-Resumable: {TUS_VERSION}."


class TusView(APIView):
    """What both tus resources share: the version check, the common headers, CORS, OPTIONS."""

    throttle_classes = [ConcurrentUploads]
    parser_classes: list = []  # bodies are streamed by the service, never parsed

    def get_permissions(self) -> list:
        if self.request.method == "OPTIONS":  # a CORS preflight carries no credentials
            return []
        return super().get_permissions()

    def initial(self, request: Request, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != TUS_VERSION:
            raise PreconditionFailed()
        super().initial(request, *args, **kwargs)

    def finalize_response(self, request: Request, response: HttpResponse, *args, **kwargs) -> HttpResponse:  # noqa: ANN002, ANN003
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Tus-Resumable"] = TUS_VERSION
        response["Cache-Control"] = "no-store"
        if response.status_code == 412:
            response["Tus-Version"] = TUS_VERSION
        if response.status_code == 460:
            response.reason_phrase = "Checksum Mismatch"
        _cors(request, response)
        return response

    @extend_schema(exclude=True)
    def options(self, request: Request, *args, **kwargs) -> HttpResponse:  # noqa: ANN002, ANN003
        response = HttpResponse(status=204)
        response["Tus-Version"] = TUS_VERSION
        response["Tus-Extension"] = TUS_EXTENSIONS
        response["Tus-Checksum-Algorithm"] = ",".join(CHECKSUM_ALGORITHMS)
        response["Tus-Max-Size"] = str(_max_size(request))
        return response


class UploadCollectionView(TusView):
    """`POST /v1/uploads/`: creation (and creation-with-upload)."""

    @extend_schema(exclude=True)
    def post(self, request: Request) -> HttpResponse:
        principal = principal_for(request)
        if request.headers.get("Upload-Defer-Length"):
            raise InvalidRequest("Uploads of deferred length are not accepted: send Upload-Length.",
                                 code="deferred_length_not_supported", param="Upload-Defer-Length")
        length = _integer_header(request, "Upload-Length")
        raw_metadata = request.headers.get("Upload-Metadata", "")
        metadata = parse_metadata(raw_metadata)
        upload = upload_create(organization=principal.organization, uploader=principal.user,
                               owner=owner_for(principal, metadata.get("user_id")), options=file_options(metadata),
                               length=length, metadata=raw_metadata)
        if (declared_body_size(request._request) or 0) > 0:  # creation-with-upload
            upload = _append(request, upload, offset=0)
        response = _upload_headers(HttpResponse(status=201), upload)
        response["Location"] = request.build_absolute_uri(reverse("tus-upload", args=[upload.pk]))
        return response


class UploadView(TusView):
    """`HEAD`/`PATCH`/`DELETE /v1/uploads/<id>`: the offset, appending, termination."""

    @extend_schema(exclude=True)
    def head(self, request: Request, upload_id: str) -> HttpResponse:
        upload = _own_upload(request, upload_id)
        response = _upload_headers(HttpResponse(status=200), upload)
        response["Upload-Length"] = str(upload.length)
        if upload.metadata:
            response["Upload-Metadata"] = upload.metadata
        return response

    @extend_schema(exclude=True)
    def patch(self, request: Request, upload_id: str) -> HttpResponse:
        upload = _own_upload(request, upload_id)
        offset = _integer_header(request, "Upload-Offset")
        upload = _append(request, upload, offset=offset)
        return _upload_headers(HttpResponse(status=204), upload)

    @extend_schema(exclude=True)
    def delete(self, request: Request, upload_id: str) -> HttpResponse:
        upload_terminate(upload=_own_upload(request, upload_id))
        return HttpResponse(status=204)


def _own_upload(request: Request, upload_id: str) -> ResumableUpload:
    principal = principal_for(request)
    return upload_get(organization=principal.organization, uploader=principal.user, upload_id=upload_id)


def _append(request: Request, upload: ResumableUpload, *, offset: int) -> ResumableUpload:
    if request.content_type.split(";")[0].strip().lower() != OFFSET_CONTENT_TYPE:
        raise UnsupportedMediaType(f"Send the bytes as Content-Type: {OFFSET_CONTENT_TYPE}.",
                                   code="invalid_content_type", param="Content-Type")
    value = request.headers.get("Upload-Checksum")
    return upload_append(upload=upload, offset=offset, body=request_body(request._request),
                         content_length=declared_body_size(request._request),
                         checksum=parse_checksum(value) if value else None)


def _upload_headers(response: HttpResponse, upload: ResumableUpload) -> HttpResponse:
    response["Upload-Offset"] = str(upload.offset)
    if upload.status == ResumableUpload.Status.ACTIVE:
        response["Upload-Expires"] = http_date(upload.expires_at.timestamp())
    elif upload.media_id:
        response[MEDIA_ID_HEADER] = upload.media_id
    return response


def _integer_header(request: Request, name: str) -> int:
    value = request.headers.get(name, "")
    if not value.isdigit():
        raise InvalidRequest(f"{name} must be a non-negative integer.", code="invalid_header", param=name)
    return int(value)


def _max_size(request: Request) -> int:
    """The caller's limit when it is known (a preflight is anonymous); else the largest plan's."""
    try:
        return resumable_limit(organization=principal_for(request).organization)
    except ServiceError:
        return max(Plan.objects.values_list("max_file_bytes", flat=True), default=settings.MEDIA_MAX_BYTES)


def parse_metadata(value: str) -> dict[str, str]:
    """`Upload-Metadata: key base64,key base64,...`; the known keys only, each within its limit."""
    found: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        key, _, encoded = item.partition(" ")
        try:
            text = base64.b64decode(encoded.strip(), validate=True).decode("utf-8") if encoded else ""
        except (binascii.Error, ValueError):
            raise InvalidRequest(f"Upload-Metadata {key!r} is not base64 of UTF-8 text.", code="invalid_metadata",
                                 param="Upload-Metadata") from None
        if key in METADATA_LIMITS and len(text) > METADATA_LIMITS[key]:
            raise InvalidRequest(f"Upload-Metadata {key!r} may have at most {METADATA_LIMITS[key]} characters.",
                                 code="invalid_metadata", param="Upload-Metadata")
        found[key] = text
    if found.get("visibility", "private") not in MediaFile.Visibility.values:
        raise InvalidRequest("visibility must be private or public.", code="invalid_metadata", param="Upload-Metadata")
    return found


def file_options(metadata: dict[str, str]) -> FileOptions:
    provenance = Provenance(model=metadata.get("model", ""), provider=metadata.get("provider", ""),
                            prompt=metadata.get("prompt", ""))
    content_type = metadata.get("content_type") or metadata.get("filetype", "")  # tus-js-client's own name
    return FileOptions(original_name=metadata.get("filename") or metadata.get("name", ""),
                       category=metadata.get("category") or None, visibility=metadata.get("visibility", "private"),
                       declared_mime=content_type, provenance=provenance)


def _cors(request: Request, response: HttpResponse) -> None:
    origin = request.headers.get("Origin", "")
    allowed = settings.MEDIA_CORS_ALLOWED_ORIGINS
    if not origin or not ("*" in allowed or origin in allowed):
        return
    response["Access-Control-Allow-Origin"] = origin
    response["Vary"] = "Origin"
    response["Access-Control-Expose-Headers"] = EXPOSED
    if request.method == "OPTIONS":
        response["Access-Control-Allow-Methods"] = "POST, HEAD, PATCH, DELETE, OPTIONS"
        response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response["Access-Control-Max-Age"] = "86400"
