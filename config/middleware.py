"""Request ids, primary pinning, upload slots, the API error envelope, and slashes for web pages."""
from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.common import CommonMiddleware as DjangoCommonMiddleware

from config import concurrency, db_router
from config.errors import TooManyConcurrentUploads, is_api_path, json_error_body, service_error_response
from config.logs import request_id_var
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_STATUS_CODES = {
    400: ("invalid_request", "invalid_request_error", "Bad request."),
    401: ("not_authenticated", "authentication_error", "Authentication required."),
    403: ("permission_denied", "permission_error", "Forbidden."),
    404: ("not_found", "not_found_error", "Not found."),
    405: ("method_not_allowed", "invalid_request_error", "Method not allowed."),
    413: ("max_size_exceeded", "size_error", "Request body too large."),
    416: ("range_not_satisfiable", "invalid_request_error", "The requested range is not satisfiable."),
    500: ("internal_error", "api_error", "Internal server error."),
}


class RequestIdMiddleware:
    """Takes a sane `X-Request-ID` from the caller or makes one; echoes it on every response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class PrimaryPinMiddleware:
    """Each request starts reading from the replica; its first write pins it to the primary."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = db_router.start_request()
        try:
            return self.get_response(request)
        finally:
            db_router.end_request(token)


class UploadSlotsMiddleware:
    """Releases the upload slots a request took (config/concurrency.py) when it ends.

    Signed-URL uploads (`PUT`/`POST /files/...`) carry no credentials: their slot is per client
    address, taken here. Authenticated upload views take a per-organization slot once the caller
    is known (accounts.throttles.ConcurrentUploads).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            if request.path.startswith("/files/") and concurrency.is_upload(request):
                scope = f"ip:{concurrency.client_address(request)}"
                concurrency.hold_upload_slot(request, scope, settings.MEDIA_CONCURRENT_UPLOADS_PER_IP)
            return self.get_response(request)
        except TooManyConcurrentUploads as exc:
            return service_error_response(exc)
        finally:
            concurrency.release_upload_slots(request)


class ApiErrorMiddleware:
    """Rewrites any non-JSON error response on an API path into the error envelope.

    DRF views already answer in the envelope; this catches Django's own 404/405/413/500
    pages (URL misses, `require_http_methods`, DEBUG pages) so clients never parse HTML.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or not is_api_path(request.path):
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        code, type_, message = _STATUS_CODES.get(
            response.status_code, ("error", "api_error", response.reason_phrase or "Error.")
        )
        replacement = json_error_body(response.status_code, message, code=code, type=type_)
        for header in ("Allow", "WWW-Authenticate", "Retry-After", "Content-Range"):  # Content-Range: 416
            if header in response:
                replacement[header] = response[header]
        return replacement


class CommonMiddleware(DjangoCommonMiddleware):
    """Django's, with APPEND_SLASH for the web pages only (`/admin` redirects to `/admin/`).

    API paths keep their exact routes: a client's typo there is a 404 in the envelope, never a
    redirect that would turn a POST into a GET.
    """

    def should_redirect_with_slash(self, request: HttpRequest) -> bool:
        return not is_api_path(request.path_info) and super().should_redirect_with_slash(request)
