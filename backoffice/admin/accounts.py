"""Operators' admin for organizations, memberships and API keys. Writes go through services."""
from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from accounts.models import ApiKey, Membership, Organization
from accounts.services import api_key_create, api_key_rename, api_key_revoke
from media_app.services import media_quota_recalculate
from quotas.services import quota_limit


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


def usage_bar(used: int, reserved: int, limit: int) -> str:
    percent = min(100.0, 100.0 * used / limit) if limit else 0.0
    held = min(100.0 - percent, 100.0 * reserved / limit) if limit else 0.0
    color = "#ba2121" if percent >= 90 else "#e6a700" if percent >= 75 else "#417690"
    return format_html(
        '<div title="{} used, {} reserved of {}" style="width:160px;height:10px;background:#eee;'
        'border-radius:3px;display:flex;overflow:hidden"><div style="width:{}%;background:{}"></div>'
        '<div style="width:{}%;background:#bbb"></div></div><small>{}% · {} of {}{}</small>',
        human_bytes(used), human_bytes(reserved), human_bytes(limit), f"{percent:.1f}", color, f"{held:.1f}",
        f"{percent:.1f}", human_bytes(used), human_bytes(limit),
        f" · {human_bytes(reserved)} reserved" if reserved else "")


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "kind", "plan", "usage", "files", "limit", "created_at"]
    list_filter = ["kind", "plan"]
    search_fields = ["slug", "name"]
    list_select_related = ["plan", "quota"]
    inlines = [MembershipInline]
    actions = ["recalculate_quota"]
    readonly_fields = ["created_at", "usage", "limit", "files"]
    fields = ["name", "slug", "kind", "plan", "retention_days", "usage", "limit", "files", "created_at"]

    @admin.display(description="usage")
    def usage(self, org: Organization) -> str:
        quota = org.quota
        return usage_bar(quota.used_bytes, quota.reserved_bytes, quota_limit(organization=org, quota=quota))

    @admin.display(description="files", ordering="quota__file_count")
    def files(self, org: Organization) -> int:
        return org.quota.file_count

    @admin.display(description="limit")
    def limit(self, org: Organization) -> str:
        return human_bytes(quota_limit(organization=org, quota=org.quota))

    @admin.action(description="Recalculate quota from the files", permissions=["change"])
    def recalculate_quota(self, request: HttpRequest, queryset: QuerySet[Organization]) -> None:
        changed = [org.slug for org in queryset if media_quota_recalculate(organization=org).changed]
        self.message_user(request, f"Recalculated {queryset.count()} organization(s); drift fixed in: "
                                   f"{', '.join(changed) or 'none'}.")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "kind", "organization", "user", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["kind", ("revoked_at", admin.EmptyFieldListFilter), "organization"]
    search_fields = ["prefix", "name", "user__username", "organization__slug"]
    list_select_related = ["organization", "user"]
    autocomplete_fields = ["organization", "user"]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return ["organization", "user", "kind", "name"]
        return ["prefix", "organization", "user", "kind", "name", "created_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return []
        return ["prefix", "organization", "user", "kind", "created_at", "last_used_at", "revoked_at"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:  # noqa: ANN001
        if change:
            api_key_rename(api_key=obj, name=obj.name)
            return
        issued = api_key_create(organization=obj.organization, user=obj.user, kind=obj.kind, name=obj.name)
        obj.pk, obj.prefix, obj.secret_hash = issued.api_key.pk, issued.api_key.prefix, issued.api_key.secret_hash
        obj._state.adding = False
        messages.warning(request, format_html(
            "The new key is <code>{}</code>. Copy it now: it is not stored and cannot be shown again.",
            issued.secret))

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=key)
        self.message_user(request, "Revoked.")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "organization__slug"]
    list_select_related = ["user", "organization"]
    autocomplete_fields = ["user", "organization"]
