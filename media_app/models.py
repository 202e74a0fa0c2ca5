from __future__ import annotations

from django.conf import settings
from django.db import models


class MediaFile(models.Model):
    """Every stored file. State changes only through `media_app.services`."""

    class Status(models.TextChoices):
        PENDING = "pending"
        ACTIVE = "active"
        DELETED = "deleted"
        PURGED = "purged"

    class Kind(models.TextChoices):
        IMAGE = "image"
        VIDEO = "video"
        AUDIO = "audio"
        DOCUMENT = "document"
        OTHER = "other"

    class Category(models.TextChoices):
        GENERAL = "general"
        DATA_SOURCE = "data_source"
        PROFILE_IMAGE = "profile_image"

    class Visibility(models.TextChoices):
        PRIVATE = "private"
        PUBLIC = "public"

    class Source(models.TextChoices):
        UPLOAD = "upload"
        REMOTE_URL = "remote_url"
        DATA_URL = "data_url"
        GENERATED = "generated"
        INGESTED = "ingested"

    class Encryption(models.TextChoices):
        NONE = "none"
        APP = "app"
        SSE = "sse"

    id = models.CharField(primary_key=True, max_length=64, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="media_files")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="media_files")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    storage_key = models.CharField(max_length=1024, unique=True)
    original_name = models.CharField(max_length=255, blank=True)
    mime = models.CharField(max_length=127, blank=True)
    bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    media_kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.OTHER)
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.GENERAL)
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PRIVATE)
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.UPLOAD)
    source_url = models.TextField(blank=True, default="")
    # The compute/ key an ingested file came from: ingesting it again answers this file.
    source_key = models.CharField(max_length=1024, blank=True, default="", db_index=True)
    model = models.CharField(max_length=200, blank=True, default="")
    provider = models.CharField(max_length=100, blank=True, default="")
    prompt = models.TextField(blank=True, default="")
    generation = models.JSONField(default=dict, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    encryption = models.CharField(max_length=5, choices=Encryption.choices, default=Encryption.NONE)
    encryption_key_id = models.CharField(max_length=64, blank=True, default="")
    # A presigned upload of known content becomes an alias; its bytes are the original's.
    duplicate_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="aliases")
    # Pending uploads: what the client declared and what the quota holds for it.
    declared_mime = models.CharField(max_length=127, blank=True, default="")
    reserved_bytes = models.BigIntegerField(default=0)
    upload_expires_at = models.DateTimeField(null=True, blank=True)
    # Set while an app-signed upload URL writes this pending file's staging object, and kept once
    # the bytes are there: an upload URL writes at most once (media_app.grants).
    upload_claimed_at = models.DateTimeField(null=True, blank=True)
    # A direct multipart upload (prepare-upload with "multipart": true): the S3 upload id, aborted
    # if the upload is never completed.
    multipart_upload_id = models.CharField(max_length=1024, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)
    retain_until = models.DateTimeField(null=True, blank=True)
    # Lifecycle bookkeeping: the last storage error and how often a job tried this row.
    storage_error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    object_missing_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "owner", "status", "created_at", "id"], name="media_list_idx"),
            models.Index(fields=["owner", "sha256"], name="media_owner_sha_idx"),
            models.Index(fields=["organization", "sha256"], name="media_org_sha_idx"),
            models.Index(fields=["status", "retain_until"], name="media_retention_idx"),
            models.Index(fields=["status", "deleted_at"], name="media_purge_idx"),
            models.Index(fields=["status", "upload_expires_at"], name="media_pending_idx"),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def object_key(self) -> str:
        """Where the bytes are: an alias reads its original's object."""
        return self.duplicate_of.storage_key if self.duplicate_of_id else self.storage_key

    @property
    def dimensions(self) -> str | None:
        return f"{self.width}x{self.height}" if self.width and self.height else None


class ResumableUpload(models.Model):
    """A tus upload: its pending file, how far it got and the storage state between requests.

    State changes only through `media_app.resumable`. A terminated upload's row is deleted (404);
    an expired one is kept, so its URL answers 410.
    """

    class Status(models.TextChoices):
        ACTIVE = "active"
        COMPLETED = "completed"
        EXPIRED = "expired"

    id = models.CharField(primary_key=True, max_length=64, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    # Who created it: the only one who may append, read the offset or terminate (the file's
    # owner may be another member, named by a service key's user_id).
    uploader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    media = models.ForeignKey(MediaFile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    length = models.BigIntegerField()
    offset = models.BigIntegerField(default=0)
    metadata = models.TextField(blank=True, default="")  # the Upload-Metadata header, echoed by HEAD
    store_state = models.JSONField(default=dict, blank=True)  # MediaStore.append_* state
    lock_token = models.CharField(max_length=32, blank=True, default="")  # the PATCH under way, if any
    locked_until = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "expires_at"], name="resumable_due_idx")]

    def __str__(self) -> str:
        return self.id


class SourceCleanup(models.Model):
    """A compute/ object adopted by ingest, deleted by the cleanup job after its delay."""

    storage_key = models.CharField(max_length=1024, unique=True)
    media_file = models.ForeignKey(MediaFile, null=True, blank=True, on_delete=models.SET_NULL)
    delete_after = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    done_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["done_at", "delete_after"], name="cleanup_due_idx")]

    def __str__(self) -> str:
        return self.storage_key


class JobRun(models.Model):
    """Last run of each background job, for operators and /readyz-style checks."""

    name = models.CharField(max_length=100, primary_key=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_result = models.JSONField(default=dict, blank=True)
    runs = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.name


class MediaVariant(models.Model):
    """A rendered transform of an original's bytes (media_app.derivatives).

    One per organization, original SHA-256 and normalised transform: the unique constraint is
    the claim, so of two first requests only one inserts the row and renders; the other waits
    for it to be `ready`. Not a file: no quota file count, its bytes reported on their own.
    """

    class Status(models.TextChoices):
        RENDERING = "rendering"
        READY = "ready"

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="media_variants")
    sha256 = models.CharField(max_length=64)
    transform = models.CharField(max_length=64)
    storage_key = models.CharField(max_length=1024, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RENDERING)
    mime = models.CharField(max_length=127, blank=True, default="")
    bytes = models.BigIntegerField(default=0)
    variant_sha256 = models.CharField(max_length=64, blank=True, default="")
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    encryption = models.CharField(max_length=5, choices=MediaFile.Encryption.choices,
                                  default=MediaFile.Encryption.NONE)
    claimed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "sha256", "transform"], name="media_variant_once"),
        ]

    def __str__(self) -> str:
        return self.storage_key
