"""Media files for operators: the admin is one more caller of the services, never bytes."""
from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from backoffice.admin.accounts import human_bytes
from config.errors import ServiceError
from media_app.links import MediaLinks
from media_app.models import JobRun, MediaFile, SourceCleanup
from media_app.transforms import transform_parse, transformable
from media_app.services import media_delete, media_restore, media_update
from storage_app.sniff import is_inline_safe

THUMBNAIL_TTL = 600
# Rendered once by the app, then served from storage: a list page never loads 50 originals.
THUMBNAIL = transform_parse({"width": "128", "height": "128", "format": "webp"})
PREVIEW = transform_parse({"width": "512", "height": "512", "format": "webp"})


@admin.register(MediaFile)
class MediaFileAdmin(admin.ModelAdmin):
    list_display = ["thumbnail", "id", "organization", "owner", "status", "media_kind", "category", "visibility",
                    "size", "model", "provider", "created_at"]
    list_display_links = ["id"]
    list_filter = ["status", "media_kind", "category", "visibility", "organization", "provider", "model"]
    search_fields = ["=id", "owner__username", "prompt", "=sha256"]
    list_select_related = ["organization", "owner", "duplicate_of"]
    list_per_page = 50
    show_full_result_count = False  # a COUNT(*) over millions of rows on every page is not worth it
    date_hierarchy = "created_at"
    actions = ["delete_files", "restore_files", "make_public", "make_private", "purge_now"]
    readonly_fields = [
        "id", "organization", "owner", "status", "storage_key", "object_key", "original_name", "mime", "bytes",
        "sha256", "media_kind", "source", "source_url", "source_key", "width", "height", "encryption",
        "encryption_key_id", "duplicate_of", "declared_mime", "reserved_bytes", "upload_expires_at", "created_at",
        "completed_at", "deleted_at", "purged_at", "storage_error", "attempts", "object_missing_at", "preview",
    ]
    fieldsets = [
        (None, {"fields": ["preview", "id", "organization", "owner", "status", "visibility", "category",
                           "retain_until"]}),
        ("Provenance", {"fields": ["model", "provider", "prompt", "generation"]}),
        ("Content", {"fields": ["original_name", "mime", "media_kind", "bytes", "sha256", "width", "height"]}),
        ("Storage", {"fields": ["storage_key", "object_key", "duplicate_of", "encryption", "encryption_key_id",
                                "source", "source_url", "source_key", "declared_mime", "reserved_bytes",
                                "upload_expires_at", "storage_error", "attempts", "object_missing_at"]}),
        ("Dates", {"fields": ["created_at", "completed_at", "deleted_at", "purged_at"]}),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # files come in through the API

    def has_delete_permission(self, request: HttpRequest, obj: MediaFile | None = None) -> bool:
        return False  # rows are deleted by the lifecycle (the "delete" action hides a file)

    def _url(self, media: MediaFile, size: int) -> str:
        if transformable(media.mime):  # the app-signed variant URL: no lookup per row
            return MediaLinks(transform=THUMBNAIL if size <= 128 else PREVIEW).app_signed_variant_url(
                media, THUMBNAIL_TTL)
        return MediaLinks().download(media, THUMBNAIL_TTL, attachment_name=False)[0] or ""

    def _image(self, media: MediaFile, size: int) -> str:
        if media.status != MediaFile.Status.ACTIVE or media.media_kind != "image" or not is_inline_safe(media.mime):
            return "—"
        # The browser fetches the signed URL; the admin itself never reads the bytes.
        return format_html('<img src="{}" loading="lazy" style="max-width:{}px;max-height:{}px" alt="">',
                           self._url(media, size), size, size)

    @admin.display(description="")
    def thumbnail(self, media: MediaFile) -> str:
        return self._image(media, 48)

    @admin.display(description="preview")
    def preview(self, media: MediaFile) -> str:
        return self._image(media, 320)

    @admin.display(description="size", ordering="bytes")
    def size(self, media: MediaFile) -> str:
        return human_bytes(media.bytes)

    def save_model(self, request: HttpRequest, obj: MediaFile, form, change: bool) -> None:  # noqa: ANN001
        changes = {name: form.cleaned_data[name] for name in form.changed_data
                   if name in ("visibility", "model", "provider", "prompt", "generation", "category", "retain_until")}
        media_update(media=MediaFile.objects.select_related("organization__plan").get(pk=obj.pk), changes=changes,
                     operator=True)

    def _each(self, request: HttpRequest, queryset: QuerySet[MediaFile], action, verb: str) -> None:  # noqa: ANN001
        done, failed = 0, []
        for media in queryset.select_related("organization__plan", "duplicate_of"):
            try:
                action(media)
                done += 1
            except ServiceError as exc:
                failed.append(f"{media.pk}: {exc.message}")
        self.message_user(request, f"{verb} {done} file(s)." + (f" Not done: {'; '.join(failed)}" if failed else ""))

    @admin.action(description="Delete (hide now; the purge job removes the object)", permissions=["change"])
    def delete_files(self, request: HttpRequest, queryset: QuerySet[MediaFile]) -> None:
        self._each(request, queryset, lambda m: media_delete(media=m), "Deleted")

    @admin.action(description="Restore deleted files", permissions=["change"])
    def restore_files(self, request: HttpRequest, queryset: QuerySet[MediaFile]) -> None:
        self._each(request, queryset, lambda m: media_restore(media=m), "Restored")

    @admin.action(description="Make public", permissions=["change"])
    def make_public(self, request: HttpRequest, queryset: QuerySet[MediaFile]) -> None:
        self._each(request, queryset, lambda m: media_update(media=m, changes={"visibility": "public"}), "Published")

    @admin.action(description="Make private", permissions=["change"])
    def make_private(self, request: HttpRequest, queryset: QuerySet[MediaFile]) -> None:
        self._each(request, queryset, lambda m: media_update(media=m, changes={"visibility": "private"}),
                   "Made private")

    @admin.action(description="Purge now (deleted files: remove their objects)", permissions=["change"])
    def purge_now(self, request: HttpRequest, queryset: QuerySet[MediaFile]) -> None:
        from media_app.lifecycle import purge_media

        result = purge_media(media_ids=list(queryset.values_list("pk", flat=True)), grace=0)
        self.message_user(request, f"Purge: {result.summary()}")


@admin.register(SourceCleanup)
class SourceCleanupAdmin(admin.ModelAdmin):
    list_display = ["storage_key", "media_file", "delete_after", "attempts", "done_at", "last_error"]
    list_filter = [("done_at", admin.EmptyFieldListFilter)]
    search_fields = ["storage_key"]
    readonly_fields = ["storage_key", "media_file", "attempts", "last_error", "done_at", "created_at"]


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ["name", "last_started_at", "last_finished_at", "runs", "last_result"]
    readonly_fields = ["name", "last_started_at", "last_finished_at", "runs", "last_result"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
