"""DRF permissions every surface shares."""
from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.principal import principal_for
from config.errors import PermissionDenied


class ServiceKeyOnly(BasePermission):
    """Service keys alone may use the compute image endpoints and ingest (403 for anyone else)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not principal_for(request).is_service:
            raise PermissionDenied("Only service API keys may use this endpoint.", code="service_key_required")
        return True
