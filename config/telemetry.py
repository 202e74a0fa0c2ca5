"""Per request: the Prometheus request metrics and the one access log line.

`RequestTelemetryMiddleware` sits right under `RequestIdMiddleware`, so it sees every answer as the
client gets it (error envelopes included) and logs with the request id. Routes are the resolver's
templates (`v1/media/<str:media_id>`): raw paths would make a label per file.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from config import logs, metrics
from config.concurrency import is_upload

logger = logging.getLogger("mediastore.access")

UNMATCHED = "<unmatched>"  # no URL pattern: one label for every miss


def route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return match.route if match is not None and match.route else UNMATCHED


def _received(request: HttpRequest) -> int:
    """Body bytes received: counted by config/bodyguard.py under gunicorn, else as declared."""
    received = getattr(request.META.get("wsgi.input"), "received", None)
    if isinstance(received, int):
        return received
    length = request.META.get("CONTENT_LENGTH") or ""
    return int(length) if length.isdigit() else 0


def _counted(chunks: Iterable[bytes], route: str) -> Iterator[bytes]:
    for chunk in chunks:
        metrics.DOWNLOADED_BYTES.labels(route=route).inc(len(chunk))
        yield chunk


def _sent(response: HttpResponse, route: str) -> int | None:
    """Bytes of the body when known now; a streamed body of unknown length is counted as it goes."""
    length = response.get("Content-Length", "")
    if length.isdigit():
        return int(length)
    if isinstance(response, StreamingHttpResponse):
        response.streaming_content = _counted(response.streaming_content, route)
        return None
    return len(response.content)


class RequestTelemetryMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = logs.start_context()
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            self._record(request, response, time.perf_counter() - started)
        finally:
            logs.end_context(token)
        return response

    def process_view(self, request: HttpRequest, *args: object) -> None:
        logs.bind(route=route_of(request))  # records logged by the view carry their route

    def _record(self, request: HttpRequest, response: HttpResponse, seconds: float) -> None:
        route, status = route_of(request), str(response.status_code)
        metrics.REQUESTS.labels(method=request.method, route=route, status=status).inc()
        metrics.REQUEST_SECONDS.labels(method=request.method, route=route, status=status).observe(seconds)
        received = _received(request) if is_upload(request) else 0
        if received:
            metrics.UPLOADED_BYTES.labels(route=route).inc(received)
        sent = _sent(response, route)
        if sent:
            metrics.DOWNLOADED_BYTES.labels(route=route).inc(sent)
        logger.info("%s %s %s", request.method, route, status, extra={
            "route": route, "method": request.method, "status": response.status_code,
            "duration_ms": round(seconds * 1000, 1), "bytes_in": received, "bytes_out": sent,
        })
