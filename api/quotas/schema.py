"""How `/api/schema` describes the usage and quota endpoints."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from storage_app.categories import CATEGORIES


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


storage_usage = extend_schema(operation_id="storage_usage", summary="Storage usage and quota",
                              responses={200: Usage})

storage_quota = extend_schema(operation_id="storage_quota", summary="Storage quota limits",
                              responses={200: QuotaLimits})

storage_quota_recalculate = extend_schema(
    operation_id="storage_quota_recalculate", summary="Recount usage from the files (owners and admins)",
    request=None, responses={200: QuotaRecalculation},
)
