"""The app-signed file URLs: downloads and uploads for the local backend and encrypted objects."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from config.errors import InvalidRequest, ServiceError, TooLarge, UnsupportedMediaType, service_error_response
from storage_app import signing
from storage_app.backends import get_store
from storage_app.http import ObjectView, serve_object
from storage_app.keys import validate_key
from storage_app.sniff import SNIFF_BYTES, Sniffed, declared_contradicts, sniff


@csrf_exempt
@require_http_methods(["GET", "HEAD", "PUT", "POST"])
def signed_file(request: HttpRequest, key: str) -> HttpResponse:
    try:
        validate_key(key)
        if request.method in ("GET", "HEAD"):
            return _download(request, key)
        params = request.POST if request.method == "POST" else request.GET
        grant = signing.verify(request.method.lower(), key, params)
        return _upload(request, grant)
    except ServiceError as exc:
        return service_error_response(exc)


def _download(request: HttpRequest, key: str) -> HttpResponse:
    grant = signing.verify("get", key, request.GET)
    store = get_store()
    encrypted = store.looks_encrypted(key)
    size = store.plain_size(key, encrypted=encrypted)
    mime = grant.content_type or _sniff_stored(store, key, size, encrypted)
    obj = ObjectView(key=key, size=size, mime=mime, encrypted=encrypted, filename=grant.filename)
    return serve_object(request, store, obj, head=request.method == "HEAD")


def _sniff_stored(store, key: str, size: int, encrypted: bool) -> str:  # noqa: ANN001
    head = b"".join(store.open_range(key, 0, min(size, SNIFF_BYTES) - 1, encrypted=encrypted, plain_size=size))
    return sniff(head).mime if size else "application/octet-stream"


def _upload(request: HttpRequest, grant: signing.SignedGrant) -> HttpResponse:
    if grant.content_type and request.method == "PUT":
        sent = request.content_type or ""
        if sent.split(";")[0].strip().lower() != grant.content_type.lower():
            raise InvalidRequest("Content-Type must match the one the URL was signed for.",
                                 code="content_type_mismatch")
    max_bytes = grant.max_bytes if grant.max_bytes is not None else 0
    declared = request.META.get("CONTENT_LENGTH")
    if request.method == "PUT" and declared and declared.isdigit() and int(declared) > max_bytes:
        raise TooLarge(f"This upload URL accepts at most {max_bytes} bytes.", param="file")
    source = request if request.method == "PUT" else _post_file(request)

    def check(sniffed: Sniffed) -> None:
        if declared_contradicts(grant.content_type, sniffed):
            raise UnsupportedMediaType(f"The content is {sniffed.mime}, not {grant.content_type}.",
                                       code="content_type_mismatch", param="file")

    get_store().save_stream(grant.key, source, max_bytes=max_bytes, check=check)
    return HttpResponse(status=204 if request.method == "POST" else 200)


def _post_file(request: HttpRequest):  # noqa: ANN202
    upload = request.FILES.get("file")
    if upload is None:
        raise InvalidRequest("The form has no 'file' field.", code="missing_file", param="file")
    return upload
