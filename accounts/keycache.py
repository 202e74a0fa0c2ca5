"""A short-lived, per-process cache of authenticated API keys, invalidated on revocation.

Every API request used to read its key, user, organization, plan and role from the database: on
a small read (`GET /v1/media/{id}`) that was a third of the request's cost (docs/benchmarks.md,
row 8). Keys stay cached for `API_KEY_CACHE_SECONDS` at most. Anything that changes what a key
may do (a revocation, a user disabled, a role or plan changed) bumps one version number that
every process shares: a counter in Redis when REDIS_URL is set, otherwise the row of
`AuthVersion`. Each process reads that version at most every `_VERSION_CHECK_SECONDS` and drops
its cache when it moved, so a key revoked anywhere stops working within a second; in the process
that revoked it, at once.

Entries hold the database values, not model instances: each request gets its own instances
(requests on other threads may set attributes on theirs).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import F
from redis.exceptions import RedisError

from accounts.models import AuthVersion

logger = logging.getLogger("mediastore.auth")
_VERSION_CHECK_SECONDS = 0.5  # how stale this process's view of the version may be: well within a second
_REDIS_NAME = "auth-version"


@dataclass
class Entry:
    """One authenticated key: per model, its attribute names and values as `Model.from_db` takes them."""

    secret_hash: str
    rows: list[tuple[type, list[str], list]]
    member_role: str | None
    expires: float
    generation: int  # the cache's generation when the row was read: an entry read before a clear is not kept


def _now() -> float:
    return time.monotonic()


class KeyCache:
    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()
        self._version: int | None = None
        self._checked = float("-inf")
        self.generation = 0

    def get(self, prefix: str) -> Entry | None:
        if settings.API_KEY_CACHE_SECONDS <= 0:
            return None
        if not self._follow_version():
            return None
        entry = self._entries.get(prefix)
        if entry is None or entry.expires <= _now():
            return None
        return entry

    def put(self, prefix: str, entry: Entry) -> None:
        if settings.API_KEY_CACHE_SECONDS > 0:
            with self._lock:
                if entry.generation == self.generation:
                    self._entries[prefix] = entry

    def touched(self, prefix: str, when: object) -> None:
        """Keep the cached `last_used_at` current, so `_touch` writes once a minute, not every request."""
        entry = self._entries.get(prefix)
        if entry is not None:
            names, values = entry.rows[0][1], entry.rows[0][2]
            values[names.index("last_used_at")] = when

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.generation += 1
            self._checked = float("-inf")  # the next lookup re-reads the shared version

    def _follow_version(self) -> bool:
        """Drop the entries if the shared version moved; False when it cannot be read (no cache then)."""
        now = _now()
        if now - self._checked < _VERSION_CHECK_SECONDS:
            return True
        try:
            version = auth_version()
        except RedisError:
            logger.warning("the API key cache cannot read its version from Redis; keys are read from the database")
            self.clear()
            return False
        with self._lock:
            if version != self._version:
                self._entries.clear()
                self.generation += 1
                self._version = version
            self._checked = now
        return True


def auth_version() -> int:
    if settings.REDIS_URL:
        from config.concurrency import redis_client, redis_key

        return int(redis_client(settings.REDIS_URL).get(redis_key(_REDIS_NAME, "all")) or 0)
    alias = router.db_for_read(AuthVersion)
    with connections[alias].cursor() as cursor:
        cursor.execute(f"SELECT version FROM {AuthVersion._meta.db_table} WHERE id = 1")
        row = cursor.fetchone()
    return row[0] if row else 0


def auth_version_bump() -> None:
    """Make every process drop its cached keys: this one now, the others within a second.

    Called after the change is committed, so no process can cache the old state again."""
    CACHE.clear()
    transaction.on_commit(_bump_shared)


def _bump_shared() -> None:
    if settings.REDIS_URL:
        from config.concurrency import redis_client, redis_key

        redis_client(settings.REDIS_URL).incr(redis_key(_REDIS_NAME, "all"))
    elif not AuthVersion.objects.filter(pk=1).update(version=F("version") + 1):
        AuthVersion.objects.get_or_create(pk=1, defaults={"version": 1})
    CACHE.clear()


CACHE = KeyCache()


def entry_expiry() -> float:
    return _now() + settings.API_KEY_CACHE_SECONDS
