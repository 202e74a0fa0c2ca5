"""Requests per minute: per API key and per organization (limits from the plan), per client address
for anonymous callers and signed-URL routes.

Each scope (`key:<id>`, `user:<id>`, `org:<id>`, `ip:<address>`) counts its requests in fixed
windows of a minute. The counts live where the upload slots' do (config/concurrency.py): in Redis
when REDIS_URL is set (every worker and machine shares them), in the process otherwise (the limit
then holds per gunicorn worker). A Redis outage lets requests through (logged).

Every answer of a limited request carries the IETF draft's headers for its tightest scope:
`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds) and `RateLimit-Policy`;
past a limit it is 429 `rate_limited` with `Retry-After`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from config.concurrency import client_address, redis_client, redis_key
from config.errors import Throttled, is_api_path, service_error_response
from config.metrics import RATE_LIMITED

logger = logging.getLogger("mediastore.ratelimit")

WINDOW = 60  # seconds
NAMESPACE = "rate"  # of the Redis keys; each test counts under its own
EXEMPT_PATHS = ("/healthz", "/readyz", "/metrics")  # probes and scrapers come often, from one address
_CREDENTIAL_HEADERS = ("HTTP_AUTHORIZATION", "HTTP_X_API_KEY")


@dataclass(frozen=True)
class Decision:
    limit: int
    remaining: int
    reset: int  # seconds until the window ends

    @property
    def allowed(self) -> bool:
        return self.remaining >= 0

    def headers(self) -> dict[str, str]:
        return {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(max(self.remaining, 0)),
                "RateLimit-Reset": str(self.reset), "RateLimit-Policy": f"{self.limit};w={WINDOW}"}


class RateLimited(Throttled):
    def __init__(self, decision: Decision) -> None:
        super().__init__(f"Too many requests: at most {decision.limit} a minute; retry in {decision.reset} s.")
        self.retry_after = decision.reset


class Windows(Protocol):
    def count(self, key: str, ttl: int) -> int | None: ...


class LocalWindows:
    """Counts in this process; windows that have ended are dropped as new ones start."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._window = 0

    def count(self, key: str, ttl: int) -> int:
        window = int(key.rsplit(":", 1)[1])
        with self._lock:
            if window != self._window:
                self._counts = {k: v for k, v in self._counts.items() if k.endswith(f":{window}")}
                self._window = window
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


class RedisWindows:
    def __init__(self, url: str) -> None:
        self._client = redis_client(url)

    def count(self, key: str, ttl: int) -> int | None:
        try:
            pipe = self._client.pipeline()
            pipe.incr(key)
            pipe.expire(key, ttl)
            return pipe.execute()[0]
        except Exception as exc:  # noqa: BLE001 - any Redis failure: let the request through
            logger.warning("rate limits: Redis unreachable, %s not counted (%s)", key, exc)
            return None


@lru_cache(maxsize=4)
def _windows_for(redis_url: str) -> Windows:
    return RedisWindows(redis_url) if redis_url else LocalWindows()


def windows() -> Windows:
    return _windows_for(settings.REDIS_URL)


def check(scope: str, limit: int, *, now: float | None = None) -> Decision:
    """Count one request of `scope` in the current window."""
    now = time.time() if now is None else now
    window = int(now // WINDOW)
    count = windows().count(redis_key(NAMESPACE, f"{scope}:{window}"), WINDOW + 1)
    reset = max(int((window + 1) * WINDOW - now + 0.999), 1)
    return Decision(limit=limit, remaining=limit - (count or 0), reset=reset)


def hit(request: HttpRequest, scope: str, limit: int) -> None:
    """Count a request of `scope` against `limit` (0: none); `RateLimited` past it.

    The tightest decision so far is kept on the request for the response's headers."""
    if limit <= 0 or not settings.RATE_LIMITS_ENABLED:
        return
    request = getattr(request, "_request", request)  # a DRF Request: headers go on the Django one
    decision = check(scope, limit)
    kept = getattr(request, "rate_limit", None)
    if kept is None or decision.remaining < kept.remaining:
        request.rate_limit = decision
    if not decision.allowed:
        RATE_LIMITED.labels(scope=scope.split(":", 1)[0]).inc()
        raise RateLimited(decision)


def is_anonymous(request: HttpRequest) -> bool:
    """No credentials at all: neither an API key or token header nor a session."""
    return not any(request.META.get(name) for name in _CREDENTIAL_HEADERS) and \
        settings.SESSION_COOKIE_NAME not in request.COOKIES


def _limited_anonymously(request: HttpRequest) -> bool:
    return is_api_path(request.path) and not request.path.startswith(EXEMPT_PATHS) and is_anonymous(request)


class RateLimitMiddleware:
    """Limits anonymous requests (signed-URL routes among them) per client address, and puts the
    RateLimit headers on every limited answer. Callers with credentials are limited per key and
    organization once they are known (accounts.throttles.RateLimits)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            if _limited_anonymously(request):
                hit(request, f"ip:{client_address(request)}", settings.RATE_LIMIT_ANONYMOUS_PER_MINUTE)
            response = self.get_response(request)
        except RateLimited as exc:
            response = service_error_response(exc)
        decision = getattr(request, "rate_limit", None)
        if decision is not None:
            for name, value in decision.headers().items():
                response[name] = value
        return response
