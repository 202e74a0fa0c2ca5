"""Compute image storage, /api/v1/storage/images: service keys only, both backends.

Paths are relative to the caller's organization namespace, `compute/<org id>/`: the API speaks
`gen/a.png`, the store holds `compute/<org id>/gen/a.png` (what `stored`/`object_key` read).
"""
import io

import pytest
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st

from media_app.models import MediaFile
from storage_app import crypto
from storage_app.keys import compute_prefix
from tests.conftest import use_local, use_s3
from tests.factories import png_bytes, unique_png, upload

API = "/api/v1/storage/images"
CDN = "https://cdn.example.test"
ELF = b"\x7fELF\x02\x01\x01" + b"\0" * 200
HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"


def put(actor, path, data=None, *, overwrite=False):
    url = f"{API}/{path}" + ("?overwrite=true" if overwrite else "")
    return actor.client.post(url, {"file": upload("x.png", data if data is not None else unique_png())},
                             format="multipart")


def error_of(response, status):
    assert response.status_code == status, response.content[:500]
    return response.json()["error"]


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def object_key(actor, path: str) -> str:
    """The real storage key of `path` for `actor`'s organization."""
    return compute_prefix(actor.organization.pk) + path


def stored(actor, path: str) -> bytes:
    from storage_app.backends import get_store

    return get_store().read_bytes(object_key(actor, path))


# -- the five endpoints, on both backends ----------------------------------------------------
def test_a_service_key_saves_heads_gets_lists_and_deletes_an_image(acme_service, backend, store_keys):
    data = unique_png(16, 9)
    response = put(acme_service, "generations/2025/a.png", data)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["path"] == "generations/2025/a.png"
    assert body["url"] == f"http://testserver{API}/generations/2025/a.png"
    assert body["bytes"] == len(data) and body["mime"] == "image/png"
    assert stored(acme_service, "generations/2025/a.png") == data
    assert store_keys("compute/") == [f"compute/{acme_service.organization.pk}/generations/2025/a.png"]

    head = acme_service.client.head(f"{API}/generations/2025/a.png")
    assert head.status_code == 200
    assert head["Content-Length"] == str(len(data)) and head["Content-Type"] == "image/png"

    got = acme_service.client.get(f"{API}/generations/2025/a.png")
    assert got.status_code == 200 and body_of(got) == data
    assert got["Content-Type"] == "image/png" and got["ETag"] and got["X-Content-Type-Options"] == "nosniff"

    assert acme_service.client.get(API, {"prefix": "generations/"}).json() == ["generations/2025/a.png"]

    assert acme_service.client.delete(f"{API}/generations/2025/a.png").status_code == 204
    assert acme_service.client.head(f"{API}/generations/2025/a.png").status_code == 404
    assert not MediaFile.objects.exists()  # compute objects have no rows


def test_get_redirects_to_the_cdn_on_s3_with_a_public_endpoint(acme_service, settings, moto_endpoint):
    use_s3(settings, moto_endpoint)
    settings.MEDIA_S3_PUBLIC_ENDPOINT = CDN
    saved = put(acme_service, "gen/a.png")
    real = f"{CDN}/compute/{acme_service.organization.pk}/gen/a.png"
    assert saved.json()["path"] == "gen/a.png" and saved.json()["url"] == real
    response = acme_service.client.get(f"{API}/gen/a.png")
    assert response.status_code == 302
    assert response["Location"] == real


def test_a_missing_image_is_a_404_even_where_get_would_redirect(acme_service, settings, moto_endpoint):
    use_s3(settings, moto_endpoint)
    settings.MEDIA_S3_PUBLIC_ENDPOINT = CDN
    assert error_of(acme_service.client.get(f"{API}/gen/none.png"), 404)["code"] == "image_not_found"


def test_head_answers_itself_where_get_redirects(acme_service, settings, moto_endpoint):
    use_s3(settings, moto_endpoint)
    settings.MEDIA_S3_PUBLIC_ENDPOINT = CDN
    data = unique_png()
    put(acme_service, "gen/a.png", data)
    response = acme_service.client.head(f"{API}/gen/a.png")
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(data)) and response["Content-Type"] == "image/png"


def test_get_streams_the_bytes_on_the_local_backend(acme_service, settings, tmp_path):
    use_local(settings, tmp_path)
    settings.MEDIA_S3_PUBLIC_ENDPOINT = CDN  # means nothing without S3
    data = unique_png(32, 32)
    put(acme_service, "gen/a.png", data)
    response = acme_service.client.get(f"{API}/gen/a.png")
    assert response.status_code == 200 and response.streaming
    assert body_of(response) == data
    assert response["Content-Type"] == "image/png"
    assert response["Content-Length"] == str(len(data))
    assert response["Accept-Ranges"] == "bytes"


def test_ranges_and_etags(acme_service, backend):
    data = unique_png(32, 32)
    put(acme_service, "gen/a.png", data)
    partial = acme_service.client.get(f"{API}/gen/a.png", HTTP_RANGE="bytes=2-9")
    assert partial.status_code == 206 and body_of(partial) == data[2:10]
    assert partial["Content-Range"] == f"bytes 2-9/{len(data)}"
    etag = partial["ETag"]
    assert acme_service.client.get(f"{API}/gen/a.png", HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert acme_service.client.get(f"{API}/gen/a.png", HTTP_RANGE=f"bytes={len(data)}-").status_code == 416


def test_an_overwritten_image_gets_a_new_etag(acme_service, backend):
    put(acme_service, "gen/a.png")
    first = acme_service.client.head(f"{API}/gen/a.png")["ETag"]
    put(acme_service, "gen/a.png", unique_png(9, 9), overwrite=True)
    assert acme_service.client.head(f"{API}/gen/a.png")["ETag"] != first


def test_an_encrypted_image_is_streamed_never_redirected(acme_service, settings, moto_endpoint):
    use_s3(settings, moto_endpoint)
    settings.MEDIA_S3_PUBLIC_ENDPOINT = CDN
    settings.MEDIA_ENCRYPTION = "app"
    settings.MEDIA_MASTER_KEYS = crypto.generate_key_string("k1")
    data = unique_png(20, 20)
    saved = put(acme_service, "gen/secret.png", data).json()
    assert saved["url"] == f"http://testserver{API}/gen/secret.png"  # the CDN would hand out ciphertext
    response = acme_service.client.get(f"{API}/gen/secret.png")
    assert response.status_code == 200 and body_of(response) == data
    assert response["Content-Type"] == "image/png"
    assert acme_service.client.head(f"{API}/gen/secret.png")["Content-Length"] == str(len(data))


def test_proxy_download_streams_instead_of_redirecting(acme_service, settings, moto_endpoint):
    use_s3(settings, moto_endpoint)
    settings.MEDIA_S3_PUBLIC_ENDPOINT = CDN
    settings.MEDIA_PROXY_DOWNLOAD = True
    data = unique_png()
    put(acme_service, "gen/a.png", data)
    response = acme_service.client.get(f"{API}/gen/a.png")
    assert response.status_code == 200 and body_of(response) == data


# -- writes ------------------------------------------------------------------------------------
def test_an_existing_path_is_a_409_without_overwrite(acme_service, backend):
    original = unique_png()
    put(acme_service, "gen/a.png", original)
    error = error_of(put(acme_service, "gen/a.png", unique_png()), 409)
    assert error["code"] == "image_exists"
    assert stored(acme_service, "gen/a.png") == original


def test_overwrite_true_replaces_an_existing_image(acme_service, backend):
    put(acme_service, "gen/a.png")
    replacement = unique_png(12, 12)
    assert put(acme_service, "gen/a.png", replacement, overwrite=True).status_code == 201
    assert stored(acme_service, "gen/a.png") == replacement


@pytest.mark.parametrize("data", [ELF, HTML], ids=["executable", "html"])
def test_executables_and_html_are_refused_before_anything_is_written(acme_service, store_keys, data):
    assert error_of(put(acme_service, "gen/a.png", data), 415)["code"] == "unsupported_media_type"
    assert store_keys("compute/") == []


def test_a_file_over_the_limit_is_refused_and_leaves_nothing(acme_service, settings, store_keys):
    settings.MEDIA_MAX_BYTES = 1000
    error = error_of(put(acme_service, "gen/a.png", png_bytes() + b"\0" * 5000), 413)
    assert error["code"] == "max_size_exceeded"
    assert store_keys("compute/") == []


def test_a_declared_body_past_the_limit_is_refused_unread(acme_service, settings, monkeypatch):
    settings.MEDIA_MAX_BYTES = 1000
    response = acme_service.client.generic("POST", f"{API}/gen/a.png", data=b"x" * 200_000,
                                           content_type="multipart/form-data; boundary=zz")
    assert error_of(response, 413)["code"] == "max_size_exceeded"


def test_an_empty_file_or_no_file_is_a_400(acme_service, store_keys):
    assert error_of(put(acme_service, "gen/a.png", b""), 400)["code"] == "empty_file"
    missing = acme_service.client.post(f"{API}/gen/a.png", {}, format="multipart")
    assert error_of(missing, 400)["param"] == "file"
    assert store_keys("compute/") == []


def test_images_are_not_charged_to_the_quota(acme_service):
    from quotas.models import Quota

    put(acme_service, "gen/a.png")
    quota = Quota.objects.filter(organization=acme_service.organization).first()
    assert quota is None or (quota.used_bytes, quota.reserved_bytes) == (0, 0)


# -- missing paths ----------------------------------------------------------------------------
def test_a_missing_path_is_a_404_for_get_head_and_delete(acme_service, backend):
    assert error_of(acme_service.client.get(f"{API}/gen/none.png"), 404)["code"] == "image_not_found"
    assert acme_service.client.head(f"{API}/gen/none.png").status_code == 404
    assert error_of(acme_service.client.delete(f"{API}/gen/none.png"), 404)["code"] == "image_not_found"


# -- listing ------------------------------------------------------------------------------------
def test_listing_filters_by_prefix_and_never_shows_other_keys(acme_service, alice, backend):
    for path in ("gen/a.png", "gen/b.png", "generations/c.png", "other/d.png"):
        put(acme_service, path)
    alice.client.post("/api/v1/storage/upload", {"file": upload("u.png", unique_png())}, format="multipart")
    listed = acme_service.client.get(API).json()
    assert sorted(listed) == ["gen/a.png", "gen/b.png", "generations/c.png", "other/d.png"]
    assert sorted(acme_service.client.get(API, {"prefix": "gen/"}).json()) == ["gen/a.png", "gen/b.png"]
    assert len(acme_service.client.get(API, {"prefix": "gen"}).json()) == 3
    assert acme_service.client.get(API, {"prefix": "nothing/"}).json() == []


def test_listing_limits_default_to_100_and_are_capped(acme_service, monkeypatch):
    from api.images import views as images_api
    from storage_app.backends import get_store

    store = get_store()
    for n in range(101):
        store.save_stream(object_key(acme_service, f"many/{n:03}.png"), io.BytesIO(png_bytes()), max_bytes=10_000)
    assert len(acme_service.client.get(API).json()) == 100
    assert len(acme_service.client.get(API, {"limit": 7}).json()) == 7
    monkeypatch.setattr(images_api, "MAX_LIST_LIMIT", 50)
    assert len(acme_service.client.get(API, {"limit": 10_000}).json()) == 50


@pytest.mark.parametrize("limit", ["0", "-1", "many"])
def test_a_bad_limit_is_a_400(acme_service, limit):
    assert error_of(acme_service.client.get(API, {"limit": limit}), 400)["param"] == "limit"


@pytest.mark.parametrize("prefix", ["../", "/etc", "a//", "a/./", "a\\b", "%2e%2e/", "a\x00"])
def test_a_hostile_prefix_is_a_400(acme_service, prefix, monkeypatch):
    _explode_storage(monkeypatch)
    error = error_of(acme_service.client.get(API, {"prefix": prefix}), 400)
    assert error["code"] == "invalid_path" and error["param"] == "prefix"


# -- one organization's namespace ---------------------------------------------------------------
@pytest.fixture
def acmes_image(request, acme_service) -> bytes:
    if "backend" in request.fixturenames:  # pick the store first, whatever the argument order
        request.getfixturevalue("backend")
    data = unique_png(10, 10)
    assert put(acme_service, "gen/a.png", data).status_code == 201
    return data


def test_another_organization_does_not_see_the_image_in_its_list(acme_service, globex_service, acmes_image,
                                                                 backend):
    acme_id = acme_service.organization.pk
    assert globex_service.client.get(API).json() == []
    assert globex_service.client.get(API, {"prefix": "gen"}).json() == []
    assert globex_service.client.get(API, {"prefix": f"{acme_id}/"}).json() == []
    put(globex_service, "gen/b.png")
    assert globex_service.client.get(API).json() == ["gen/b.png"]
    assert acme_service.client.get(API).json() == ["gen/a.png"]


@pytest.mark.parametrize("literal", [False, True], ids=["same-path", "other-namespace-literally"])
def test_another_organization_cannot_get_head_or_delete_the_image(acme_service, globex_service, acmes_image,
                                                                  backend, literal):
    path = f"{acme_service.organization.pk}/gen/a.png" if literal else "gen/a.png"
    assert error_of(globex_service.client.get(f"{API}/{path}"), 404)["code"] == "image_not_found"
    assert globex_service.client.head(f"{API}/{path}").status_code == 404
    assert error_of(globex_service.client.delete(f"{API}/{path}"), 404)["code"] == "image_not_found"
    assert stored(acme_service, "gen/a.png") == acmes_image
    assert body_of(acme_service.client.get(f"{API}/gen/a.png")) == acmes_image


def test_another_organization_is_not_redirected_to_the_image(acme_service, globex_service, settings,
                                                             moto_endpoint):
    use_s3(settings, moto_endpoint)
    settings.MEDIA_S3_PUBLIC_ENDPOINT = CDN
    put(acme_service, "gen/a.png")
    assert error_of(globex_service.client.get(f"{API}/gen/a.png"), 404)["code"] == "image_not_found"
    put(globex_service, "gen/a.png")
    assert globex_service.client.get(f"{API}/gen/a.png")["Location"] == \
        f"{CDN}/compute/{globex_service.organization.pk}/gen/a.png"


@pytest.mark.parametrize("overwrite", [False, True], ids=["new", "overwrite"])
def test_a_write_to_the_same_path_makes_another_organizations_own_image(acme_service, globex_service, acmes_image,
                                                                         backend, store_keys, overwrite):
    globexs = unique_png(11, 11)
    response = put(globex_service, "gen/a.png", globexs, overwrite=overwrite)
    assert response.status_code == 201, response.content  # no 409: acme's image is not in globex's namespace
    assert response.json()["path"] == "gen/a.png"
    assert stored(globex_service, "gen/a.png") == globexs
    assert stored(acme_service, "gen/a.png") == acmes_image
    assert store_keys("compute/") == sorted([object_key(acme_service, "gen/a.png"),
                                             object_key(globex_service, "gen/a.png")])
    assert body_of(globex_service.client.get(f"{API}/gen/a.png")) == globexs
    assert body_of(acme_service.client.get(f"{API}/gen/a.png")) == acmes_image


def test_a_path_naming_another_namespace_stays_inside_the_callers(acme_service, globex_service, acmes_image,
                                                                  store_keys):
    path = f"{acme_service.organization.pk}/gen/a.png"
    assert put(globex_service, path, overwrite=True).status_code == 201
    assert stored(acme_service, "gen/a.png") == acmes_image
    assert object_key(globex_service, path) in store_keys("compute/")
    assert globex_service.client.get(API).json() == [path]


# -- who may call -----------------------------------------------------------------------------
ENDPOINTS = [("get", API), ("get", f"{API}/gen/a.png"), ("head", f"{API}/gen/a.png"),
             ("post", f"{API}/gen/a.png"), ("delete", f"{API}/gen/a.png")]


@pytest.mark.parametrize("method,url", ENDPOINTS)
@pytest.mark.parametrize("who", ["alice", "bob", "charlie"])
def test_user_keys_are_refused_on_every_endpoint(db, request, who, method, url, monkeypatch):
    actor = request.getfixturevalue(who)
    _explode_storage(monkeypatch)
    response = getattr(actor.client, method)(url)
    assert response.status_code == 403
    if method != "head":
        assert response.json()["error"]["code"] == "service_key_required"


@pytest.mark.parametrize("method,url", ENDPOINTS)
def test_no_credentials_is_a_401_on_every_endpoint(anon, db, method, url, monkeypatch):
    _explode_storage(monkeypatch)
    response = getattr(anon, method)(url)
    assert response.status_code == 401
    if method != "head":
        assert response.json()["error"]["code"] == "not_authenticated"


def test_a_bad_key_is_a_401(anon, db):
    anon.credentials(HTTP_AUTHORIZATION="Bearer msk_not_a_real_key")
    assert anon.get(API).status_code == 401


# -- path validation before any storage call ----------------------------------------------------
def _explode_storage(monkeypatch):
    """Any storage call from the image views fails the test loudly."""
    from django.urls import get_resolver

    from api.images import views as images_api
    from storage_app import backends

    get_resolver().url_patterns  # noqa: B018 - every view module imported now binds the real get_store

    def explode(*args, **kwargs):
        raise AssertionError("storage was touched")

    monkeypatch.setattr(images_api, "get_store", explode)
    monkeypatch.setattr(backends, "get_store", explode)


# As sent on the wire: Django decodes %-escapes once, so `%2e%2e/x` arrives as `../x`
# and `%252e%252e/x` as `%2e%2e/x`; both are refused.
BAD_PATHS = {
    "dotdot": "../x.png",
    "absolute": "/etc/passwd",
    "empty-segment": "a//b.png",
    "dot-segment": "a/./b.png",
    "backslash": "a\\b.png",
    "encoded-dotdot": "%2e%2e/x",
    "double-encoded-dotdot": "%252e%252e/x",
    "encoded-nul": "a%00.png",
    "encoded-slash": "a%252fb.png",
    "newline": "a%0Ab.png",
    "trailing-slash": "a/",
    "too-long": "a" * 2000,
}


@pytest.mark.parametrize("method", ["get", "head", "post", "delete"])
@pytest.mark.parametrize("path", BAD_PATHS.values(), ids=BAD_PATHS.keys())
def test_a_hostile_path_is_a_400_before_any_storage_call(acme_service, monkeypatch, method, path):
    _explode_storage(monkeypatch)
    response = getattr(acme_service.client, method)(f"{API}/{path}")
    assert response.status_code == 400, response.content[:300]
    if method != "head":
        error = response.json()["error"]
        assert error["code"] == "invalid_path" and error["param"] == "path"


def test_a_hostile_path_is_refused_before_the_body_is_read(acme_service, monkeypatch):
    _explode_storage(monkeypatch)
    error = error_of(put(acme_service, "../../etc/cron.d/x"), 400)
    assert error["code"] == "invalid_path"


# Generated hostile paths: each one contains at least one thing the validator must refuse.
_safe_segment = st.text("abcXYZ019_-", min_size=1, max_size=8)
_hostile_piece = st.sampled_from([
    "..", ".", "", ".hidden", "a\\b", "\\", "\x00", "\n", "\r", "\t", "\x1b", "\x7f", " ", "a b",
    "%2e%2e", "%2E%2E", "%2f", "%5c", "%00", "%0a", "%25", "%", "..%2f", "\u202e", "é", "\uff0e\uff0e",
])


@st.composite
def hostile_paths(draw) -> str:
    segments = draw(st.lists(_safe_segment, max_size=5))
    position = draw(st.integers(min_value=0, max_value=len(segments)))
    segments.insert(position, draw(_hostile_piece))
    path = "/".join(segments)
    if draw(st.booleans()) and path:
        path = draw(st.sampled_from(["/", "//", "./", "../"])) + path
    if draw(st.integers(0, 9)) == 0:
        path = path + "x" * 600
    return path


@hsettings(max_examples=300, deadline=None)
@given(path=hostile_paths())
def test_the_validator_accepts_no_generated_hostile_path(path):
    from config.errors import InvalidPath
    from storage_app.keys import validate_compute_path

    with pytest.raises(InvalidPath):
        validate_compute_path(path)


@hsettings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=hostile_paths(), method=st.sampled_from(["get", "head", "post", "delete"]))
def test_the_endpoints_accept_no_generated_hostile_path(acme_service, monkeypatch, path, method):
    from urllib.parse import quote

    _explode_storage(monkeypatch)
    # Percent-encode everything, as a client would: the server decodes once and must still refuse.
    response = getattr(acme_service.client, method)(f"{API}/{quote(path, safe='/')}")
    expected = 400 if path else 404  # `images/` with nothing after it is no route at all
    assert response.status_code == expected, (path, response.content[:200])


def test_an_empty_overwrite_keeps_the_image(acme_service):
    original = png_bytes(noise=8)
    assert put(acme_service, "keep/a.png", original).status_code == 201
    assert error_of(put(acme_service, "keep/a.png", b"", overwrite=True), 400)["code"] == "empty_file"
    assert stored(acme_service, "keep/a.png") == original


def test_image_uploads_stream_without_a_temporary_file(acme_service, monkeypatch):
    from django.core.files import temp

    monkeypatch.setattr(temp, "NamedTemporaryFile", lambda *a, **k: pytest.fail("spooled to a temp file"))
    data = png_bytes(noise=3_000_000)  # past Django's in-memory upload size
    assert put(acme_service, "big/a.png", data).status_code == 201
    assert stored(acme_service, "big/a.png") == data
