"""Throttles for the API views that know their caller."""
from __future__ import annotations

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from accounts.principal import principal_for
from config.concurrency import hold_upload_slot, is_upload


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
