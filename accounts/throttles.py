"""Throttles for the API views that know their caller."""
from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.models import ApiKey
from accounts.principal import principal_for
from config.concurrency import hold_upload_slot, is_upload
from config.ratelimit import hit

if TYPE_CHECKING:  # DEFAULT_THROTTLE_CLASSES is imported while rest_framework.views loads
    from rest_framework.views import APIView


class ConcurrentUploads(BaseThrottle):
    """At most MEDIA_CONCURRENT_UPLOADS_PER_ORG uploads of one organization in progress at once.

    Runs after authentication and before the view reads the body; the slot is held until the
    request ends (config/concurrency.py). Past the limit: 429 `too_many_concurrent_uploads`.
    """

    def allow_request(self, request: Request, view: APIView) -> bool:
        if is_upload(request):
            scope = f"org:{principal_for(request).organization.pk}"
            hold_upload_slot(request, scope, settings.MEDIA_CONCURRENT_UPLOADS_PER_ORG)
        return True


class RateLimits(BaseThrottle):
    """Requests per minute of the caller's API key (or signed-in user) and of its organization,
    as the organization's plan allows; 429 `rate_limited` past either (config/ratelimit.py)."""

    def allow_request(self, request: Request, view: APIView) -> bool:
        if not request.user or not request.user.is_authenticated:
            return True  # anonymous callers are limited per address, by RateLimitMiddleware
        principal = principal_for(request)
        plan = principal.organization.plan
        caller = f"key:{request.auth.pk}" if isinstance(request.auth, ApiKey) else f"user:{principal.user.pk}"
        hit(request, caller, plan.requests_per_minute)
        hit(request, f"org:{principal.organization.pk}", plan.organization_requests_per_minute)
        return True
