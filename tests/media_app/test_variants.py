"""Image variants: transform parameters on every read, rendered once, stored, served, purged."""
import io
import threading
import zlib
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.db import connection
from PIL import Image

from media_app import derivatives
from media_app.lifecycle import purge_media, reconcile_storage
from media_app.models import MediaFile, MediaVariant
from media_app.transforms import transform_parse
from tests.factories import pdf_bytes
from tests.media_app.conftest import body_of, error_of


def image_bytes(width: int, height: int, fmt: str = "PNG", **save) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (20, 120, 220)).save(buffer, format=fmt, **save)
    return buffer.getvalue()


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.fixture
def photo(alice, post_file):
    """Alice's 300x200 PNG."""
    response = post_file(alice, image_bytes(300, 200), name="photo.png")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def proxied(settings):
    settings.MEDIA_PROXY_DOWNLOAD = True


def content(actor_client, media_id: str, **params):  # noqa: ANN001, ANN201
    return actor_client.get(f"/v1/media/{media_id}/content?{urlencode(params)}")


def follow(client, url: str):  # noqa: ANN001, ANN201
    """Fetch a signed URL: the app's /files/ route, or the S3 (moto) server."""
    if url.startswith("http://testserver/"):
        return body_of(client.get(url.removeprefix("http://testserver")))
    import requests

    return requests.get(url, timeout=10).content


# -- each parameter --------------------------------------------------------------------------
def test_a_width_scales_the_image_keeping_its_aspect(alice, photo, proxied):
    response = content(alice.client, photo["id"], width=128, format="png")
    assert response.status_code == 200, response.content
    assert decoded(body_of(response)).size == (128, 85)


def test_a_height_alone_scales_to_that_height(alice, photo, proxied):
    assert decoded(body_of(content(alice.client, photo["id"], height=64, format="png"))).size == (96, 64)


def test_a_width_between_allowed_sizes_rounds_up_to_the_next(alice, photo, proxied):
    response = content(alice.client, photo["id"], width=100, format="png")
    assert decoded(body_of(response)).size == (128, 85)
    assert MediaVariant.objects.get().transform == "w128_h0_inside_q0_png"


def test_a_variant_is_never_larger_than_its_original(alice, photo, proxied):
    assert decoded(body_of(content(alice.client, photo["id"], width=2048, format="png"))).size == (300, 200)


def test_cover_fills_the_box_and_crops(alice, photo, proxied):
    response = content(alice.client, photo["id"], width=64, height=64, fit="cover", format="png")
    assert decoded(body_of(response)).size == (64, 64)


def test_contain_fits_the_image_and_pads_to_the_box(alice, photo, proxied):
    image = decoded(body_of(content(alice.client, photo["id"], width=64, height=64, fit="contain", format="png")))
    assert image.size == (64, 64) and image.mode == "RGBA"
    assert image.getpixel((0, 0))[3] == 0 and image.getpixel((32, 32))[3] == 255


def test_inside_fits_the_image_without_padding(alice, photo, proxied):
    image = decoded(body_of(content(alice.client, photo["id"], width=64, height=64, fit="inside", format="png")))
    assert image.size == (64, 43)


@pytest.mark.parametrize("fmt,pil_format,mime", [
    ("webp", "WEBP", "image/webp"), ("avif", "AVIF", "image/avif"),
    ("jpeg", "JPEG", "image/jpeg"), ("png", "PNG", "image/png"),
])
def test_each_format_is_encoded_as_asked(alice, photo, proxied, fmt, pil_format, mime):
    response = content(alice.client, photo["id"], width=64, format=fmt)
    assert response.status_code == 200 and response["Content-Type"] == mime
    assert decoded(body_of(response)).format == pil_format


@pytest.mark.parametrize("accept,mime", [
    ("image/avif,image/webp,*/*", "image/avif"), ("image/webp,*/*", "image/webp"),
    ("image/png,image/*;q=0.8,*/*;q=0.1", "image/jpeg"), ("*/*", "image/webp"),
])
def test_auto_format_follows_the_accept_header(alice, photo, proxied, accept, mime):
    response = alice.client.get(f"/v1/media/{photo['id']}/content?width=64&format=auto", HTTP_ACCEPT=accept)
    assert response["Content-Type"] == mime and response["Vary"] == "Accept"


def test_quality_changes_the_bytes_and_is_part_of_the_variant(alice, post_file, proxied):
    media = post_file(alice, image_bytes(300, 300, "JPEG", quality=95), name="p.jpg").json()
    low = body_of(content(alice.client, media["id"], width=256, format="jpeg", quality=10))
    high = body_of(content(alice.client, media["id"], width=256, format="jpeg", quality=95))
    assert low != high
    assert sorted(MediaVariant.objects.values_list("transform", flat=True)) == [
        "w256_h0_inside_q100_jpeg", "w256_h0_inside_q10_jpeg"]


@pytest.mark.parametrize("params,param,code", [
    ({"width": "abc"}, "width", "invalid_transform"), ({"width": "-5"}, "width", "invalid_transform"),
    ({"width": "4096"}, "width", "transform_too_large"), ({"fit": "cover"}, "width", "invalid_transform"),
    ({"width": "64", "fit": "stretch"}, "fit", "invalid_transform"),
    ({"width": "64", "format": "gif"}, "format", "invalid_transform"),
    ({"width": "64", "quality": "0"}, "quality", "invalid_transform"),
    ({"width": "64", "quality": "101"}, "quality", "invalid_transform"),
])
@pytest.mark.parametrize("path", ["/v1/media/{id}/content", "/v1/media/{id}/presign", "/v1/media/{id}"])
def test_bad_parameters_are_400_with_a_code(alice, photo, params, param, code, path):
    response = alice.client.get(f"{path.format(id=photo['id'])}?{urlencode(params)}")
    error = error_of(response, 400)
    assert (error["code"], error["param"]) == (code, param)


@pytest.mark.parametrize("path", ["/v1/media/{id}/content", "/v1/media/{id}/presign", "/v1/media/{id}"])
def test_a_file_that_is_not_an_image_is_415(alice, post_file, path, proxied):
    media = post_file(alice, pdf_bytes(), name="doc.pdf").json()
    response = alice.client.get(f"{path.format(id=media['id'])}?width=64")
    assert error_of(response, 415)["code"] == "not_an_image"


# -- generated once, stored, reused -----------------------------------------------------------
def test_the_second_request_is_served_from_the_stored_variant(alice, photo, proxied, monkeypatch, store_keys):
    first = body_of(content(alice.client, photo["id"], width=64, format="webp"))
    monkeypatch.setattr(derivatives, "render_variant", lambda *a: pytest.fail("rendered twice"))
    second = content(alice.client, photo["id"], width=64, format="webp")
    assert body_of(second) == first
    variant = MediaVariant.objects.get()
    assert variant.status == "ready" and variant.bytes == len(first)
    assert variant.storage_key == (f"organizations/{alice.organization.pk}/variants/{photo['sha256']}/"
                                   "w64_h0_inside_q80_webp.webp")
    assert variant.storage_key in store_keys("organizations/")


def test_a_variant_is_served_with_ranges_and_an_etag(alice, photo, proxied):
    whole = body_of(content(alice.client, photo["id"], width=64, format="png"))
    response = alice.client.get(f"/v1/media/{photo['id']}/content?width=64&format=png", HTTP_RANGE="bytes=0-9")
    assert response.status_code == 206 and body_of(response) == whole[:10]
    etag = response["ETag"]
    again = alice.client.get(f"/v1/media/{photo['id']}/content?width=64&format=png", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304


def test_a_public_files_variant_is_cached_for_a_year_and_a_private_ones_privately(alice, anon, post_file, photo,
                                                                                    proxied):
    public = post_file(alice, image_bytes(90, 90), name="pub.png", visibility="public").json()
    response = content(anon, public["id"], width=64, format="webp")
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert content(alice.client, photo["id"], width=64, format="webp")["Cache-Control"].startswith("private")


def test_files_of_the_same_bytes_share_their_variants(alice, bob, post_file, proxied):
    data = image_bytes(120, 80)
    for actor in (alice, bob):
        media = post_file(actor, data, name="same.png").json()
        assert content(actor.client, media["id"], width=64, format="png").status_code == 200
    assert MediaVariant.objects.count() == 1


def test_a_variant_is_written_in_the_stores_encryption_mode(alice, post_file, settings, proxied):
    from storage_app.backends import get_store

    settings.MEDIA_ENCRYPTION = "app"
    settings.MEDIA_MASTER_KEYS = "k1:" + "A" * 43 + "="
    media = post_file(alice, image_bytes(120, 80), name="secret.png").json()
    response = content(alice.client, media["id"], width=64, format="png")
    assert decoded(body_of(response)).size == (64, 43)
    variant = MediaVariant.objects.get()
    assert variant.encryption == "app" and get_store().looks_encrypted(variant.storage_key)


# -- signed URLs carry the transform ---------------------------------------------------------
def test_presign_returns_a_url_of_the_variant(alice, photo, client):
    body = alice.client.get(f"/v1/media/{photo['id']}/presign?width=64&format=png").json()
    assert body["transform"] == {"width": "64", "format": "png", "fit": "inside"}
    assert decoded(follow(client, body["url"])).size == (64, 43)


def test_changing_the_transform_of_a_signed_url_is_403(alice, photo, client, settings):
    settings.MEDIA_STORAGE_BACKEND = "local"
    body = alice.client.get(f"/v1/media/{photo['id']}?width=64&format=webp").json()
    url = body["variant"]["presigned_url"]
    assert url.startswith("http://testserver/files/")
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query["tf"] = query["tf"].replace("w64", "w2048")
    response = client.get(f"{parts.path}?{urlencode(query)}")
    assert error_of(response, 403)["code"] == "signature_invalid"


def test_a_signed_variant_url_renders_on_first_fetch(alice, photo, client):
    body = alice.client.get(f"/v1/media/{photo['id']}?width=64&format=png").json()
    assert MediaVariant.objects.count() == 0
    assert decoded(follow(client, body["variant"]["presigned_url"])).size == (64, 43)
    assert MediaVariant.objects.get().status == "ready"


def test_a_signed_variant_url_of_a_deleted_file_is_404(alice, photo, client, settings):
    body = alice.client.get(f"/v1/media/{photo['id']}?width=64&format=png").json()
    alice.client.delete(f"/v1/media/{photo['id']}")
    url = body["variant"]["presigned_url"]
    if url.startswith("http://testserver/"):
        assert error_of(client.get(url.removeprefix("http://testserver")), 404)["code"] == "not_found"


def test_one_list_call_returns_thumbnail_urls(alice, post_file, client):
    for size in (100, 120):
        post_file(alice, image_bytes(size, size), name="g.png")
    post_file(alice, pdf_bytes(), name="doc.pdf")
    body = alice.client.get("/v1/media?width=64&format=webp").json()
    variants = [item["variant"] for item in body["data"]]
    assert variants[0] is None  # the PDF, newest
    for variant in variants[1:]:
        assert variant["mime"] == "image/webp" and variant["url"].endswith("/content?width=64&fit=inside&format=webp&quality=80")
        assert decoded(follow(client, variant["presigned_url"])).size == (64, 64)


def test_a_list_without_parameters_has_no_variants(alice, photo):
    assert "variant" not in alice.client.get("/v1/media").json()["data"][0]


def test_format_json_alone_is_not_a_transform(alice, photo):
    response = alice.client.get("/v1/media?format=json")
    assert response.status_code == 200 and "variant" not in response.json()["data"][0]


def test_resolve_returns_variant_urls(alice, photo, client):
    response = alice.client.post("/v1/media/resolve?width=64&format=png", {"ids": [photo["id"]]}, format="json")
    item = response.json()["media"][0]
    assert item["presigned_url"] and decoded(follow(client, item["variant"]["presigned_url"])).size == (64, 43)


def test_a_rendered_variant_on_s3_is_presigned_under_its_own_key(alice, photo, settings):
    from storage_app.backends import get_store

    if get_store().name == "local":
        pytest.skip("S3 only (MEDIASTORE_TEST_BACKEND=s3)")
    body = alice.client.get(f"/v1/media/{photo['id']}/presign?width=64&format=png").json()
    assert urlsplit(body["url"]).path.endswith(MediaVariant.objects.get().storage_key)
    redirect = content(alice.client, photo["id"], width=64, format="png")
    assert redirect.status_code == 302 and MediaVariant.objects.get().storage_key in redirect["Location"]


# -- access rules ----------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/media/{id}/content", "/v1/media/{id}/presign", "/v1/media/{id}"])
def test_the_owner_and_an_admin_get_variants(alice, carol, photo, path, proxied):
    for actor in (alice, carol):
        assert actor.client.get(f"{path.format(id=photo['id'])}?width=64").status_code == 200


@pytest.mark.parametrize("path", ["/v1/media/{id}/content", "/v1/media/{id}/presign", "/v1/media/{id}"])
@pytest.mark.parametrize("who", ["bob", "charlie"])
def test_another_member_or_organization_gets_404_and_nothing_is_rendered(request, photo, path, who):
    actor = request.getfixturevalue(who)
    response = actor.client.get(f"{path.format(id=photo['id'])}?width=64")
    assert error_of(response, 404)["code"] == "media_not_found"
    assert MediaVariant.objects.count() == 0


def test_no_credentials_get_no_variant_of_a_private_file(anon, photo):
    assert error_of(content(anon, photo["id"], width=64), 404)["code"] == "media_not_found"
    assert error_of(anon.get(f"/v1/media/{photo['id']}/presign?width=64"), 401)["code"] == "not_authenticated"
    assert MediaVariant.objects.count() == 0


def test_another_organization_cannot_resolve_variants(charlie, photo):
    response = charlie.client.post("/v1/media/resolve?width=64", {"ids": [photo["id"]]}, format="json")
    assert response.json() == {"media": [], "not_found": [photo["id"]]}


# -- safe and bounded ------------------------------------------------------------------------
def test_a_decompression_bomb_is_refused_before_decoding(alice, post_file, settings, monkeypatch, proxied):
    settings.MEDIA_TRANSFORM_MAX_PIXELS = 100 * 100
    media = post_file(alice, image_bytes(300, 200), name="big.png").json()
    monkeypatch.setattr(derivatives, "render_variant", lambda *a: pytest.fail("decoded"))
    response = content(alice.client, media["id"], width=64)
    assert error_of(response, 413)["code"] == "image_too_large"
    assert MediaVariant.objects.count() == 0


def test_a_bomb_without_dimensions_on_its_row_is_measured_from_its_header(alice, post_file, monkeypatch, proxied):
    media = post_file(alice, image_bytes(300, 200), name="big.png").json()
    # A header claiming 60000x60000 (3.6 gigapixels) in front of a tiny file.
    MediaFile.objects.filter(pk=media["id"]).update(width=None, height=None)
    from storage_app.backends import get_store

    row = MediaFile.objects.get(pk=media["id"])
    data = bytearray(get_store().read_bytes(row.storage_key))
    data[16:24] = (60000).to_bytes(4, "big") * 2
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # a valid IHDR: only its claim is huge
    get_store().save_stream(row.storage_key, io.BytesIO(bytes(data)), max_bytes=len(data), replacing=True)
    monkeypatch.setattr(derivatives, "render_variant", lambda *a: pytest.fail("decoded"))
    assert error_of(content(alice.client, media["id"], width=64), 413)["code"] == "image_too_large"


def test_exif_orientation_is_applied_and_metadata_stripped(alice, post_file, proxied):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    exif[0x010F] = "SecretCam"
    media = post_file(alice, image_bytes(200, 100, "JPEG", exif=exif.tobytes()), name="phone.jpg").json()
    image = decoded(body_of(content(alice.client, media["id"], width=64, format="jpeg")))
    assert image.size == (64, 128)  # portrait, as displayed: width 64
    assert not image.getexif() and "exif" not in image.info


def test_an_animation_gives_its_first_frame(alice, post_file, proxied):
    frames = [Image.new("RGB", (80, 80), color) for color in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    media = post_file(alice, buffer.getvalue(), name="anim.gif").json()
    image = decoded(body_of(content(alice.client, media["id"], width=64, format="webp")))
    assert getattr(image, "n_frames", 1) == 1
    red, green, blue = image.convert("RGB").getpixel((32, 32))
    assert red > 200 and blue < 50


def test_renders_beyond_the_concurrency_limit_wait_for_a_slot(settings):
    settings.MEDIA_TRANSFORM_CONCURRENCY = 1
    held = threading.Event()
    release = threading.Event()
    entered: list[str] = []

    def worker(name: str) -> None:
        with derivatives.render_slot():
            entered.append(name)
            held.set()
            release.wait(5)

    first = threading.Thread(target=worker, args=("first",))
    first.start()
    held.wait(5)
    second = threading.Thread(target=worker, args=("second",))
    second.start()
    second.join(0.3)
    assert entered == ["first"]  # the second waits while the first holds the only slot
    release.set()
    first.join(5)
    second.join(5)
    assert entered == ["first", "second"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_requests_render_once(requires_postgres, alice, post_file, monkeypatch):
    media_id = post_file(alice, image_bytes(300, 200), name="p.png").json()["id"]
    real_render, renders, errors, keys = derivatives.render_variant, [], [], []
    barrier = threading.Barrier(4)

    def slow_render(source, transform):  # noqa: ANN001, ANN202
        renders.append(transform.name)
        threading.Event().wait(0.3)  # every other request finds the claim meanwhile
        return real_render(source, transform)

    def request() -> None:
        try:
            barrier.wait(timeout=5)
            media = MediaFile.objects.get(pk=media_id)
            keys.append(derivatives.media_variant_get(media=media, transform=transform_parse({"width": "64"})))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    monkeypatch.setattr(derivatives, "render_variant", slow_render)
    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert renders == ["w64_h0_inside_q80_webp"] and len({variant.storage_key for variant in keys}) == 1
    assert list(MediaVariant.objects.values_list("status", flat=True)) == ["ready"]


# -- lifecycle and usage ---------------------------------------------------------------------
def test_purge_removes_the_variants_with_their_original(alice, photo, proxied, store_keys):
    content(alice.client, photo["id"], width=64, format="png")
    content(alice.client, photo["id"], width=128, format="webp")
    assert len(store_keys(f"organizations/{alice.organization.pk}/variants/")) == 2
    alice.client.delete(f"/v1/media/{photo['id']}")
    assert purge_media(grace=0).purged == 1
    assert store_keys(f"organizations/{alice.organization.pk}/variants/") == []
    assert MediaVariant.objects.count() == 0


def test_purge_keeps_variants_another_file_of_the_same_bytes_still_uses(alice, bob, post_file, proxied, store_keys):
    data = image_bytes(120, 80)
    mine, bobs = (post_file(actor, data, name="same.png").json() for actor in (alice, bob))
    content(alice.client, mine["id"], width=64, format="png")
    alice.client.delete(f"/v1/media/{mine['id']}")
    purge_media(grace=0)
    assert MediaVariant.objects.count() == 1
    assert content(bob.client, bobs["id"], width=64, format="png").status_code == 200


def test_reconcile_keeps_variants_and_reports_an_orphan(alice, photo, proxied, store_keys):
    from storage_app.backends import get_store

    content(alice.client, photo["id"], width=64, format="png")
    orphan = f"organizations/{alice.organization.pk}/variants/{'0' * 64}/w64_h0_inside_q0_png.png"
    get_store().save_stream(orphan, io.BytesIO(image_bytes(4, 4)), max_bytes=1000)
    result = reconcile_storage(grace=0, fix=True)
    assert result.stray_keys == [orphan]
    assert store_keys(f"organizations/{alice.organization.pk}/variants/") == [MediaVariant.objects.get().storage_key]


def test_usage_reports_variant_bytes_apart_from_files(alice, photo, proxied):
    before = alice.client.get("/api/v1/storage/usage").json()
    body = body_of(content(alice.client, photo["id"], width=64, format="png"))
    after = alice.client.get("/api/v1/storage/usage").json()
    assert (before["variant_bytes"], after["variant_bytes"]) == (0, len(body))
    assert after["variant_count"] == 1
    assert (after["file_count"], after["used_bytes"]) == (before["file_count"], before["used_bytes"])
