from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from backoffice.admin.accounts import human_bytes, usage_bar
from quotas.models import Plan, Quota
from media_app.services import media_quota_recalculate
from quotas.services import quota_limit


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "storage", "max_file", "retention_days", "max_retention_days",
                    "allow_keep_forever", "requests_per_minute", "organization_requests_per_minute"]
    search_fields = ["slug", "name"]

    @admin.display(description="storage limit", ordering="storage_limit_bytes")
    def storage(self, plan: Plan) -> str:
        return human_bytes(plan.storage_limit_bytes)

    @admin.display(description="max file", ordering="max_file_bytes")
    def max_file(self, plan: Plan) -> str:
        return human_bytes(plan.max_file_bytes)


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    list_display = ["organization", "usage", "used", "reserved", "limit", "file_count", "recalculated_at"]
    list_select_related = ["organization", "organization__plan"]
    search_fields = ["organization__slug"]
    readonly_fields = ["organization", "used_bytes", "reserved_bytes", "file_count", "recalculated_at", "updated_at"]
    fields = ["organization", "limit_override_bytes", *readonly_fields[1:]]
    actions = ["recalculate"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # one per organization, made with it

    @admin.display(description="usage")
    def usage(self, quota: Quota) -> str:
        return usage_bar(quota.used_bytes, quota.reserved_bytes, self._limit(quota))

    @admin.display(description="used", ordering="used_bytes")
    def used(self, quota: Quota) -> str:
        return human_bytes(quota.used_bytes)

    @admin.display(description="reserved", ordering="reserved_bytes")
    def reserved(self, quota: Quota) -> str:
        return human_bytes(quota.reserved_bytes)

    @admin.display(description="limit")
    def limit(self, quota: Quota) -> str:
        return human_bytes(self._limit(quota))

    def _limit(self, quota: Quota) -> int:
        return quota_limit(organization=quota.organization, quota=quota)

    @admin.action(description="Recalculate from the files", permissions=["change"])
    def recalculate(self, request: HttpRequest, queryset: QuerySet[Quota]) -> None:
        drifts = [media_quota_recalculate(organization=q.organization) for q in queryset]
        fixed = [f"{d.organization_id}: {d.before} → {d.after}" for d in drifts if d.changed]
        self.message_user(request, f"Recalculated {len(drifts)}; drift fixed: {'; '.join(fixed) or 'none'}.")
