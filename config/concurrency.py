"""How many uploads one organization, or one client address, may have in progress at once.

An upload holds a server thread for as long as its body takes to arrive, so one caller with many
slow uploads could take every thread. Each upload (a request with a body to an upload route) holds
a slot of its scope (`org:<id>` for authenticated routes, `ip:<address>` for signed-URL ones) until
the request ends; past the limit it is answered 429 `too_many_concurrent_uploads` with `Retry-After`.

Slots are counted in Redis when REDIS_URL is set (every worker and machine shares the count), and in
the process otherwise, where the limit holds per gunicorn worker. A Redis outage lets uploads through
(logged): the limit protects capacity, it must not take the service down with Redis.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from functools import lru_cache
from typing import Protocol

from django.conf import settings
from django.http import HttpRequest

from config.errors import TooManyConcurrentUploads

logger = logging.getLogger("mediastore.concurrency")

RETRY_AFTER = 5  # seconds; most uploads that hold a slot are done by then
SLOT_TTL = 6 * 3600  # a slot of a process that died holding it is forgotten after this (Redis)
_UNCOUNTED = "-"  # the token of a slot taken while Redis was unreachable


class Slots(Protocol):
    def acquire(self, scope: str, limit: int) -> str | None: ...
    def release(self, scope: str, token: str) -> None: ...


class LocalSlots:
    """Slots counted in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: Counter[str] = Counter()

    def acquire(self, scope: str, limit: int) -> str | None:
        with self._lock:
            if self._held[scope] >= limit:
                return None
            self._held[scope] += 1
            return scope

    def release(self, scope: str, token: str) -> None:
        with self._lock:
            self._held[scope] -= 1
            if self._held[scope] <= 0:
                del self._held[scope]


class RedisSlots:
    """Slots as members of a sorted set per scope, scored by when they were taken."""

    def __init__(self, url: str) -> None:
        self._client = redis_client(url)

    def acquire(self, scope: str, limit: int) -> str | None:
        key, token, now = _redis_key(scope), uuid.uuid4().hex, time.time()
        try:
            pipe = self._client.pipeline()  # MULTI/EXEC: the count includes this slot
            pipe.zremrangebyscore(key, "-inf", now - SLOT_TTL)
            pipe.zadd(key, {token: now})
            pipe.zcard(key)
            pipe.expire(key, SLOT_TTL)
            count = pipe.execute()[2]
            if count <= limit:
                return token
            self._client.zrem(key, token)  # two racing over the last slot may both be refused: safe side
            return None
        except Exception as exc:  # noqa: BLE001 - any Redis failure
            logger.warning("upload slots: Redis unreachable, %s not counted (%s)", scope, exc)
            return _UNCOUNTED

    def release(self, scope: str, token: str) -> None:
        if token == _UNCOUNTED:
            return
        try:
            self._client.zrem(_redis_key(scope), token)
        except Exception as exc:  # noqa: BLE001 - the slot expires after SLOT_TTL
            logger.warning("upload slots: could not release %s (%s)", scope, exc)


def _redis_key(scope: str) -> str:
    return redis_key("upload-slots", scope)


def redis_key(kind: str, scope: str) -> str:
    """A Redis key of one counter; config/ratelimit.py counts in the same namespace."""
    # Organization ids are per database: deployments (and test runs) sharing one Redis stay apart.
    from django.db import connections

    return f"mediastore:{connections['default'].settings_dict['NAME']}:{kind}:{scope}"


@lru_cache(maxsize=4)
def redis_client(url: str):  # noqa: ANN201 - redis.Redis
    """One client (and connection pool) per URL, with short timeouts: the counters must not stall requests."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


@lru_cache(maxsize=4)
def _slots_for(redis_url: str) -> Slots:
    return RedisSlots(redis_url) if redis_url else LocalSlots()


def slots() -> Slots:
    return _slots_for(settings.REDIS_URL)


def has_body(request: HttpRequest) -> bool:
    length = request.META.get("CONTENT_LENGTH") or ""
    return (length.isdigit() and int(length) > 0) or bool(request.META.get("HTTP_TRANSFER_ENCODING"))


def is_upload(request: HttpRequest) -> bool:
    return request.method in ("POST", "PUT") and has_body(request)


def hold_upload_slot(request: HttpRequest, scope: str, limit: int) -> None:
    """Take a slot of `scope` until `request` ends (UploadSlotsMiddleware releases it); 0: no limit."""
    request = getattr(request, "_request", request)  # a DRF Request: the Django request holds the slots
    held = request.__dict__.setdefault("upload_slots", [])
    if limit <= 0 or any(scope == taken for taken, _ in held):
        return
    token = slots().acquire(scope, limit)
    if token is None:
        raise TooManyConcurrentUploads(retry_after=RETRY_AFTER)
    held.append((scope, token))


def release_upload_slots(request: HttpRequest) -> None:
    held = request.__dict__.pop("upload_slots", [])
    for scope, token in held:
        slots().release(scope, token)


def client_address(request: HttpRequest) -> str:
    """The peer's address. Behind a reverse proxy this is the proxy's (README, Limits)."""
    return request.META.get("REMOTE_ADDR") or "unknown"
