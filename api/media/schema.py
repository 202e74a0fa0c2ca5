"""How `/api/schema` describes the Media API: the shapes `MediaOutput` and the views render,
and one `extend_schema` per operation (applied in `views.py`).

Output serializers here only describe dicts; nothing renders through them. Examples follow
the seed flows (004: remote URL, data URL, prepare-upload, resolve; 000: the JSON form of
upload, completion with PUT, listing with `user=me&limit=10`).
"""
from __future__ import annotations

from collections.abc import Callable

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample, OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema,
)
from rest_framework import serializers

from config.openapi import errors
from api.media import serializers as s
from media_app.models import MediaFile

# For ENUM_NAME_OVERRIDES: the plain category values, as the input serializers list them.
CATEGORY_VALUES = MediaFile.Category.values

EXAMPLE_ID = "med_01hqr8v9k2x3f4g5h6j7k8m9n0"
EXAMPLE_ID_2 = "med_01hqr8v9k2x3f4g5h6j7k8m9n1"
MEDIA_ID = OpenApiParameter("media_id", str, OpenApiParameter.PATH,
                            description="A media id: `MEDIA_ID_PREFIX` (default `med_`) and a 26-character ULID.",
                            examples=[OpenApiExample("Media id", value=EXAMPLE_ID)])


TRANSFORM = [
    OpenApiParameter("width", {"type": "integer", "minimum": 1}, description=(
        "An image variant's width: rounded up to the next of `MEDIA_TRANSFORM_WIDTHS` "
        "(default 64, 128, 256, 512, 1024, 2048); never larger than the original.")),
    OpenApiParameter("height", {"type": "integer", "minimum": 1}, description="The variant's height, as `width`."),
    OpenApiParameter("fit", str, enum=["inside", "cover", "contain"], default="inside", description=(
        "`inside`: fit in the box; `cover`: fill it, cropping the centre; `contain`: fit, padded to the box.")),
    OpenApiParameter("format", str, enum=["auto", "webp", "avif", "jpeg", "png"], default="auto",
                     description="`auto`: AVIF or WebP when `Accept` lists them, else JPEG or WebP."),
    OpenApiParameter("quality", {"type": "integer", "minimum": 1, "maximum": 100}, default=80,
                     description="Lossy formats; in steps of 10."),
]


def _nullable_str(**kwargs) -> serializers.CharField:  # noqa: ANN003
    return serializers.CharField(allow_null=True, **kwargs)


# -- output shapes (class names are the component names) -----------------------------------------
class Variant(serializers.Serializer):
    """An image variant (`MediaLinks.variant`): rendered on first fetch of either URL."""

    url = serializers.CharField(help_text="`/v1/media/{id}/content` with the normalised transform.")
    presigned_url = serializers.CharField(help_text="A signed URL; the transform is inside its signature.")
    expires_at = serializers.DateTimeField()
    mime = serializers.CharField()
    transform = serializers.DictField(child=serializers.CharField(), help_text="The normalised parameters.")


class Media(serializers.Serializer):
    """A media object (`MediaOutput.media`)."""

    id = serializers.CharField()
    object = serializers.ChoiceField(choices=["media"])
    status = serializers.ChoiceField(choices=MediaFile.Status.choices)
    mime = _nullable_str(help_text="Sniffed from the content; null until a pending upload completes.")
    bytes = serializers.IntegerField(help_text="Plaintext size; 0 until a pending upload completes.")
    sha256 = _nullable_str()
    media = serializers.ChoiceField(choices=MediaFile.Kind.values, help_text="The media kind.")
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    dimensions = _nullable_str(help_text="`{width}x{height}` for images with known dimensions.")
    size = _nullable_str(help_text="The dimensions again, under seed 000's name.")
    visibility = serializers.ChoiceField(choices=MediaFile.Visibility.values)
    category = serializers.ChoiceField(choices=MediaFile.Category.values)
    source = serializers.ChoiceField(choices=MediaFile.Source.values)
    original_name = serializers.CharField(allow_blank=True)
    user = serializers.CharField(help_text="The owner's username.")
    user_id = serializers.IntegerField(help_text="The owner's id.")
    model = serializers.CharField(allow_blank=True)
    provider = serializers.CharField(allow_blank=True)
    prompt = serializers.CharField(allow_blank=True)
    generation = serializers.DictField(help_text="Further generation parameters, as sent.")
    duplicate_of = _nullable_str(help_text="The id of the same owner's file whose bytes this alias shares; null otherwise.")
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    retain_until = serializers.DateTimeField(allow_null=True)
    url = serializers.CharField(help_text="The stable address: the CDN for public files, else `/v1/media/{id}/content`.")
    presigned_url = _nullable_str(help_text="A fresh download URL; null while the upload is pending.")
    expires_at = serializers.DateTimeField(allow_null=True, help_text="When `presigned_url` expires.")
    variant = Variant(required=False, allow_null=True, help_text=(
        "Only with transform parameters: the image variant's URLs; null for a file that is not a raster image."))


class StoredMedia(Media):
    deduped = serializers.BooleanField(help_text="True when known content answered an existing id (status 200).")


class IngestedMedia(StoredMedia):
    source_key = _nullable_str(help_text="The `compute/` key the file came from.")
    ingested_before = serializers.BooleanField(help_text="True when this source had been ingested already.")


class CompletedMedia(Media):
    result = Media(help_text="The same object, where seed 000 reads it.")


class MediaList(serializers.Serializer):
    object = serializers.ChoiceField(choices=["list"])
    data = Media(many=True)
    has_more = serializers.BooleanField()
    next_cursor = _nullable_str(help_text="Pass as `cursor` for the next page; null on the last one.")


class MediaDeleted(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.ChoiceField(choices=["media"])
    deleted = serializers.BooleanField()


class PresignedPost(serializers.Serializer):
    url = serializers.CharField()
    fields = serializers.DictField(child=serializers.CharField(), help_text="Send them all as form fields, `file` last.")


class PreparedUpload(serializers.Serializer):
    id = serializers.CharField()
    jan_id = serializers.CharField(help_text="The id again, under seed 004's name.")
    object = serializers.ChoiceField(choices=["upload"])
    status = serializers.ChoiceField(choices=["pending"])
    presigned_url = serializers.CharField(help_text="PUT the bytes here, with `headers`.")
    url = serializers.CharField(help_text="The same URL.")
    method = serializers.ChoiceField(choices=["PUT"])
    headers = serializers.DictField(child=serializers.CharField(), help_text="Send these with the PUT.")
    presigned_post = PresignedPost(help_text="Or POST a form here (size-limited).")
    max_bytes = serializers.IntegerField(help_text="The most bytes the upload may have.")
    expires_at = serializers.DateTimeField(help_text="Upload before this; `PUT /v1/media/{id}` then completes it.")
    upload_url = serializers.CharField(help_text="The same URL as `presigned_url`, under Jan's name.")
    mime_type = serializers.CharField(help_text="The declared type (`content_type` or `mime_type`).")
    expires_in = serializers.IntegerField(help_text="Seconds the upload URL stays valid (Jan's field).")


class LegacyUploadResult(serializers.Serializer):
    id = serializers.CharField()
    url = serializers.CharField()
    method = serializers.ChoiceField(choices=["PUT"])
    headers = serializers.DictField(child=serializers.CharField())
    expires_at = serializers.DateTimeField()


class LegacyPreparedUpload(PreparedUpload):
    result = LegacyUploadResult(help_text="Where seed 000 reads `{url, id}`.")


class Presign(serializers.Serializer):
    id = serializers.CharField()
    url = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Seconds.")
    transform = serializers.DictField(child=serializers.CharField(), required=False,
                                      help_text="With transform parameters: the normalised transform signed.")


class ResolvedMedia(serializers.Serializer):
    id = serializers.CharField()
    presigned_url = _nullable_str()
    expires_at = serializers.DateTimeField(allow_null=True)
    variant = Variant(required=False, allow_null=True, help_text="Only with transform parameters.")


class Resolve(serializers.Serializer):
    media = ResolvedMedia(many=True, help_text="The ids found, in the order asked.")
    not_found = serializers.ListField(child=serializers.CharField(), help_text="Unknown, or not yours.")


class ResolvedPayload(serializers.Serializer):
    payload = serializers.JSONField(help_text="The payload sent, every media reference replaced.")


class ResolveIds(s.ResolveInput):
    """The ids form: at most 100 ids, each answered or listed in `not_found`."""


class ResolvePayload(s.ResolvePayloadInput):
    """Jan's form: any JSON, answered with its media references replaced."""


# -- request shapes where the input serializers say less than the wire format ----------------------
_GENERATION_HELP = "Further generation parameters (a JSON object)."


class MediaCreate(s.CreateInput):
    generation = serializers.DictField(required=False, help_text=_GENERATION_HELP)


class MediaUpload(s.MultipartUploadInput):
    generation = serializers.CharField(required=False, help_text=_GENERATION_HELP + " As text in a form.")


class MediaPresignedUpload(s.LegacyUploadInput):
    generation = serializers.DictField(required=False, help_text=_GENERATION_HELP)


class MediaPrepareUpload(s.PrepareUploadInput):
    generation = serializers.DictField(required=False, help_text=_GENERATION_HELP)


class MediaUpdate(s.PatchInput):
    generation = serializers.DictField(required=False, help_text=_GENERATION_HELP)


# -- examples -------------------------------------------------------------------------------------
MEDIA_EXAMPLE = {
    "id": EXAMPLE_ID, "object": "media", "status": "active", "mime": "image/jpeg", "bytes": 45678,
    "sha256": "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", "media": "image",
    "width": 1024, "height": 1024, "dimensions": "1024x1024", "size": "1024x1024", "visibility": "private",
    "category": "general", "source": "remote_url", "original_name": "image.jpg", "user": "user123", "user_id": 7,
    "model": "stability/sdxl", "provider": "stability", "prompt": "A beautiful sunset over the ocean",
    "generation": {"steps": 30}, "duplicate_of": None, "created_at": "2025-11-10T10:30:00Z",
    "completed_at": "2025-11-10T10:30:00Z", "retain_until": "2025-12-10T10:30:00Z",
    "url": f"https://media.example.com/v1/media/{EXAMPLE_ID}/content",
    "presigned_url": "https://s3.example.com/mediastore/organizations/1/files/7/image_20251110_103000_1a2b3c4d.jpg"
                     "?X-Amz-Signature=...",
    "expires_at": "2025-11-17T10:30:00Z",
}
_UPLOAD_URL = ("https://s3.example.com/mediastore/organizations/1/files/7/example_20251110_103000_1a2b3c4d.jpg"
               "?X-Amz-Signature=...")
PREPARED_EXAMPLE = {
    "id": EXAMPLE_ID, "jan_id": EXAMPLE_ID, "object": "upload", "status": "pending",
    "presigned_url": _UPLOAD_URL, "url": _UPLOAD_URL, "method": "PUT", "headers": {"Content-Type": "image/jpeg"},
    "presigned_post": {"url": "https://s3.example.com/mediastore", "fields": {
        "key": "organizations/1/files/7/example_20251110_103000_1a2b3c4d.jpg", "policy": "...",
        "x-amz-signature": "...", "x-amz-date": "20251110T103000Z"}},
    "max_bytes": 20971520, "expires_at": "2025-11-10T11:30:00Z",
    "upload_url": _UPLOAD_URL, "mime_type": "image/jpeg", "expires_in": 3600,
}
_COMPLETED = {**MEDIA_EXAMPLE, "source": "upload", "original_name": "example.jpg", "model": "", "provider": "",
              "prompt": "", "generation": {}}


def _response(name: str, value: dict, status: int = 200) -> OpenApiExample:
    return OpenApiExample(name, value=value, response_only=True, status_codes=[str(status)])


# -- operations (one per view method) -----------------------------------------------------------
media_list = extend_schema(
    operation_id="media_list", summary="List media files",
    description="The caller's files (`user=me`); organization admins and service keys may name another member. "
                "Newest first unless `sort=oldest`; page on with `cursor`.",
    parameters=[
        s.ListQuery,
        OpenApiParameter("user", str, description="`me`, or (admins and service keys) a member's username or id.",
                         default="me", examples=[OpenApiExample("Your files", value="me")]),
        OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": 100}, default=20,
                         examples=[OpenApiExample("Ten", value=10)]),
        *TRANSFORM,
    ],
    responses={200: MediaList, **errors(404)},
    examples=[_response("GET /v1/media?user=me&limit=10", {
        "object": "list", "data": [MEDIA_EXAMPLE], "has_more": False, "next_cursor": None})],
)

media_create = extend_schema(
    operation_id="media_create", summary="Store media from a remote URL or a data URL",
    description="Fetches the remote URL (SSRF-safe, size- and time-limited) or decodes the data URL, sniffs "
                "the type, hashes and stores. Known content (the same SHA-256 for the same owner) answers the "
                "existing id with `deduped: true`; a new file answers 200 too (as Jan's media-api does), with "
                "`deduped: false`. `filename` is recorded as the original name. `user_id` is for service keys.",
    request=MediaCreate,
    responses={200: StoredMedia, **errors(404, 502)},
    examples=[
        OpenApiExample("Upload from remote URL", request_only=True, value={
            "source": {"type": "remote_url", "url": "https://example.com/image.jpg"}, "user_id": "user123"}),
        OpenApiExample("Upload from data URL (base64 image)", request_only=True, value={
            "source": {"type": "data_url", "data_url": "data:image/jpeg;base64,/9j/4AAQSkZJRg..."},
            "user_id": "user123"}),
        OpenApiExample("Jan client: data URL with a filename", request_only=True, value={
            "source": {"type": "data_url", "data_url": "data:image/png;base64,iVBORw0KGgo..."},
            "filename": "diagram.png", "user_id": "user123"}),
        _response("Stored", {**MEDIA_EXAMPLE, "deduped": False}),
        _response("Deduplicated", {**MEDIA_EXAMPLE, "deduped": True}),
    ],
)

media_upload = extend_schema(
    operation_id="media_upload", summary="Upload bytes (multipart), or ask for a presigned upload (JSON)",
    description="`multipart/form-data` with `file` and the optional fields of `POST /v1/media` stores the bytes "
                "(201, or 200 with `deduped: true`). A JSON body `{name, mime}` (seed 000, step 1) instead "
                "answers a presigned upload like prepare-upload, with `result: {id, url}` (201).",
    request={"multipart/form-data": MediaUpload, "application/json": MediaPresignedUpload},
    responses={
        201: OpenApiResponse(PolymorphicProxySerializer(
            component_name="UploadResult", serializers=[StoredMedia, LegacyPreparedUpload],
            resource_type_field_name=None), description="Stored (multipart), or a presigned upload (JSON)."),
        200: OpenApiResponse(StoredMedia, description="Known content: the existing file, `deduped: true`."),
        **errors(404),
    },
    examples=[
        OpenApiExample("Seed 000 step 1: request an upload URL", request_only=True, media_type="application/json",
                       value={"name": "example.jpg", "mime": "image/jpeg"}),
        OpenApiExample("Direct upload", request_only=True, media_type="multipart/form-data",
                       value={"file": "(binary)", "user_id": "user123"}),
        _response("Upload URL (JSON request)", {**PREPARED_EXAMPLE, "result": {
            "id": EXAMPLE_ID, "url": _UPLOAD_URL, "method": "PUT", "headers": {"Content-Type": "image/jpeg"},
            "expires_at": "2025-11-10T11:30:00Z"}}, 201),
    ],
)

media_prepare_upload = extend_schema(
    operation_id="media_prepare_upload", summary="Prepare a presigned upload",
    description="Reserves quota, creates a `pending` file and answers a presigned PUT URL and a size-limited "
                "presigned POST form. Upload, then `PUT /v1/media/{id}` (or any GET of the id) completes it. "
                "The type is `content_type` (seed 004) or `mime_type` (Jan's media-api); one is required. "
                "Answers 200, as Jan's does, with Jan's `upload_url`, `mime_type` and `expires_in` as well. "
                "With `\"multipart\": true` and `bytes` (S3 without app encryption; else 400 "
                "`multipart_not_supported`) it answers `multipart.parts`, one presigned PUT URL per part of "
                "`multipart.part_size` bytes; complete with `PUT /v1/media/{id}` and the parts' ETags.",
    request=MediaPrepareUpload,
    responses={200: PreparedUpload, **errors(404, 415)},
    examples=[
        OpenApiExample("Prepare upload", request_only=True, value={"content_type": "image/jpeg", "user_id": "user123"}),
        OpenApiExample("Jan client: mime_type", request_only=True, value={"mime_type": "image/jpeg",
                                                                           "user_id": "user123"}),
        _response("Prepared", PREPARED_EXAMPLE),
    ],
)

_SIGNED = MEDIA_EXAMPLE["presigned_url"]
_PDF_ID = "med_01hqr8v9k2x3f4g5h6j7k8m9n2"
_RESOLVE_EXAMPLES = {
    "openai": {"model": "gpt-4o", "messages": [
        {"role": "system", "content": f"Answer about the picture data:image/jpeg;{EXAMPLE_ID}"},
        {"role": "user", "content": [{"type": "text", "text": "What is in this image?"},
                                     {"type": "image_url", "image_url": {"url": EXAMPLE_ID, "detail": "high"}}]}]},
    "openai_responses": {"model": "gpt-4.1", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "Summarise the report and describe the image."},
        {"type": "input_image", "image_url": EXAMPLE_ID}, {"type": "input_file", "file_url": _PDF_ID}]}]},
    "anthropic": {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": EXAMPLE_ID}},
        {"type": "text", "text": "What is in this image?"}]}]},
    "gemini": {"contents": [{"role": "user", "parts": [
        {"text": "What is in this image?"}, {"file_data": {"file_uri": EXAMPLE_ID, "mime_type": "image/jpeg"}}]}]},
}
_RESOLVED_PARTS = {
    "openai": {"type": "image_url", "image_url": {"url": _SIGNED, "detail": "high"}},
    "anthropic": {"type": "image", "source": {"type": "url", "url": _SIGNED}},
}

media_resolve = extend_schema(
    operation_id="media_resolve", summary="Resolve media ids, or every media reference in a model request",
    description=(
        "Two forms. `{\"ids\": [...]}`: at most 100 ids, one query; unknown ids and ids that are not yours are "
        "listed in `not_found`.\n\n`{\"payload\": <any JSON>}` (Jan's form): answers `{\"payload\": ...}`, the same "
        "JSON with every media reference replaced: a string that is exactly a media id, and Jan's placeholder "
        "`data:<mime>;<id>` anywhere inside a string. `as`: `url` (default; signed URLs valid `ttl` seconds) or "
        "`data_url` (the bytes inline as base64, at most `MEDIA_RESOLVE_INLINE_MAX_BYTES` in all, else 413 "
        "`inline_too_large`). `format` (`openai`, `openai_responses`, `anthropic`, `gemini`) also rewrites each "
        "content part holding a reference into that provider's own part for the file's real type (images; PDF "
        "and audio where the provider has a part for them); a file the provider cannot take is a 400 "
        "`unsupported_media_for_provider` naming its JSON path in `param`. Every id must be one the caller may "
        "read: any other (another member's, another organization's, deleted, unknown) fails the whole call with "
        "404 `media_not_found`, `param` naming where it was. One query for all ids; at most 1,000 distinct ids "
        "(400 `too_many_references`); bodies over `MEDIA_RESOLVE_MAX_PAYLOAD_BYTES` are 413 `payload_too_large`.\n\n"
        "Transform parameters in the query string add each image's `variant` (ids form)."),
    parameters=TRANSFORM,
    request=PolymorphicProxySerializer(component_name="ResolveRequest", serializers=[ResolveIds, ResolvePayload],
                                       resource_type_field_name=None),
    responses={200: OpenApiResponse(PolymorphicProxySerializer(
        component_name="ResolveResult", serializers=[Resolve, ResolvedPayload], resource_type_field_name=None),
        description="`{media, not_found}` for ids, `{payload}` for a payload."), **errors(404, 413)},
    examples=[
        OpenApiExample("Resolve two ids", request_only=True, value={"ids": [EXAMPLE_ID, EXAMPLE_ID_2]}),
        OpenApiExample("Jan: placeholders to signed URLs", request_only=True, value={"payload": {
            "messages": [{"role": "user", "content": f"Describe data:image/jpeg;{EXAMPLE_ID}"}]}}),
        *[OpenApiExample(f"Payload for {fmt}", request_only=True,
                         value={"payload": body, "format": fmt, **({"as": "data_url"} if fmt == "gemini" else {})})
          for fmt, body in _RESOLVE_EXAMPLES.items()],
        _response("Resolved", {"media": [{"id": EXAMPLE_ID, "presigned_url": _SIGNED,
                                          "expires_at": "2025-11-17T10:30:00Z"}], "not_found": [EXAMPLE_ID_2]}),
        *[_response(f"Resolved payload ({fmt})", {"payload": {**_RESOLVE_EXAMPLES[fmt], "messages": [
            {"role": "user", "content": [_RESOLVED_PARTS[fmt]]}]}}) for fmt in _RESOLVED_PARTS],
    ],
)

media_retrieve = extend_schema(
    operation_id="media_retrieve", summary="Get a media file",
    description="The media object with a fresh `presigned_url`; a pending upload whose object has arrived is "
                "completed first. Transform parameters add the image variant's URLs (`variant`).",
    parameters=[MEDIA_ID, *TRANSFORM],
    responses={200: Media, **errors(415)},
    examples=[_response("Active", MEDIA_EXAMPLE)],
)

media_complete = extend_schema(
    operation_id="media_complete", summary="Complete a presigned upload",
    description="Seed 000, step 3. Checks the object exists, its real size against the limits and the reservation, "
                "sniffs the type, hashes and reads dimensions. Idempotent. No body, except for a direct "
                "multipart upload: `{\"parts\": [{\"part_number\": 1, \"etag\": \"...\"}]}`.",
    parameters=[MEDIA_ID],
    request=s.CompleteInput,
    responses={200: CompletedMedia, **errors(409, 413, 415)},
    examples=[_response("Completed", {**_COMPLETED, "result": _COMPLETED})],
)

media_update = extend_schema(
    operation_id="media_update", summary="Update visibility, retention or provenance",
    parameters=[MEDIA_ID],
    request=MediaUpdate,
    responses={200: Media},
    examples=[OpenApiExample("Make public", request_only=True, value={"visibility": "public"})],
)

media_destroy = extend_schema(
    operation_id="media_destroy", summary="Delete a media file",
    description="Hidden at once; the lifecycle job purges the object.",
    parameters=[MEDIA_ID],
    responses={200: MediaDeleted},
    examples=[_response("Deleted", {"id": EXAMPLE_ID, "object": "media", "deleted": True})],
)

media_presign = extend_schema(
    operation_id="media_presign", summary="A presigned download URL",
    description="With transform parameters, the image variant is rendered (once) and its URL signed.",
    parameters=[MEDIA_ID, s.PresignQuery, *TRANSFORM],
    responses={200: Presign, **errors(409, 413, 415, 503)},
    examples=[_response("Presigned", {"id": EXAMPLE_ID, "url": MEDIA_EXAMPLE["presigned_url"], "expires_in": 300})],
)

_CONTENT_REQUEST_HEADERS = [
    OpenApiParameter("Range", str, OpenApiParameter.HEADER, description="One range, `bytes=start-end`."),
    OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, description="The ETag (the SHA-256) you have."),
]
_CONTENT_RESPONSE_HEADERS = [
    OpenApiParameter("ETag", str, OpenApiParameter.HEADER, response=[200, 206, 304]),
    OpenApiParameter("Content-Range", str, OpenApiParameter.HEADER, response=[206, 416], required=True,
                     description="`bytes start-end/size`; on 416, `bytes */size`."),
    OpenApiParameter("Location", str, OpenApiParameter.HEADER, response=[302], required=True,
                     description="The CDN URL (public files) or a presigned URL."),
]
_CONTENT_DESCRIPTION = (
    "The bytes, streamed with `Range` and `ETag`, or a 302 to the CDN or a presigned URL. Public files need no "
    "credentials; private ones are answered only to their owner (404 to anyone else). Transform parameters "
    "answer an image variant, rendered on the first request and stored.")


def _content(method: str, *, body: bool) -> Callable:
    # Bytes of any type for GET (`(status, "*/*")` keys); no body at all for HEAD.
    bytes_ = OpenApiTypes.BINARY if body else None
    ok, partial = ((200, "*/*"), (206, "*/*")) if body else (200, 206)
    return extend_schema(
        operation_id=f"media_content{'' if body else '_head'}", summary=f"{method} the bytes",
        description=_CONTENT_DESCRIPTION,
        parameters=[MEDIA_ID, *TRANSFORM, *_CONTENT_REQUEST_HEADERS, *_CONTENT_RESPONSE_HEADERS],
        responses={
            ok: OpenApiResponse(bytes_, description="The whole file."),
            partial: OpenApiResponse(bytes_, description="The requested range."),
            302: OpenApiResponse(description="Served elsewhere: see `Location`."),
            304: OpenApiResponse(description="Not modified (`If-None-Match`)."),
            **errors(409, 413, 415, 416, 503),
        },
    )


media_content = _content("GET", body=True)
media_content_head = _content("HEAD", body=False)

media_ingest = extend_schema(
    operation_id="media_ingest", summary="Adopt a compute/ object as a media file",
    description="Service keys only. Copies the object under `compute/` to its canonical key and, with `relocate` "
                "(default), schedules the source for deferred deletion. Ingesting the same source again answers "
                "the same file (200).",
    responses={201: IngestedMedia, 200: IngestedMedia, **errors(404, 409)},
    examples=[OpenApiExample("Ingest", request_only=True, value={
        "storage_key": "compute/generations/sunset.png", "user_id": "user123", "model": "stability/sdxl",
        "provider": "stability", "prompt": "A beautiful sunset over the ocean"})],
)
