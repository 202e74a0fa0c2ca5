"""Shapes of the Media API (seeds 004 and 000). Input serializers check shape only."""
from __future__ import annotations

import json
from datetime import datetime

from django.conf import settings
from django.core.validators import ProhibitNullCharactersValidator
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from config.errors import InvalidRequest
from config.parsers import JsonTooDeep, json_depth, json_loads_bounded
from media_app.links import MediaLinks
from media_app.models import MediaFile
from media_app.selectors import media_cursor_decode
from media_app.providers import PROVIDER_FORMATS

MAX_RESOLVE_IDS = 100
MAX_GENERATION_DEPTH = 8
MAX_GENERATION_BYTES = 64 * 1024
PROVENANCE_FIELDS = ("model", "provider", "prompt", "generation")


# -- input ----------------------------------------------------------------------------------
class ProvenanceInput(serializers.Serializer):
    visibility = serializers.ChoiceField(choices=MediaFile.Visibility.values, default="private")
    category = serializers.CharField(required=False, allow_blank=True, max_length=40)
    model = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    provider = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    prompt = serializers.CharField(required=False, allow_blank=True, max_length=20000, default="", trim_whitespace=False)
    generation = serializers.JSONField(required=False, default=dict)
    user_id = serializers.CharField(required=False, max_length=150)

    def validate_generation(self, value):  # noqa: ANN001, ANN201
        return generation_value(value)


def generation_value(value: object) -> dict:
    """The `generation` JSON object to store (multipart sends it as text), shallow and small."""
    if isinstance(value, str):
        try:
            value = json_loads_bounded(value, max_depth=MAX_GENERATION_DEPTH)
        except (ValueError, JsonTooDeep):
            raise serializers.ValidationError("generation must be a JSON object.", code="invalid_generation")
    if not isinstance(value, dict):
        raise serializers.ValidationError("generation must be a JSON object.", code="invalid_generation")
    _check_generation_bounds(value)
    return value


def _check_generation_bounds(value: dict) -> None:
    """Stored JSON is read back by every listing and serializer: keep it shallow and small."""
    if json_depth(value) > MAX_GENERATION_DEPTH:
        raise serializers.ValidationError(f"generation may nest at most {MAX_GENERATION_DEPTH} levels deep.",
                                          code="invalid_generation")
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > MAX_GENERATION_BYTES:
        raise serializers.ValidationError(f"generation may hold at most {MAX_GENERATION_BYTES} bytes of JSON "
                                          f"({size} sent).", code="invalid_generation")


# Jan's media-api also takes these spellings of the two source types, in any case.
SOURCE_TYPE_ALIASES = {"data_url": "data_url", "datauri": "data_url", "dataurl": "data_url",
                       "remote_url": "remote_url", "remoteuri": "remote_url", "remote": "remote_url"}


class SourceTypeField(serializers.ChoiceField):
    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        super().__init__(choices=["remote_url", "data_url"], **kwargs)

    def to_internal_value(self, data):  # noqa: ANN001, ANN201
        if isinstance(data, str):
            data = SOURCE_TYPE_ALIASES.get(data.lower(), data)
        return super().to_internal_value(data)


class SourceInput(serializers.Serializer):
    type = SourceTypeField(help_text="`remote_url` or `data_url` (Jan's `remote`, `remoteuri`, `datauri`, "
                                     "`dataurl` too, in any case).")
    url = serializers.CharField(required=False, max_length=8192)
    data_url = serializers.CharField(required=False, trim_whitespace=False)

    def validate(self, attrs: dict) -> dict:
        needed = "url" if attrs["type"] == "remote_url" else "data_url"
        if not attrs.get(needed):
            raise serializers.ValidationError({needed: f"A {attrs['type']} source needs '{needed}'."})
        return attrs


class CreateInput(ProvenanceInput):
    source = SourceInput()
    filename = serializers.CharField(required=False, allow_blank=True, max_length=255, default="",
                                     help_text="The original name to record (Jan's field).")

    # Names Jan's clients send that are taken without being declared (config.api.validated).
    accepted_aliases = ("filename",)


class MultipartUploadInput(ProvenanceInput):
    file = serializers.FileField(allow_empty_file=True)


class PrepareUploadInput(ProvenanceInput):
    """Seed 004 sends `content_type`, Jan's server `mime_type`: either names the declared type."""

    content_type = serializers.CharField(max_length=127, required=False)
    mime_type = serializers.CharField(max_length=127, required=False, help_text="Jan's name for `content_type`.")
    bytes = serializers.IntegerField(required=False, min_value=1)
    filename = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")
    # Straight to S3 in parts (files above what one request or one presigned PUT should carry).
    multipart = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict) -> dict:
        if attrs.get("multipart") and not attrs.get("bytes"):
            raise serializers.ValidationError({"bytes": "A multipart upload needs its size in bytes."},
                                              code="required")
        sent = [name for name in ("content_type", "mime_type") if attrs.get(name)]
        if not sent:
            raise serializers.ValidationError(
                {"content_type": [ErrorDetail("content_type (or mime_type) is required.", code="required")]})
        if len(sent) == 2 and attrs["content_type"] != attrs["mime_type"]:
            raise serializers.ValidationError(
                {"mime_type": [ErrorDetail("mime_type and content_type differ; send one.", code="conflicting_fields")]})
        # The field the client used, so a refusal of the type names it.
        return {**attrs, "content_type": attrs[sent[0]], "type_param": sent[0]}


class PartInput(serializers.Serializer):
    part_number = serializers.IntegerField(min_value=1, max_value=10000)
    etag = serializers.CharField(max_length=200)


class CompleteInput(serializers.Serializer):
    """The ETags S3 answered for each part of a direct multipart upload; nothing otherwise."""

    parts = PartInput(many=True, required=False)


def multipart_body(prepared) -> dict:  # noqa: ANN001 - a PreparedMultipart
    upload = prepared.upload
    return {
        "id": prepared.media.pk, "object": "upload", "status": "pending", "max_bytes": prepared.media.reserved_bytes,
        "expires_at": upload.expires_at,
        "multipart": {"upload_id": upload.upload_id, "part_size": upload.part_size,
                      "parts": [{"part_number": n, "url": url, "method": "PUT"}
                                for n, url in enumerate(upload.part_urls, start=1)]},
    }


class LegacyUploadInput(ProvenanceInput):
    """Seed 000 step 1: `{"name", "mime"}`."""

    name = serializers.CharField(max_length=255)
    mime = serializers.CharField(max_length=127)
    bytes = serializers.IntegerField(required=False, min_value=1)


class PatchInput(serializers.Serializer):
    visibility = serializers.ChoiceField(choices=MediaFile.Visibility.values, required=False)
    retain_until = serializers.DateTimeField(required=False, allow_null=True)
    model = serializers.CharField(required=False, allow_blank=True, max_length=200)
    provider = serializers.CharField(required=False, allow_blank=True, max_length=100)
    prompt = serializers.CharField(required=False, allow_blank=True, max_length=20000, trim_whitespace=False)
    generation = serializers.JSONField(required=False)

    def validate_generation(self, value):  # noqa: ANN001, ANN201
        return generation_value(value)


class ResolveInput(serializers.Serializer):
    ids = serializers.ListField(child=serializers.CharField(max_length=64), min_length=1,
                                max_length=MAX_RESOLVE_IDS, allow_empty=False)

    accepted_aliases = ("payload",)  # Jan's media-in-model-calls body

    def to_internal_value(self, data):  # noqa: ANN001, ANN201
        ids = data.get("ids") if isinstance(data, dict) else None
        if isinstance(ids, list) and not all(isinstance(item, str) for item in ids):
            raise serializers.ValidationError({"ids": ["Every id must be a string."]}, code="invalid")
        return super().to_internal_value(data)


class ResolvePayloadInput(serializers.Serializer):
    """Jan's form: any JSON whose media references are replaced (`media_app.resolve`)."""

    payload = serializers.JSONField(help_text="Any JSON, e.g. a chat request.")
    locals()["as"] = serializers.ChoiceField(choices=["url", "data_url"], default="url",
                                             help_text="Signed URLs (default), or the bytes inline as base64.")
    ttl = serializers.IntegerField(required=False, help_text="Seconds the URLs stay valid; capped by "
                                                              "MEDIA_S3_PRESIGN_TTL.")
    format = serializers.ChoiceField(choices=PROVIDER_FORMATS, required=False,
                                     help_text="Rewrite each content part that references media into this "
                                               "provider's own part; without it only the strings are replaced.")


class PresignQuery(serializers.Serializer):
    ttl = serializers.IntegerField(required=False, help_text="Seconds; capped by MEDIA_S3_PRESIGN_TTL.")


class ListQuery(serializers.Serializer):
    user = serializers.CharField(required=False, default="me")
    media = serializers.ChoiceField(choices=MediaFile.Kind.values, required=False)
    model = serializers.CharField(required=False, max_length=200)
    provider = serializers.CharField(required=False, max_length=100)
    category = serializers.ChoiceField(choices=MediaFile.Category.values, required=False)
    visibility = serializers.ChoiceField(choices=MediaFile.Visibility.values, required=False)
    search = serializers.CharField(required=False, max_length=200)
    sort = serializers.ChoiceField(choices=["newest", "oldest"], default="newest")
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)
    cursor = serializers.CharField(required=False, max_length=200)

    def validate_cursor(self, value: str) -> tuple[datetime, str]:
        try:
            return media_cursor_decode(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc), code="invalid_cursor") from None


def presign_ttl(requested: int | None) -> int:
    cap = int(settings.MEDIA_S3_PRESIGN_TTL)
    if requested is None:
        return cap
    if not 1 <= requested <= cap:
        raise InvalidRequest(f"ttl must be between 1 and {cap} seconds.", code="invalid_ttl", param="ttl")
    return requested


# -- output ---------------------------------------------------------------------------------
def own_original_id(media: MediaFile) -> str | None:
    """The file an alias reads, if it is the same owner's: an alias of another member's file
    (organization-wide dedup) must not tell its owner that file exists."""
    if media.duplicate_of_id is None or media.duplicate_of.owner_id != media.owner_id:
        return None
    return media.duplicate_of_id


class MediaOutput:
    """Renders media objects with the URLs `links` makes (one store and one clock per response)."""

    def __init__(self, links: MediaLinks) -> None:
        self.links = links

    def media(self, media: MediaFile, *, deduped: bool | None = None, presign: bool = True) -> dict:
        url, expires_at = self.links.download(media) if presign else (None, None)
        body = {
            "id": media.pk,
            "object": "media",
            "status": media.status,
            "mime": media.mime or None,
            "bytes": media.bytes,
            "sha256": media.sha256 or None,
            "media": media.media_kind,
            "width": media.width,
            "height": media.height,
            "dimensions": media.dimensions,
            "size": media.dimensions,  # seed 000 calls the dimensions "size"
            "visibility": media.visibility,
            "category": media.category,
            "source": media.source,
            "original_name": media.original_name,
            "user": media.owner.username,
            "user_id": media.owner_id,
            "model": media.model,
            "provider": media.provider,
            "prompt": media.prompt,
            "generation": media.generation,
            "duplicate_of": own_original_id(media),
            "created_at": media.created_at,
            "completed_at": media.completed_at,
            "retain_until": media.retain_until,
            "url": self.links.content_url(media),
            "presigned_url": url,
            "expires_at": expires_at,
        }
        if deduped is not None:
            body["deduped"] = deduped
        if self.links.transform is not None:
            body["variant"] = self.links.variant(media)
        return body


class StorageKeyField(serializers.CharField):
    """Checked by the service (400 `invalid_path`), so every bad key, NUL included, gets the same answer."""

    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        super().__init__(trim_whitespace=False, **kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)]


class IngestInput(ProvenanceInput):
    storage_key = StorageKeyField()
    relocate = serializers.BooleanField(required=False, default=True)
