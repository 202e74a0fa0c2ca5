"""API key authentication: `Authorization: Bearer <key>` or `X-API-Key: <key>`."""
from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import connections, router
from django.utils import timezone
from django.utils.functional import cached_property
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from accounts.keycache import CACHE, Entry, entry_expiry
from accounts.models import ApiKey, Membership, Organization
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
    """`api_key_lookup`, in one query: the key with its user, organization and plan loaded, and
    the user's role in that organization as `member_role` (None when not a member). An active
    key found recently comes from the process's cache (accounts/keycache.py), with no query."""
    prefix = key_prefix(secret)
    if prefix is None:
        return None
    hashed = hash_secret(secret)
    entry = CACHE.get(prefix)
    if entry is None:
        entry = _KEY_QUERY.fetch(prefix)
        if entry is None:
            return None
        if entry.rows[0][2][entry.rows[0][1].index("revoked_at")] is None:  # revoked keys are never cached
            CACHE.put(prefix, entry)
    if not secrets.compare_digest(entry.secret_hash, hashed):
        return None
    return _instances(entry)


def _instances(entry: Entry) -> ApiKey:
    """Fresh model instances for this request (cached values are shared by every thread)."""
    alias = router.db_for_read(ApiKey)
    key, organization, plan, user = (model.from_db(alias, names, list(values)) for model, names, values in entry.rows)
    organization.plan, key.organization, key.user = plan, organization, user
    key.member_role = entry.member_role
    return key


class _KeyQuery:
    """The statement behind every API-key request, built once from the models' metadata.

    Through the ORM, building and compiling this four-table select costs about 2 ms per request
    on a small machine, several times what the database spends on it (profile in
    docs/benchmarks.md, row 8). Only the prefix changes between requests, so the SQL is made
    once, and rows become model instances as the ORM makes them (`Model.from_db`, with each
    field's database converters), related objects attached.
    """

    def __init__(self) -> None:
        self._sql: dict[str, str] = {}  # per database vendor (quoting)

    @cached_property
    def models(self) -> list[tuple[type, str]]:  # resolved on first use, once the apps are loaded
        from django.contrib.auth import get_user_model

        plan = Organization.plan.field.related_model  # quotas' Plan, through the foreign key (no upward import)
        return [(ApiKey, "k"), (Organization, "o"), (plan, "p"), (get_user_model(), "u")]

    def sql(self, connection) -> str:  # noqa: ANN001
        if connection.vendor not in self._sql:
            q = connection.ops.quote_name
            columns = [f"{alias}.{q(f.column)}" for model, alias in self.models for f in model._meta.concrete_fields]
            key, org, plan, user = (f"{q(model._meta.db_table)} {alias}" for model, alias in self.models)
            member = q(Membership._meta.db_table)
            self._sql[connection.vendor] = (
                f"SELECT {', '.join(columns)}, m.{q('role')} FROM {key} "
                f"JOIN {org} ON o.{q('id')} = k.{q('organization_id')} JOIN {plan} ON p.{q('id')} = o.{q('plan_id')} "
                f"JOIN {user} ON u.{q('id')} = k.{q('user_id')} "
                f"LEFT JOIN {member} m ON m.{q('user_id')} = k.{q('user_id')} "
                f"AND m.{q('organization_id')} = k.{q('organization_id')} "
                f"WHERE k.{q('prefix')} = %s")
        return self._sql[connection.vendor]

    def fetch(self, prefix: str) -> Entry | None:
        alias = router.db_for_read(ApiKey)
        connection = connections[alias]
        generation = CACHE.generation  # before reading: a change committed meanwhile makes this entry unkept
        with connection.cursor() as cursor:
            cursor.execute(self.sql(connection), [prefix])
            row = cursor.fetchone()
        if row is None:
            return None
        rows, offset = [], 0
        for model, table in self.models:
            fields = model._meta.concrete_fields
            values = [_converted(row[offset + i], field, table, connection) for i, field in enumerate(fields)]
            rows.append((model, [f.attname for f in fields], values))
            offset += len(fields)
        secret_hash = rows[0][2][rows[0][1].index("secret_hash")]
        return Entry(secret_hash=secret_hash, rows=rows, member_role=row[offset], expires=entry_expiry(),
                     generation=generation)


def _converted(value, field, table: str, connection):  # noqa: ANN001, ANN202
    column = field.get_col(table)
    for converter in connection.ops.get_db_converters(column) + column.get_db_converters(connection):
        value = converter(value, column, connection)
    return value


_KEY_QUERY = _KeyQuery()


def _touch(key: ApiKey) -> None:
    """Record use at most once a minute per key, so reads do not all become writes."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION)
    if key.last_used_at is None or key.last_used_at < stale:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
        CACHE.touched(key.prefix, now)
