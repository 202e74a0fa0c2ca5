"""How `/api/schema` describes the Storage API (seeds 001/003): the shapes its views render and
one `extend_schema` per operation."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers

from media_app.models import MediaFile
from api.storage import serializers as s

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


class StoredUpload(s.StoredFileSerializer):
    deduped = serializers.BooleanField(
        help_text="true: these bytes were already stored for you; the answer is that file (200), nothing new "
                  "is stored or charged. false: a new file (201). As the Media API answers.")

    class Meta(s.StoredFileSerializer.Meta):
        fields = [*s.StoredFileSerializer.Meta.fields, "deduped"]


class StorageUpload(s.UploadSerializer):
    category = serializers.ChoiceField(choices=MediaFile.Category.choices, required=False, default="general")


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
    description="Quota and type are checked before the bytes are kept. A file whose bytes you already "
                "stored answers that file with 200 and `deduped: true` (as `POST /v1/media/upload`). `profile_image`: images only, small; "
                "`data_source`: tabular and document formats; `general`: the rest, never executables.",
    request={"multipart/form-data": StorageUpload},
    responses={201: OpenApiResponse(StoredUpload, description="A new file (`deduped: false`)."),
               200: OpenApiResponse(StoredUpload, description="The same bytes were already stored for you: "
                                                              "that file, `deduped: true`; nothing is charged.")},
    examples=[
        OpenApiExample("Upload a CSV as a data source", request_only=True, media_type="multipart/form-data",
                       value={"file": "(binary)", "category": "data_source"}),
        OpenApiExample("Uploaded", response_only=True, status_codes=["201"],
                       value={**_STORED_FILE_EXAMPLE, "deduped": False}),
        OpenApiExample("Already stored", response_only=True, status_codes=["200"],
                       value={**_STORED_FILE_EXAMPLE, "deduped": True}),
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
