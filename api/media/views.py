"""The Media API, `/v1/media` (seeds 004 and 000): parse, call one service, render."""
from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import ServiceKeyOnly
from accounts.principal import Principal, owner_for, principal_for
from accounts.throttles import ConcurrentUploads, RateLimits
from config.api import refuse_unknown, validated
from config.parsers import JSONParser
from config.errors import NotFound
from api.media import schema
from api.media import serializers as s
from media_app.derivatives import media_variant_get, variant_cache_control, variant_encrypted, variant_object
from media_app.ingest import media_ingest
from media_app.links import MediaLinks
from media_app.models import MediaFile
from media_app.resolve import ResolveOptions, media_payload_resolve, media_resolve_check_size
from media_app.selectors import media_cursor_encode, media_get, media_list, media_resolve, media_visible_to
from media_app.transforms import PARAMS as TRANSFORM_PARAMS
from media_app.transforms import Transform, require_transformable, transform_parse
from media_app.services import (
    FileOptions, LateFields, Provenance, StoreResult, UploadIncomplete, check_body_quota, media_delete,
    media_store_data_url, media_store_form, media_store_remote_url, media_update, media_upload_complete, media_upload_prepare,
    media_upload_prepare_multipart,
)
from storage_app.backends import get_store
from storage_app.categories import category_check_declared, get_category
from storage_app.http import ObjectView, serve_object
from storage_app.uploads import UploadForm, declared_body_size, open_upload_form

LIVE_OR_PENDING = (MediaFile.Status.ACTIVE, MediaFile.Status.PENDING)


class _Settings:
    URL_FORMAT_OVERRIDE = None


class FormatIsATransform(DefaultContentNegotiation):
    """On the Media API, `?format=webp` names an image variant's format, not a DRF renderer."""

    settings = _Settings


def file_options(data: dict, **extra) -> FileOptions:  # noqa: ANN003
    provenance = Provenance(model=data.get("model", ""), provider=data.get("provider", ""),
                            prompt=data.get("prompt", ""), generation=data.get("generation") or {})
    return FileOptions(category=data.get("category") or None, visibility=data.get("visibility", "private"),
                       provenance=provenance, **extra)


def _links(request: Request, transform: Transform | None = None) -> MediaLinks:
    return MediaLinks(absolute=request.build_absolute_uri, transform=transform)


def _output(request: Request, transform: Transform | None = None) -> s.MediaOutput:
    return s.MediaOutput(_links(request, transform))


def _transform(request: Request) -> Transform | None:
    """The image transform the query asks for (`width`, `height`, `fit`, `format`, `quality`)."""
    return transform_parse(request.query_params, accept=request.headers.get("Accept", ""))


def stored_response(request: Request, result: StoreResult) -> Response:
    body = _output(request).media(result.media, deduped=result.deduped)
    return Response(body, status=200 if result.deduped else 201)


class MediaCollectionView(APIView):
    """`POST /v1/media` from a remote URL or a data URL; `GET /v1/media` lists."""

    content_negotiation_class = FormatIsATransform
    parser_classes = [JSONParser]

    @schema.media_list
    def get(self, request: Request) -> Response:
        principal = principal_for(request)
        query = validated(s.ListQuery, request.query_params, also=TRANSFORM_PARAMS)
        page, has_more = media_list(principal, query)
        output = _output(request, _transform(request))
        output.links.prefetch(page)
        return Response({"object": "list", "data": [output.media(m) for m in page], "has_more": has_more,
                         "next_cursor": media_cursor_encode(page[-1]) if has_more else None})

    @schema.media_create
    def post(self, request: Request) -> Response:
        principal = principal_for(request)
        data = validated(s.CreateInput, request.data)
        owner = owner_for(principal, data.get("user_id"))
        source, org = data["source"], principal.organization
        options = file_options(data, original_name=data["filename"])
        if source["type"] == "data_url":
            result = media_store_data_url(organization=org, owner=owner, data_url=source["data_url"], options=options)
        else:
            result = media_store_remote_url(organization=org, owner=owner, url=source["url"], options=options)
        # 200 for a new file too, as Jan's media-api answers; `deduped` tells the two apart.
        return Response(_output(request).media(result.media, deduped=result.deduped))


class UploadView(APIView):
    """`POST /v1/media/upload`: multipart bytes, or JSON `{name, mime}` for a presigned upload."""

    parser_classes = [MultiPartParser, FormParser, JSONParser]
    throttle_classes = [RateLimits, ConcurrentUploads]

    @schema.media_upload
    def post(self, request: Request) -> Response:
        principal = principal_for(request)
        if request.content_type.startswith("application/json"):
            return self._presigned(request, principal)
        org = principal.organization
        declared = declared_body_size(request)
        check_body_quota(organization=org, declared=declared)
        # Streamed: the file part goes to storage as it arrives; fields after it come in late().
        form = open_upload_form(request._request)
        data = validated(s.MultipartUploadInput, form.fields, partial=True)
        name = required_file(form, "No file was submitted.").name or "file"
        result = media_store_form(organization=org, owner=owner_for(principal, data.get("user_id")), form=form,
                                  options=file_options(data, original_name=name), length_known=declared is not None,
                                  late=lambda fields: late_fields(principal, fields, name), quota_checked=True)
        return stored_response(request, result)

    def _presigned(self, request: Request, principal: Principal) -> Response:
        data = validated(s.LegacyUploadInput, request.data)
        category_check_declared(get_category(data.get("category")), data["mime"], param="mime")
        owner = owner_for(principal, data.get("user_id"))
        options = file_options(data, original_name=data["name"], declared_mime=data["mime"])
        prepared = media_upload_prepare(organization=principal.organization, owner=owner, options=options,
                                        declared_size=data.get("bytes"))
        body = prepared_body(prepared)
        upload = prepared.upload
        body["result"] = {"id": prepared.media.pk, "url": upload.url, "method": upload.method,
                          "headers": upload.headers, "expires_at": upload.expires_at}
        return Response(body, status=201)


def required_file(form: UploadForm, message: str):  # noqa: ANN201 - a readable file part
    if form.file is None:
        raise ValidationError({"file": [ErrorDetail(message, code="required")]})
    return form.file


def late_fields(principal: Principal, fields: dict, name: str) -> LateFields:
    """Fields sent after the file (seed 004's `-F file=@x.png -F user_id=...`), all of them re-validated."""
    data = validated(s.MultipartUploadInput, fields, partial=True)
    return LateFields(owner=owner_for(principal, data.get("user_id")), options=file_options(data, original_name=name))


def prepared_body(prepared) -> dict:  # noqa: ANN001
    upload = prepared.upload
    return {
        "id": prepared.media.pk, "jan_id": prepared.media.pk, "object": "upload", "status": "pending",
        "presigned_url": upload.url, "url": upload.url, "method": upload.method, "headers": upload.headers,
        "presigned_post": {"url": upload.post_url, "fields": upload.post_fields},
        "max_bytes": prepared.media.reserved_bytes, "expires_at": upload.expires_at,
        # Jan's names: the same URL, the declared type, and the lifetime in whole seconds.
        "upload_url": upload.url, "mime_type": prepared.media.declared_mime,
        "expires_in": int(settings.MEDIA_UPLOAD_TTL),
    }


class PrepareUploadView(APIView):
    parser_classes = [JSONParser]

    @schema.media_prepare_upload
    def post(self, request: Request) -> Response:
        principal = principal_for(request)
        data = validated(s.PrepareUploadInput, request.data)
        category_check_declared(get_category(data.get("category")), data["content_type"], param=data["type_param"])
        owner = owner_for(principal, data.get("user_id"))
        options = file_options(data, original_name=data.get("filename") or "", declared_mime=data["content_type"])
        if data["multipart"]:
            prepared = media_upload_prepare_multipart(organization=principal.organization, owner=owner,
                                                      options=options, declared_size=data["bytes"])
            return Response(s.multipart_body(prepared), status=201)
        prepared = media_upload_prepare(organization=principal.organization, owner=owner, options=options,
                                        declared_size=data.get("bytes"))
        return Response(prepared_body(prepared))  # 200, as Jan's media-api answers


def completed_if_arrived(media: MediaFile) -> MediaFile:
    """Seed 004 has no completion call: a pending file whose object is there is completed now."""
    if media.status != MediaFile.Status.PENDING:
        return media
    try:
        return media_upload_complete(media=media)
    except UploadIncomplete:
        return media


class MediaDetailView(APIView):
    content_negotiation_class = FormatIsATransform
    parser_classes = [JSONParser]

    @schema.media_retrieve
    def get(self, request: Request, media_id: str) -> Response:
        refuse_unknown(request.query_params.keys(), TRANSFORM_PARAMS)
        transform = _transform(request)
        media = completed_if_arrived(media_get(principal_for(request), media_id, statuses=LIVE_OR_PENDING))
        if transform is not None:
            require_transformable(media.mime)
        return Response(_output(request, transform).media(media))

    @schema.media_complete
    def put(self, request: Request, media_id: str) -> Response:
        """Seed 000 step 3: complete the upload."""
        media = media_get(principal_for(request), media_id, statuses=LIVE_OR_PENDING)
        parts = [(part["part_number"], part["etag"]) for part in validated(s.CompleteInput, request.data).get("parts", [])]
        body = _output(request).media(media_upload_complete(media=media, parts=parts))
        return Response({**body, "result": body})

    @schema.media_update
    def patch(self, request: Request, media_id: str) -> Response:
        media = media_get(principal_for(request), media_id)
        changes = validated(s.PatchInput, request.data)
        return Response(_output(request).media(media_update(media=media, changes=changes)))

    @schema.media_destroy
    def delete(self, request: Request, media_id: str) -> Response:
        media = media_get(principal_for(request), media_id, statuses=LIVE_OR_PENDING)
        media_delete(media=media)
        return Response({"id": media.pk, "object": "media", "deleted": True})


class PresignView(APIView):
    content_negotiation_class = FormatIsATransform

    @schema.media_presign
    def get(self, request: Request, media_id: str) -> Response:
        ttl = s.presign_ttl(validated(s.PresignQuery, request.query_params, also=TRANSFORM_PARAMS).get("ttl"))
        media = completed_if_arrived(media_get(principal_for(request), media_id, statuses=LIVE_OR_PENDING))
        if media.status != MediaFile.Status.ACTIVE:
            raise UploadIncomplete()
        transform = _transform(request)
        if transform is None:
            url, _ = _links(request).download(media, ttl)
            return Response({"id": media.pk, "url": url, "expires_in": ttl})
        # Rendered now, so on S3 the URL is the variant's own presigned key.
        variant = media_variant_get(media=media, transform=transform)
        url, _ = _links(request, transform).variant_download(media, ttl, variant=variant)
        return Response({"id": media.pk, "url": url, "expires_in": ttl, "transform": transform.query()})


class ResolveView(APIView):
    content_negotiation_class = FormatIsATransform
    parser_classes = [JSONParser]

    @schema.media_resolve
    def post(self, request: Request) -> Response:
        principal = principal_for(request)
        media_resolve_check_size(size=len(request.body))
        if isinstance(request.data, dict) and "payload" in request.data:
            return self._payload(request, principal)
        ids = validated(s.ResolveInput, request.data)["ids"]
        found, not_found = media_resolve(principal, ids)
        links = _links(request, _transform(request))
        links.prefetch(found)
        media = []
        for item in found:
            url, expires_at = links.download(item)
            media.append({"id": item.pk, "presigned_url": url, "expires_at": expires_at})
            if links.transform is not None:
                media[-1]["variant"] = links.variant(item)
        return Response({"media": media, "not_found": not_found})

    def _payload(self, request: Request, principal: Principal) -> Response:
        data = validated(s.ResolvePayloadInput, request.data)
        options = ResolveOptions(inline=data["as"] == "data_url", ttl=s.presign_ttl(data.get("ttl")),
                                 format=data.get("format"))
        payload = media_payload_resolve(principal=principal, payload=data["payload"], options=options,
                                        links=_links(request))
        return Response({"payload": payload})


class ContentView(APIView):
    """The bytes: streamed with Range/ETag, or a redirect to the CDN or a signed URL."""

    content_negotiation_class = FormatIsATransform
    permission_classes = [AllowAny]

    @schema.media_content
    def get(self, request: Request, media_id: str) -> HttpResponse:
        return self._serve(request, media_id, head=False)

    @schema.media_content_head
    def head(self, request: Request, media_id: str) -> HttpResponse:
        return self._serve(request, media_id, head=True)

    def _serve(self, request: Request, media_id: str, *, head: bool) -> HttpResponse:
        transform = _transform(request)
        media = self._find(request, media_id)
        if transform is not None:
            return self._serve_variant(request, media, transform, head=head)
        store = get_store()
        encrypted = media.encryption == MediaFile.Encryption.APP
        if not settings.MEDIA_PROXY_DOWNLOAD and store.serves_presigned_downloads(encrypted=encrypted):
            return HttpResponseRedirect(_links(request).redirect_target(media))
        view = ObjectView(key=media.object_key, size=media.bytes, mime=media.mime, etag=media.sha256,
                          encrypted=encrypted, filename=media.original_name)
        response = serve_object(request._request, store, view, head=head)
        response["Cache-Control"] = "public, max-age=3600" if media.visibility == "public" else "private, no-store"
        return response

    def _serve_variant(self, request: Request, media: MediaFile, transform: Transform, *, head: bool) -> HttpResponse:
        variant = media_variant_get(media=media, transform=transform)
        store = get_store()
        if not settings.MEDIA_PROXY_DOWNLOAD and store.serves_presigned_downloads(encrypted=variant_encrypted(variant)):
            response = HttpResponseRedirect(_links(request, transform).variant_download(media, variant=variant)[0])
        else:
            response = serve_object(request._request, store, variant_object(variant, media), head=head)
            response["Cache-Control"] = variant_cache_control(media)
        if not request.query_params.get("format") or request.query_params.get("format") == "auto":
            response["Vary"] = "Accept"  # the format came from the Accept header
        return response

    def _find(self, request: Request, media_id: str) -> MediaFile:
        if request.user and request.user.is_authenticated:
            media = media_visible_to(principal_for(request)).select_related("duplicate_of").filter(pk=media_id).first()
            if media is not None:
                return media
        media = (MediaFile.objects.select_related("duplicate_of")
                 .filter(pk=media_id, status=MediaFile.Status.ACTIVE, visibility=MediaFile.Visibility.PUBLIC).first())
        if media is None:
            raise NotFound("No such media file.", code="media_not_found")
        return media


class IngestView(APIView):
    permission_classes = [IsAuthenticated, ServiceKeyOnly]
    parser_classes = [JSONParser]

    @extend_schema(request=s.IngestInput)
    @schema.media_ingest
    def post(self, request: Request) -> Response:
        principal = principal_for(request)
        data = validated(s.IngestInput, request.data)
        result = media_ingest(organization=principal.organization, owner=owner_for(principal, data.get("user_id")),
                              storage_key=data["storage_key"], relocate=data["relocate"],
                              options=file_options(data))
        body = _output(request).media(result.media, deduped=result.deduped)
        body["source_key"] = result.media.source_key or None
        body["ingested_before"] = result.ingested_before
        return Response(body, status=200 if result.deduped else 201)
