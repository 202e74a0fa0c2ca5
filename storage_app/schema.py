"""How `/api/schema` describes the Storage API (`api.py`) and the compute image endpoints
(`images_api.py`): the shapes their views render and one `extend_schema` per operation.
"""
from __future__ import annotations

from collections.abc import Callable

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers

from config.openapi import errors
from media_app.models import MediaFile
from storage_app import serializers as s
from storage_app.categories import CATEGORIES

OBJECT_NAME = OpenApiParameter(
    "object_name", str, OpenApiParameter.PATH,
    description="The full key (`organizations/{org}/files/{user}/{file_name}`) or the unique file name inside "
                "your folder.",
    examples=[OpenApiExample("File name", value="report_20251110_103000_1a2b3c4d.csv")])


# -- Storage API shapes -------------------------------------------------------------------------
class Bucket(serializers.Serializer):
    name = serializers.CharField()
    backend = serializers.ChoiceField(choices=["local", "s3"])


class BucketList(serializers.Serializer):
    buckets = Bucket(many=True)


class BucketObject(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField(help_text="The key inside your folder.")
    size = serializers.IntegerField(help_text="Stored bytes (ciphertext when encrypted by the app).")
    last_modified = serializers.DateTimeField(allow_null=True)


class BucketObjectList(serializers.Serializer):
    bucket = serializers.CharField()
    prefix = serializers.CharField()
    objects = BucketObject(many=True)


class FileList(serializers.Serializer):
    files = s.StoredFileSerializer(many=True)
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    total = serializers.IntegerField()
    total_pages = serializers.IntegerField()


class ObjectPresign(serializers.Serializer):
    object_name = serializers.CharField(help_text="The full key.")
    url = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Seconds.")
    expires_at = serializers.DateTimeField()


class CategoryUsage(serializers.Serializer):
    bytes = serializers.IntegerField()
    files = serializers.IntegerField()


class Usage(serializers.Serializer):
    organization = serializers.CharField(help_text="The organization's slug.")
    used_bytes = serializers.IntegerField()
    reserved_bytes = serializers.IntegerField(help_text="Held for presigned uploads not yet completed.")
    limit_bytes = serializers.IntegerField()
    available_bytes = serializers.IntegerField()
    file_count = serializers.IntegerField()
    used_percent = serializers.FloatField()
    by_category = serializers.DictField(child=CategoryUsage(), help_text=f"Keyed by category: {', '.join(CATEGORIES)}.")
    recalculated_at = serializers.DateTimeField(allow_null=True)


class Plan(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()


class CategoryLimit(serializers.Serializer):
    max_file_bytes = serializers.IntegerField()
    allows = serializers.CharField()


class QuotaLimits(serializers.Serializer):
    organization = serializers.CharField()
    plan = Plan()
    limit_bytes = serializers.IntegerField()
    max_file_bytes = serializers.IntegerField()
    allowed_categories = serializers.ListField(child=serializers.CharField())
    categories = serializers.DictField(child=CategoryLimit())
    retention_days = serializers.IntegerField()
    keep_forever_allowed = serializers.BooleanField()


class QuotaCounters(serializers.Serializer):
    used_bytes = serializers.IntegerField()
    reserved_bytes = serializers.IntegerField()
    file_count = serializers.IntegerField()


class QuotaRecalculation(serializers.Serializer):
    organization = serializers.CharField()
    before = QuotaCounters()
    after = QuotaCounters()
    changed = serializers.BooleanField()


class StorageUpload(s.UploadSerializer):
    category = serializers.ChoiceField(choices=MediaFile.Category.choices, required=False, default="general")


# -- compute image shapes -----------------------------------------------------------------------
class ImageUpload(serializers.Serializer):
    file = serializers.FileField()


class SavedImage(serializers.Serializer):
    path = serializers.CharField(help_text="As given, relative to `compute/`.")
    url = serializers.CharField(help_text="The CDN URL, or this endpoint's.")
    bytes = serializers.IntegerField()
    mime = serializers.CharField(help_text="Sniffed from the content.")
    sha256 = serializers.CharField()


# -- Storage API operations -----------------------------------------------------------------------
_STORED_FILE_EXAMPLE = {
    "id": "med_01hqr8v9k2x3f4g5h6j7k8m9n0",
    "object_name": "organizations/1/files/7/report_20251110_103000_1a2b3c4d.csv",
    "file_name": "report_20251110_103000_1a2b3c4d.csv", "original_name": "report.csv", "size": 2048,
    "content_type": "text/csv", "category": "data_source",
    "sha256": "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", "user_id": 7,
    "organization_id": 1, "encrypted": True, "uploaded_at": "2025-11-10T10:30:00Z",
    "retain_until": "2025-12-10T10:30:00Z",
}

storage_buckets = extend_schema(operation_id="storage_buckets", summary="List buckets",
                                responses={200: BucketList})

storage_bucket_objects = extend_schema(
    operation_id="storage_bucket_objects", summary="List objects in a bucket (your folder only)",
    description="Read from the bucket itself, restricted to `organizations/{org}/files/{you}/`.",
    parameters=[OpenApiParameter("bucket", str, OpenApiParameter.PATH, description="A name from `/buckets`."),
                s.ObjectListQuerySerializer],
    responses={200: BucketObjectList},
)

storage_files = extend_schema(
    operation_id="storage_files", summary="List uploaded files",
    parameters=[s.FileListQuerySerializer], responses={200: FileList},
)

storage_upload = extend_schema(
    operation_id="storage_upload", summary="Upload a file",
    description="Quota and type are checked before the bytes are kept. `profile_image`: images only, small; "
                "`data_source`: tabular and document formats; `general`: the rest, never executables.",
    request={"multipart/form-data": StorageUpload},
    responses={201: s.StoredFileSerializer},
    examples=[
        OpenApiExample("Upload a CSV as a data source", request_only=True, media_type="multipart/form-data",
                       value={"file": "(binary)", "category": "data_source"}),
        OpenApiExample("Uploaded", response_only=True, status_codes=["201"], value=_STORED_FILE_EXAMPLE),
    ],
)

storage_object_metadata = extend_schema(
    operation_id="storage_object_metadata", summary="File metadata",
    parameters=[OBJECT_NAME], responses={200: s.StoredFileSerializer},
)

storage_object_presign = extend_schema(
    operation_id="storage_object_presigned_url", summary="A presigned URL for a file",
    parameters=[OBJECT_NAME, s.PresignQuerySerializer], responses={200: ObjectPresign},
)

storage_object_delete = extend_schema(
    operation_id="storage_object_delete", summary="Delete a file",
    description="The quota is released at once; the object is purged by the lifecycle job.",
    parameters=[OBJECT_NAME], responses={204: OpenApiResponse(description="Deleted.")},
)

storage_usage = extend_schema(operation_id="storage_usage", summary="Storage usage and quota",
                              responses={200: Usage})

storage_quota = extend_schema(operation_id="storage_quota", summary="Storage quota limits",
                              responses={200: QuotaLimits})

storage_quota_recalculate = extend_schema(
    operation_id="storage_quota_recalculate", summary="Recount usage from the files (owners and admins)",
    request=None, responses={200: QuotaRecalculation},
)

# -- compute image operations ---------------------------------------------------------------------
IMAGE_PATH = OpenApiParameter(
    "path", str, OpenApiParameter.PATH,
    description="Relative to `compute/`. Absolute paths, `..`, empty segments, backslashes and control "
                "characters are refused (400 `invalid_path`).",
    examples=[OpenApiExample("Image path", value="generations/sunset.png")])


def _image_read(method: str, *, body: bool) -> Callable:
    # Bytes of any type for GET (`(status, "*/*")` keys); no body at all for HEAD.
    bytes_ = OpenApiTypes.BINARY if body else None
    ok, partial = ((200, "*/*"), (206, "*/*")) if body else (200, 206)
    redirect = {302: OpenApiResponse(description="Served by the CDN: see `Location`.")} if body else {}
    return extend_schema(
        operation_id=f"image_{method.lower()}", summary="Get an image" if body else "Whether an image exists",
        description=("A 302 to the CDN when the S3 backend has a public endpoint, else the bytes." if body
                     else "200 with its length and type, or 404."),
        parameters=[
            IMAGE_PATH,
            OpenApiParameter("Range", str, OpenApiParameter.HEADER, description="One range, `bytes=start-end`."),
            OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER),
            OpenApiParameter("ETag", str, OpenApiParameter.HEADER, response=[200, 206, 304]),
            OpenApiParameter("Content-Range", str, OpenApiParameter.HEADER, response=[206, 416], required=True,
                             description="`bytes start-end/size`; on 416, `bytes */size`."),
            *([OpenApiParameter("Location", str, OpenApiParameter.HEADER, response=[302], required=True)]
              if body else []),
        ],
        responses={
            ok: OpenApiResponse(bytes_, description="The image."),
            partial: OpenApiResponse(bytes_, description="The requested range."),
            **redirect,
            304: OpenApiResponse(description="Not modified (`If-None-Match`)."),
            **errors(409, 416),
        },
    )


image_list = extend_schema(
    operation_id="image_list", summary="List image paths",
    parameters=[
        OpenApiParameter("prefix", str, description="Paths starting with this, e.g. `generations/`.",
                         examples=[OpenApiExample("Generations", value="generations/")]),
        OpenApiParameter("limit", {"type": "integer", "minimum": 1}, default=100,
                         description="At most 1000 are answered."),
    ],
    responses={200: OpenApiResponse({"type": "array", "items": {"type": "string"}},
                                    description="Paths relative to `compute/`.")},
)
image_get = _image_read("GET", body=True)
image_head = _image_read("HEAD", body=False)
image_save = extend_schema(
    operation_id="image_save", summary="Save an image",
    description="Multipart `file`. Executables and HTML are refused before a byte is written. An existing path "
                "answers 409 unless `overwrite=true`.",
    parameters=[IMAGE_PATH, OpenApiParameter("overwrite", bool, default=False)],
    request={"multipart/form-data": ImageUpload},
    responses={201: SavedImage, **errors(409)},
)
image_delete = extend_schema(
    operation_id="image_delete", summary="Delete an image",
    parameters=[IMAGE_PATH], responses={204: OpenApiResponse(description="Deleted.")},
)
