"""Renders every error on API paths in the envelope of `config.errors`.

DRF's `EXCEPTION_HANDLER` and Django's handler404/500/400/403 live here.
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_default_handler

from config.metrics import UPLOADS_REFUSED, count_refusal
from config.errors import (
    ServiceError, envelope, is_api_path, json_error_body, service_error_body, service_error_headers,
)


_DRF_CODES = {
    drf_exceptions.NotAuthenticated: ("not_authenticated", "authentication_error"),
    drf_exceptions.AuthenticationFailed: ("not_authenticated", "authentication_error"),
    drf_exceptions.PermissionDenied: ("permission_denied", "permission_error"),
    drf_exceptions.NotFound: ("not_found", "not_found_error"),
    drf_exceptions.MethodNotAllowed: ("method_not_allowed", "invalid_request_error"),
    drf_exceptions.NotAcceptable: ("not_acceptable", "invalid_request_error"),
    drf_exceptions.UnsupportedMediaType: ("unsupported_media_type", "invalid_request_error"),
    drf_exceptions.Throttled: ("rate_limited", "rate_limit_error"),
    drf_exceptions.ParseError: ("parse_error", "invalid_request_error"),
}


def _first_validation_error(detail: Any, prefix: str = "") -> tuple[str | None, str, str]:
    """Flatten DRF's nested validation detail into (param, message, code) of the first error."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            name = f"{prefix}.{field}" if prefix else str(field)
            if field == "non_field_errors":
                name = prefix or None
            return _first_validation_error(value, name or "")
    if isinstance(detail, list) and detail:
        return _first_validation_error(detail[0], prefix)
    code = getattr(detail, "code", None) or "invalid"
    return (prefix or None), str(detail), code


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's EXCEPTION_HANDLER: render every error in the envelope."""
    if isinstance(exc, ServiceError):
        count_refusal(exc)
        return Response(service_error_body(exc), status=exc.status, headers=service_error_headers(exc))
    if isinstance(exc, RequestDataTooBig):  # Django would answer a bare 400
        UPLOADS_REFUSED.labels(reason="size").inc()
        return Response(envelope("The request body is too large.", code="request_too_large", type="size_error"),
                        status=413)
    response = drf_default_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.ValidationError):
        param, message, code = _first_validation_error(exc.detail)
        code = "invalid_request" if code == "invalid" else code
        response.data = envelope(message, code=code, param=param)
        return response
    code, type_ = _DRF_CODES.get(type(exc), ("invalid_request", "invalid_request_error"))
    if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
        response.status_code = 401
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    detail = exc.detail if isinstance(exc, drf_exceptions.APIException) else str(exc)
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        detail = _unsupported_media_type(exc, context)
    response.data = envelope(str(detail), code=code, type=type_)
    return response


def _unsupported_media_type(exc: drf_exceptions.UnsupportedMediaType, context: dict) -> str:
    """Name what the route takes: `curl -d` without `-H 'Content-Type: application/json'` sends a form."""
    view = context.get("view")
    accepted = [parser.media_type for parser in view.get_parsers()] if view is not None else []
    sent = context["request"].content_type if context.get("request") is not None else ""
    message = f"Unsupported Content-Type {sent or '(none)'!r}."
    if accepted:
        message += f" This route accepts {', '.join(accepted)}"
        if accepted == ["application/json"]:
            message += " (curl: -H 'Content-Type: application/json')"
        message += "."
    return message


def handler404(request, exception=None):  # noqa: ANN001 - Django's handler signature
    if is_api_path(request.path):
        return json_error_body(404, "Not found.", code="not_found", type="not_found_error")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):  # noqa: ANN001
    if is_api_path(request.path):
        return json_error_body(500, "Internal server error.", code="internal_error", type="api_error")
    from django.views.defaults import server_error

    return server_error(request)


def handler400(request, exception=None):  # noqa: ANN001
    if is_api_path(request.path) and isinstance(exception, RequestDataTooBig):
        # Django files a body over DATA_UPLOAD_MAX_MEMORY_SIZE under "suspicious" (400); it is a size error.
        return json_error_body(413, "The request body is too large.", code="request_too_large", type="size_error")
    if is_api_path(request.path):
        return json_error_body(400, "Bad request.", code="invalid_request", type="invalid_request_error")
    from django.views.defaults import bad_request

    return bad_request(request, exception)


def handler403(request, exception=None):  # noqa: ANN001
    if is_api_path(request.path):
        return json_error_body(403, "Forbidden.", code="permission_denied", type="permission_error")
    from django.views.defaults import permission_denied

    return permission_denied(request, exception)
