"""API key authentication: `Authorization: Bearer <key>` or `X-API-Key: <key>`."""
from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from accounts.models import ApiKey, Membership
from accounts.services import KEY_PREFIX, hash_secret, key_prefix
from config.errors import NotAuthenticated


def credentials_from(request: Request) -> tuple[str, str] | None:
    """("bearer" | "x-api-key", token) from the headers, None when there are none.

    A present but malformed header is an authentication failure, not "anonymous".
    """
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            raise NotAuthenticated("Malformed Authorization header; use 'Bearer <key>'.", code="malformed_credentials")
        return "bearer", token
    api_key = request.META.get("HTTP_X_API_KEY", "").strip()
    if api_key:
        return "x-api-key", api_key
    return None


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[object, ApiKey] | None:
        found = credentials_from(request)
        if found is None:
            return None
        source, token = found
        if source == "bearer" and not token.startswith(KEY_PREFIX):
            return None  # not an API key: a JWT for the OIDC authenticator
        key = _key_with_role(token)
        if key is None:
            raise NotAuthenticated("Unknown API key.", code="invalid_api_key")
        if not key.is_active:
            raise NotAuthenticated("This API key has been revoked.", code="revoked_api_key")
        if not key.user.is_active:
            raise NotAuthenticated("This API key's user is disabled.", code="invalid_api_key")
        _touch(key)
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


def _key_with_role(secret: str) -> ApiKey | None:
    """`api_key_lookup`, plus the key user's role in the key's organization (`member_role`,
    None when not a member), so a request authenticates in one query."""
    prefix = key_prefix(secret)
    if prefix is None:
        return None
    role = Membership.objects.filter(user=OuterRef("user"), organization=OuterRef("organization")).values("role")[:1]
    key = (ApiKey.objects.select_related("organization", "organization__plan", "user")
           .annotate(member_role=Subquery(role)).filter(prefix=prefix).first())
    if key is None or not secrets.compare_digest(key.secret_hash, hash_secret(secret)):
        return None
    return key


def _touch(key: ApiKey) -> None:
    """Record use at most once a minute per key, so reads do not all become writes."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION)
    if key.last_used_at is None or key.last_used_at < stale:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
