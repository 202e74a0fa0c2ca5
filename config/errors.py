"""Domain exceptions and the one error envelope every API path answers with.

`{"error": {"message", "type", "code", "param"?}}`: services raise a `ServiceError`
subclass, DRF's exception handler and Django's own 404/405/500 handlers render it.
"""
from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("mediastore.errors")

API_PREFIXES = ("/api/", "/v1/", "/healthz", "/readyz", "/files/")


class ServiceError(Exception):
    """An error a client can act on: a status, a stable code and a message."""

    status = 400
    code = "invalid_request"
    type = "invalid_request_error"
    message = "Invalid request."
    refusal: str | None = None  # why an upload was refused, for mediastore_uploads_refused_total

    def __init__(self, message: str | None = None, *, code: str | None = None,
                 param: str | None = None, status: int | None = None) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.param = param
        if status is not None:
            self.status = status
        super().__init__(self.message)


class InvalidRequest(ServiceError):
    pass


class InvalidPath(ServiceError):
    code = "invalid_path"
    message = "The path or key is not allowed."


class NotAuthenticated(ServiceError):
    status = 401
    code = "not_authenticated"
    type = "authentication_error"
    message = "Authentication credentials were not provided or are not valid."


class PermissionDenied(ServiceError):
    status = 403
    code = "permission_denied"
    type = "permission_error"
    message = "You do not have permission to perform this action."


class SignatureInvalid(PermissionDenied):
    code = "signature_invalid"
    message = "The signed URL is invalid or has expired."


class NotFound(ServiceError):
    status = 404
    code = "not_found"
    type = "not_found_error"
    message = "Not found."


class Conflict(ServiceError):
    status = 409
    code = "conflict"
    type = "conflict_error"
    message = "The request conflicts with the current state."


class TooLarge(ServiceError):
    status = 413
    code = "max_size_exceeded"
    type = "size_error"
    message = "File size exceeds maximum allowed."
    refusal = "size"


class LengthRequired(ServiceError):
    status = 411
    code = "length_required"
    message = "Send a Content-Length or a chunked body."


class QuotaExceeded(TooLarge):
    code = "quota_exceeded"
    type = "quota_error"
    message = "The organization's storage quota would be exceeded."
    refusal = "quota"


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "unsupported_media_type"
    message = "This type of content is not allowed here."
    refusal = "type"


class Throttled(ServiceError):
    status = 429
    code = "rate_limited"
    type = "rate_limit_error"
    message = "Too many requests."
    retry_after: int | None = None  # seconds, sent as `Retry-After`


class TooManyConcurrentUploads(Throttled):
    code = "too_many_concurrent_uploads"
    message = "Too many uploads in progress at once; retry when one has finished."
    refusal = "concurrency"

    def __init__(self, message: str | None = None, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RequestTimeout(ServiceError):
    """The request body arrived too slowly (idle too long, or below the minimum rate)."""

    status = 408
    code = "request_timeout"
    type = "timeout_error"
    message = "The request body arrived too slowly."


class RemoteFetchFailed(ServiceError):
    status = 502
    code = "remote_fetch_failed"
    type = "upstream_error"
    message = "The remote file could not be fetched."


class StorageUnavailable(ServiceError):
    status = 503
    code = "storage_unavailable"
    type = "storage_error"
    message = "The storage backend is unavailable."


def envelope(message: str, *, code: str, type: str = "invalid_request_error",
             param: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": type, "code": code}
    if param:
        error["param"] = param
    return {"error": error}


def service_error_body(exc: ServiceError) -> dict[str, Any]:
    return envelope(exc.message, code=exc.code, type=exc.type, param=exc.param)


def service_error_headers(exc: ServiceError) -> dict[str, str]:
    """The headers an error answer carries besides its body."""
    headers = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    if getattr(exc, "retry_after", None) is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return headers


def service_error_response(exc: ServiceError):
    """A JsonResponse of a ServiceError, for plain Django views and middleware."""
    from django.http import JsonResponse

    from config.metrics import count_refusal

    count_refusal(exc)
    response = JsonResponse(service_error_body(exc), status=exc.status)
    for name, value in service_error_headers(exc).items():
        response[name] = value
    return response


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def json_error_body(status: int, message: str, *, code: str, type: str = "invalid_request_error"):
    """A JsonResponse with the envelope, for plain Django views and middleware."""
    from django.http import JsonResponse

    return JsonResponse(envelope(message, code=code, type=type), status=status)
