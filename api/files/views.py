"""The app-signed file URLs: downloads and uploads for the local backend and encrypted objects.

A signature says what the app granted; the file's row says whether it may still happen
(`media_app.grants`): a download serves only a live file, an upload writes once, to a pending
file's staging key, and never replaces an object.
"""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from config.errors import InvalidRequest, NotFound, ServiceError, TooLarge, UnsupportedMediaType, service_error_response
from media_app.derivatives import media_live_for_object, media_variant_get, variant_cache_control, variant_object
from media_app.grants import media_object_live, media_upload_claim, media_upload_release
from media_app.transforms import transform_from_name
from storage_app import signing
from storage_app.backends import get_store
from storage_app.http import ObjectView, serve_object
from storage_app.keys import ORGANIZATIONS_PREFIX, validate_key
from storage_app.sniff import SNIFF_BYTES, Sniffed, declared_contradicts, sniff
from storage_app.uploads import CappedBody, NonEmpty, declared_body_size, open_upload_form, request_body

# A form POST is read no further than this before its signature is checked: the fields that
# precede the file part (S3's rule, which signed forms follow) and the file part's headers.
POST_PREFIX_BYTES = 8 * 1024
# After the file: the closing boundary and a short epilogue; anything longer is refused.
POST_TRAILER_BYTES = 1024


@csrf_exempt
@require_http_methods(["GET", "HEAD", "PUT", "POST"])
def signed_file(request: HttpRequest, key: str) -> HttpResponse:
    try:
        validate_key(key)
        if request.method in ("GET", "HEAD"):
            return _download(request, key)
        if request.method == "PUT":
            return _put(request, key)
        return _post(request, key)
    except ServiceError as exc:
        return service_error_response(exc)


def _download(request: HttpRequest, key: str) -> HttpResponse:
    grant = signing.verify("get", key, request.GET)
    if grant.transform:
        return _download_variant(request, key, grant.transform)
    # A user file's URL outlives its deletion; its row decides (compute images have none).
    if key.startswith(ORGANIZATIONS_PREFIX) and not media_object_live(key=key):
        raise NotFound("The file does not exist.")
    store = get_store()
    encrypted = store.looks_encrypted(key)
    size = store.plain_size(key, encrypted=encrypted)
    mime = grant.content_type or _sniff_stored(store, key, size, encrypted)
    obj = ObjectView(key=key, size=size, mime=mime, encrypted=encrypted, filename=grant.filename)
    return serve_object(request, store, obj, head=request.method == "HEAD")


def _download_variant(request: HttpRequest, key: str, name: str) -> HttpResponse:
    """An image variant of a live file, the transform fixed by the signature; rendered if it is the first fetch."""
    media = media_live_for_object(key=key)
    variant = media_variant_get(media=media, transform=transform_from_name(name))
    response = serve_object(request, get_store(), variant_object(variant, media), head=request.method == "HEAD")
    response["Cache-Control"] = variant_cache_control(media)
    return response


def _sniff_stored(store, key: str, size: int, encrypted: bool) -> str:  # noqa: ANN001
    head = b"".join(store.open_range(key, 0, min(size, SNIFF_BYTES) - 1, encrypted=encrypted, plain_size=size))
    return sniff(head).mime if size else "application/octet-stream"


def _put(request: HttpRequest, key: str) -> HttpResponse:
    grant = signing.verify("put", key, request.GET)
    if grant.content_type:
        sent = request.content_type or ""
        if sent.split(";")[0].strip().lower() != grant.content_type.lower():
            raise InvalidRequest("Content-Type must match the one the URL was signed for.",
                                 code="content_type_mismatch")
    declared = declared_body_size(request)
    if declared is not None and declared > _max_bytes(grant):
        raise TooLarge(f"This upload URL accepts at most {_max_bytes(grant)} bytes.", param="file")
    return _write(grant, request_body(request))


def _post(request: HttpRequest, key: str) -> HttpResponse:
    """A form upload, verified from the fields before the file part: a bad signature costs the
    server at most POST_PREFIX_BYTES of reading, a good one the signed size and a trailer."""
    body = CappedBody(request_body(request), POST_PREFIX_BYTES)
    form = open_upload_form(request, source=body)
    grant = signing.verify("post", key, form.fields)
    if form.file is None:
        raise InvalidRequest("The form has no 'file' field before its end.", code="missing_file", param="file")
    body.cap = body.taken + _max_bytes(grant) + POST_TRAILER_BYTES
    return _write(grant, form.file)


def _max_bytes(grant: signing.SignedGrant) -> int:
    return grant.max_bytes if grant.max_bytes is not None else 0


def _write(grant: signing.SignedGrant, source) -> HttpResponse:  # noqa: ANN001 - a readable
    def check(sniffed: Sniffed) -> None:
        if declared_contradicts(grant.content_type, sniffed):
            raise UnsupportedMediaType(f"The content is {sniffed.mime}, not {grant.content_type}.",
                                       code="content_type_mismatch", param="file")

    media_upload_claim(key=grant.key)
    try:
        get_store().save_stream(grant.key, NonEmpty(source), max_bytes=_max_bytes(grant), check=check)
    except BaseException:
        media_upload_release(key=grant.key)  # nothing was stored: the client may try again
        raise
    response = HttpResponse(status=204)
    del response["Content-Type"]  # no body, so no type
    return response
