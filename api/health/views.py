"""Liveness and readiness for load balancers and orchestrators; Prometheus metrics for monitoring."""
from __future__ import annotations

import hmac
import ipaddress
import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from config.errors import NotAuthenticated, NotFound, PermissionDenied, service_error_response
from config.http_client import parse_networks
from config.metrics import exposition

logger = logging.getLogger("mediastore.health")


@csrf_exempt  # no session state here: a POST is a 405, not a CSRF 403
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving; checks nothing else."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_storage() -> None:
    from storage_app.backends import get_store

    get_store().ping()


def _check_broker() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


@csrf_exempt
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Database, storage (write-read-delete of a probe object) and, when configured, the broker."""
    checks = {"database": _check_database, "storage": _check_storage}
    if settings.CELERY_BROKER_URL:
        checks["broker"] = _check_broker
    results, failed = {}, []
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # any failure means "not ready"; the log keeps the detail
            logger.warning("readiness check %s failed: %s", name, exc)
            results[name] = "failed"
            failed.append(name)
    if failed:
        message = f"Not ready: {', '.join(failed)} failed."
        code = f"{failed[0]}_unavailable"
        return JsonResponse({"status": "unavailable", "checks": results,
                             "error": {"message": message, "type": "api_error", "code": code}}, status=503)
    return JsonResponse({"status": "ok", "checks": results})


def _metrics_allowed(request: HttpRequest) -> bool:
    """A bearer METRICS_TOKEN (compared in constant time) or a client address in METRICS_ALLOW_NETWORKS."""
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    address = _address(request.META.get("REMOTE_ADDR", ""))
    return address is not None and any(address in net for net in parse_networks(settings.METRICS_ALLOW_NETWORKS))


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


@csrf_exempt
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics of every process (config/metrics.py), to the token or the allowed networks only."""
    if not settings.METRICS_TOKEN and not settings.METRICS_ALLOW_NETWORKS:
        return service_error_response(NotFound("Metrics are not enabled (set METRICS_TOKEN or METRICS_ALLOW_NETWORKS)."))
    if not _metrics_allowed(request):
        error = NotAuthenticated() if settings.METRICS_TOKEN else PermissionDenied()
        return service_error_response(error)
    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type)
