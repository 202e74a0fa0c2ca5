"""Usage and quota of the caller's organization: `/api/v1/storage/usage`, `/quota`, `/quota/recalculate`."""
from __future__ import annotations

from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.principal import Principal, principal_for
from api.quotas import schema
from config.api import refuse_unknown
from config.errors import PermissionDenied
from media_app.selectors import media_usage_by_category, media_variant_usage
from media_app.services import media_quota_recalculate
from quotas.services import quota_get, quota_limit
from storage_app.categories import ALL_CATEGORIES, effective_max_bytes


def _usage(principal: Principal) -> dict:
    org = principal.organization
    quota = quota_get(organization=org)
    limit = quota_limit(organization=org, quota=quota)
    by_category = {c.name: {"bytes": 0, "files": 0} for c in ALL_CATEGORIES}
    by_category.update(media_usage_by_category(organization=org))
    return {
        "organization": org.slug, "used_bytes": quota.used_bytes, "reserved_bytes": quota.reserved_bytes,
        "limit_bytes": limit, "available_bytes": max(limit - quota.used_bytes - quota.reserved_bytes, 0),
        "file_count": quota.file_count, "used_percent": round(100 * quota.used_bytes / limit, 2) if limit else 0,
        "by_category": by_category, "recalculated_at": quota.recalculated_at,
        # Thumbnails and transforms: stored, but neither files nor charged to the quota.
        **media_variant_usage(organization=org),
    }


class UsageView(APIView):
    @schema.storage_usage
    def get(self, request: Request) -> Response:
        refuse_unknown(request.query_params.keys(), ())
        return Response(_usage(principal_for(request)))


class QuotaView(APIView):
    @schema.storage_quota
    def get(self, request: Request) -> Response:
        org = principal_for(request).organization
        refuse_unknown(request.query_params.keys(), ())
        plan = org.plan
        plan_max = min(plan.max_file_bytes, settings.MEDIA_MAX_BYTES)
        return Response({
            "organization": org.slug,
            "plan": {"slug": plan.slug, "name": plan.name},
            "limit_bytes": quota_limit(organization=org),
            "max_file_bytes": plan_max,
            "allowed_categories": plan.allowed_categories or [c.name for c in ALL_CATEGORIES],
            "categories": {c.name: {"max_file_bytes": effective_max_bytes(c, plan_max), "allows": c.description}
                           for c in ALL_CATEGORIES},
            "retention_days": org.retention_days_effective(),
            "keep_forever_allowed": plan.allow_keep_forever,
        })


class QuotaRecalculateView(APIView):
    @schema.storage_quota_recalculate
    def post(self, request: Request) -> Response:
        principal = principal_for(request)
        refuse_unknown(request.query_params.keys(), ())
        if not principal.is_admin:
            raise PermissionDenied("Only organization owners and admins may recalculate the quota.")
        drift = media_quota_recalculate(organization=principal.organization)
        return Response({"organization": principal.organization.slug, "before": drift.before, "after": drift.after,
                         "changed": drift.changed})
