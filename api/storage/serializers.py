"""Shapes of the Storage API (seeds 001/003)."""
from __future__ import annotations

from rest_framework import serializers

from media_app.models import MediaFile
from storage_app.categories import CATEGORIES


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, error_messages={"required": "A 'file' field is required."})
    category = serializers.CharField(required=False, default="general", help_text=f"One of {', '.join(CATEGORIES)}.")


class FileListQuerySerializer(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, default=1)
    page_size = serializers.IntegerField(min_value=1, max_value=100, default=20)
    category = serializers.CharField(required=False)
    user = serializers.CharField(required=False, help_text="`me` (default); owners and admins: a username, or `*` for everyone.")


class ObjectListQuerySerializer(serializers.Serializer):
    prefix = serializers.CharField(required=False, default="", allow_blank=True)
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)


class PresignQuerySerializer(serializers.Serializer):
    expires_in = serializers.IntegerField(required=False, help_text="Seconds, 1 to the configured maximum.")


class StoredFileSerializer(serializers.ModelSerializer):
    object_name = serializers.CharField(source="storage_key")
    file_name = serializers.SerializerMethodField()
    size = serializers.IntegerField(source="bytes")
    content_type = serializers.CharField(source="mime")
    user_id = serializers.IntegerField(source="owner_id")
    organization_id = serializers.IntegerField()
    encrypted = serializers.SerializerMethodField()
    uploaded_at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = MediaFile
        fields = ["id", "object_name", "file_name", "original_name", "size", "content_type", "category",
                  "sha256", "user_id", "organization_id", "encrypted", "uploaded_at", "retain_until"]

    def get_file_name(self, media: MediaFile) -> str:
        return media.storage_key.rsplit("/", 1)[-1]

    def get_encrypted(self, media: MediaFile) -> bool:
        return media.encryption != MediaFile.Encryption.NONE
