"""Every way in: multipart, data URL, presigned (seed 004 and seed 000), with dedup."""
import io

import pytest
from django.db.models import F
import requests

from media_app.models import MediaFile
from quotas.models import Quota
from storage_app.backends import get_store
from tests.factories import png_bytes, unique_png
from tests.media_app.conftest import body_of, data_url, error_of


def counters(org):
    quota = Quota.objects.get(organization=org)
    return quota.used_bytes, quota.reserved_bytes, quota.file_count


def test_multipart_upload_answers_the_whole_media_object(alice, post_file):
    data = png_bytes(64, 32, noise=8)
    response = post_file(alice, data, model="stability/sdxl", provider="stability", prompt="a cat",
                         generation='{"seed": 42}', visibility="public")
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("med_") and len(body["id"]) == 30
    assert body["mime"] == "image/png" and body["bytes"] == len(data) and body["deduped"] is False
    assert (body["width"], body["height"], body["dimensions"], body["media"]) == (64, 32, "64x32", "image")
    assert (body["model"], body["provider"], body["prompt"], body["generation"]) == (
        "stability/sdxl", "stability", "a cat", {"seed": 42})
    assert body["visibility"] == "public" and body["category"] == "general"
    assert body["presigned_url"] and body["expires_at"] and body["retain_until"] and body["created_at"]
    assert body["url"].endswith(f"/v1/media/{body['id']}/content")
    assert len(body["sha256"]) == 64
    assert counters(alice.organization) == (len(data), 0, 1)


def test_the_same_content_twice_answers_the_same_id_and_stores_nothing(alice, post_file, store_keys):
    data = unique_png()
    first = post_file(alice, data).json()
    second = post_file(alice, data, name="again.png")
    assert second.status_code == 200
    assert second.json()["id"] == first["id"] and second.json()["deduped"] is True
    assert len(store_keys("organizations/")) == 1
    assert counters(alice.organization)[2] == 1


def test_dedup_is_scoped_to_the_owner_by_default(alice, bob, post_file):
    data = unique_png()
    assert post_file(alice, data).json()["id"] != post_file(bob, data).json()["id"]


def test_dedup_can_be_organization_wide_or_off(alice, bob, post_file, settings):
    data = unique_png()
    settings.MEDIA_DEDUP_SCOPE = "organization"
    first = post_file(alice, data).json()
    assert post_file(bob, data).json()["id"] != first["id"]  # bob's own alias: see test_dedup_scope
    assert MediaFile.objects.get(owner=bob.user).duplicate_of_id == first["id"]
    settings.MEDIA_DEDUP_SCOPE = "off"
    assert post_file(alice, data).json()["id"] != first["id"]


def test_data_url_upload(alice):
    data = unique_png()
    response = alice.client.post("/v1/media", {"source": {"type": "data_url", "data_url": data_url(data)}},
                                 format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["mime"] == "image/png" and body["bytes"] == len(data) and body["deduped"] is False
    assert MediaFile.objects.get(pk=body["id"]).source == "data_url"


@pytest.mark.parametrize("value,status,code", [
    ("data:image/png,notbase64", 400, "data_url_not_base64"),
    ("https://example.com/x.png", 400, "invalid_data_url"),
    ("data:image/png;base64,!!!!", 400, "invalid_data_url"),
    ("data:image/png;base64,abcde", 400, "invalid_data_url"),
    ("data:image/png;base64,ab==abcd", 400, "invalid_data_url"),
])
def test_bad_data_urls(alice, value, status, code):
    response = alice.client.post("/v1/media", {"source": {"type": "data_url", "data_url": value}}, format="json")
    assert error_of(response, status)["code"] == code
    assert not MediaFile.objects.exists()


def test_a_data_url_over_the_limit_is_refused_before_decoding(alice, settings, monkeypatch):
    import base64 as b64

    settings.MEDIA_MAX_BYTES = 1000
    monkeypatch.setattr(b64, "b64decode", lambda *a, **k: pytest.fail("decoded"))
    response = alice.client.post("/v1/media", {"source": {"type": "data_url", "data_url": data_url(b"x" * 2000)}},
                                 format="json")
    assert error_of(response, 413)["code"] == "max_size_exceeded"


def test_an_executable_declared_as_png_is_refused(alice):
    elf = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 200
    response = alice.client.post("/v1/media", {"source": {"type": "data_url", "data_url": data_url(elf)}},
                                 format="json")
    assert error_of(response, 415)["code"] == "unsupported_media_type"
    assert not MediaFile.objects.exists()


def test_png_bytes_declared_as_jpeg_are_stored_as_png(alice):
    response = alice.client.post(
        "/v1/media", {"source": {"type": "data_url", "data_url": data_url(unique_png(), "image/jpeg")}},
        format="json")
    assert response.status_code == 200 and response.json()["mime"] == "image/png"


def test_a_decompression_bomb_is_a_400(alice, post_file, store_keys):
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    bomb = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    bomb += b"\x00" * 100
    error = error_of(post_file(alice, bomb, name="bomb.png"), 400)
    assert error["code"] == "image_too_large"
    assert not MediaFile.objects.exists() and store_keys("organizations/") == []
    assert counters(alice.organization) == (0, 0, 0)


def test_user_id_with_a_user_key_is_403(alice, bob, post_file):
    assert error_of(post_file(alice, user_id="bob"), 403)["code"] == "user_id_not_allowed"


def test_a_user_key_may_name_itself(alice, post_file):
    assert post_file(alice, user_id="alice").status_code == 201


def test_a_service_key_stores_for_the_named_user(acme_service, bob):
    response = acme_service.client.post(
        "/v1/media", {"source": {"type": "data_url", "data_url": data_url(unique_png())}, "user_id": "bob"},
        format="json")
    assert response.status_code == 200
    assert MediaFile.objects.get(pk=response.json()["id"]).owner == bob.user


def test_a_service_key_cannot_name_a_user_of_another_organization(acme_service, charlie):
    response = acme_service.client.post(
        "/v1/media", {"source": {"type": "data_url", "data_url": data_url(unique_png())}, "user_id": "charlie"},
        format="json")
    assert response.status_code == 404


def test_uploads_need_credentials(anon, db):
    assert anon.post("/v1/media", {}, format="json").status_code == 401
    assert anon.post("/v1/media/upload", {}, format="multipart").status_code == 401
    assert anon.post("/v1/media/prepare-upload", {}, format="json").status_code == 401


# -- presigned uploads ----------------------------------------------------------------------
def put_to(client, url: str, data: bytes, content_type: str):
    if url.startswith("http://testserver"):
        return client.put(url.removeprefix("http://testserver"), data=data, content_type=content_type)
    return requests.put(url, data=data, headers={"Content-Type": content_type}, timeout=10)


def put_status(url: str) -> int:
    """The app answers its own upload URLs with 204; S3 answers a presigned PUT with 200."""
    return 204 if url.startswith("http://testserver") else 200


def test_seed_004_prepare_upload_then_presign(alice, client):
    data = unique_png()
    prepared = alice.client.post("/v1/media/prepare-upload", {"content_type": "image/png", "bytes": len(data)},
                                 format="json")
    assert prepared.status_code == 200
    body = prepared.json()
    assert body["jan_id"] == body["id"] and body["presigned_url"] and body["presigned_post"]["url"]
    assert body["presigned_post"]["fields"] and body["expires_at"]
    assert counters(alice.organization) == (0, len(data), 0)
    assert put_to(client, body["presigned_url"], data, "image/png").status_code == put_status(body["presigned_url"])
    presign = alice.client.get(f"/v1/media/{body['id']}/presign")  # completes it: seed 004 has no PUT step
    assert presign.status_code == 200
    assert presign.json()["id"] == body["id"] and presign.json()["expires_in"] > 0
    assert counters(alice.organization) == (len(data), 0, 1)


def test_seed_000_three_step_upload(alice, client):
    data = unique_png()
    step1 = alice.client.post("/v1/media/upload", {"name": "example.png", "mime": "image/png"}, format="json")
    assert step1.status_code == 201
    result = step1.json()["result"]
    assert put_to(client, result["url"], data, "image/png").status_code == put_status(result["url"])
    step3 = alice.client.put(f"/v1/media/{result['id']}")
    assert step3.status_code == 200
    done = step3.json()["result"]
    assert done["id"] == result["id"] and done["status"] == "active" and done["mime"] == "image/png"
    assert done["original_name"] == "example.png" and done["bytes"] == len(data)
    assert alice.client.put(f"/v1/media/{result['id']}").json()["id"] == result["id"]  # idempotent
    assert counters(alice.organization) == (len(data), 0, 1)


def test_completion_before_any_upload_is_409(alice):
    prepared = alice.client.post("/v1/media/prepare-upload", {"content_type": "image/png"}, format="json").json()
    assert error_of(alice.client.put(f"/v1/media/{prepared['id']}"), 409)["code"] == "upload_incomplete"
    assert error_of(alice.client.get(f"/v1/media/{prepared['id']}/presign"), 409)["code"] == "upload_incomplete"
    assert alice.client.get(f"/v1/media/{prepared['id']}").json()["status"] == "pending"


def test_more_bytes_than_reserved_is_413_at_completion(alice, store_keys):
    prepared = alice.client.post("/v1/media/prepare-upload", {"content_type": "image/png", "bytes": 50},
                                 format="json").json()
    key = MediaFile.objects.get(pk=prepared["id"]).storage_key
    # S3 (and moto) may take more than the URL allowed; write the object as such a client would.
    get_store().save_stream(key, io.BytesIO(unique_png() + b"\0" * 100), max_bytes=10**6)
    assert error_of(alice.client.put(f"/v1/media/{prepared['id']}"), 413)["code"] == "max_size_exceeded"
    assert store_keys("organizations/") == []
    assert not MediaFile.objects.filter(pk=prepared["id"]).exists()
    assert counters(alice.organization) == (0, 0, 0)


def test_the_local_signed_put_refuses_more_than_reserved(alice, client, backend):
    if backend == "s3":  # the other backends hand out app-signed URLs
        pytest.skip("S3 enforces this with the signed Content-Length; moto does not check it")
    prepared = alice.client.post("/v1/media/prepare-upload", {"content_type": "image/png", "bytes": 50},
                                 format="json").json()
    response = put_to(client, prepared["presigned_url"], unique_png() + b"\0" * 100, "image/png")
    assert response.status_code == 413


def test_a_completed_upload_whose_content_contradicts_its_type_is_refused(alice, client, store_keys):
    prepared = alice.client.post("/v1/media/prepare-upload", {"content_type": "image/png"}, format="json").json()
    key = MediaFile.objects.get(pk=prepared["id"]).storage_key
    get_store().save_stream(key, io.BytesIO(b"\x7fELF\x02\x01\x01\x00" + b"\0" * 64), max_bytes=10**6)
    assert error_of(alice.client.put(f"/v1/media/{prepared['id']}"), 415)["code"] in (
        "content_type_mismatch", "unsupported_media_type")
    assert store_keys("organizations/") == [] and counters(alice.organization) == (0, 0, 0)


def test_a_presigned_duplicate_becomes_an_alias(alice, post_file, client, store_keys):
    data = unique_png()
    original = post_file(alice, data).json()
    prepared = alice.client.post("/v1/media/prepare-upload", {"content_type": "image/png", "bytes": len(data)},
                                 format="json").json()
    put_to(client, prepared["presigned_url"], data, "image/png")
    alias = alice.client.put(f"/v1/media/{prepared['id']}").json()
    assert alias["id"] == prepared["id"] and alias["duplicate_of"] == original["id"]
    assert len(store_keys("organizations/")) == 1
    resolved = alice.client.post("/v1/media/resolve", {"ids": [original["id"], alias["id"]]}, format="json").json()
    assert [m["id"] for m in resolved["media"]] == [original["id"], alias["id"]]
    content = alice.client.get(f"/v1/media/{alias['id']}/content")
    if content.status_code == 302:
        content = requests.get(content["Location"], timeout=10)
        assert content.content == data
    else:
        assert body_of(content) == data


def test_prepare_refuses_a_declared_size_over_the_limit(alice, settings):
    settings.MEDIA_MAX_BYTES = 100
    error = error_of(alice.client.post("/v1/media/prepare-upload", {"content_type": "image/png", "bytes": 101},
                                       format="json"), 413)
    assert error["code"] == "max_size_exceeded"


def test_prepare_refuses_a_declared_size_over_the_quota(alice):
    Quota.objects.filter(organization=alice.organization).update(limit_override_bytes=100)
    error = error_of(alice.client.post("/v1/media/prepare-upload", {"content_type": "image/png", "bytes": 101},
                                       format="json"), 413)
    assert error["code"] == "quota_exceeded"


@pytest.mark.parametrize("body,param", [
    ({"content_type": "text/html"}, "content_type"),
    ({"content_type": "application/x-executable"}, "content_type"),
    ({"content_type": "image/jpeg", "category": "data_source"}, "content_type"),
])
def test_prepare_refuses_a_type_that_completion_would_refuse(alice, body, param):
    error = error_of(alice.client.post("/v1/media/prepare-upload", body, format="json"), 415)
    assert (error["code"], error["param"]) == ("unsupported_media_type", param)
    assert not MediaFile.objects.exists() and counters(alice.organization) == (0, 0, 0)


def test_the_three_step_upload_refuses_html_at_step_one(alice):
    error = error_of(alice.client.post("/v1/media/upload", {"name": "x.html", "mime": "text/html"}, format="json"), 415)
    assert (error["code"], error["param"]) == ("unsupported_media_type", "mime")


@pytest.mark.parametrize("content_type", ["application/octet-stream", "image/*", "text/csv; charset=utf-8"])
def test_prepare_still_takes_generic_and_allowed_types(alice, content_type):
    assert alice.client.post("/v1/media/prepare-upload", {"content_type": content_type},
                             format="json").status_code == 200


def test_a_multipart_upload_reads_the_quota_once_and_a_full_quota_still_refuses_it(alice, post_file):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert post_file(alice).status_code == 201
    quota_reads = [q["sql"] for q in queries.captured_queries
                   if q["sql"].startswith("SELECT") and '"quotas_quota"' in q["sql"]]
    assert len(quota_reads) == 1  # the early check of the declared body; the reservation is an UPDATE
    used, _, files = counters(alice.organization)
    Quota.objects.filter(organization=alice.organization).update(limit_override_bytes=used + 10)
    assert error_of(post_file(alice), 413)["code"] == "quota_exceeded"
    assert counters(alice.organization) == (used, 0, files) and MediaFile.objects.filter(status="pending").count() == 0


def _quota_updates(queries) -> int:
    return sum(1 for q in queries if q["sql"].lstrip().upper().startswith("UPDATE") and "quotas_quota" in q["sql"])


@pytest.mark.parametrize("small", [True, False])
def test_a_small_upload_updates_the_quota_row_once_a_larger_one_reserves_first(alice, post_file, monkeypatch, small):
    """A body of known length up to UNRESERVED_MAX_BYTES is charged at activation only (one update of the
    organization's quota row, in one transaction); a larger one reserves before its bytes arrive."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from media_app import services

    if not small:
        monkeypatch.setattr(services, "UNRESERVED_MAX_BYTES", 0)  # so the small test body counts as large
    data = unique_png()
    with CaptureQueriesContext(connection) as queries:
        response = post_file(alice, data)
    assert response.status_code == 201, response.content
    assert _quota_updates(queries.captured_queries) == (1 if small else 2)
    assert counters(alice.organization) == (len(data), 0, 1)


def test_a_small_upload_the_charge_refuses_is_undone_and_answers_quota_exceeded(alice, post_file, store_keys,
                                                                               monkeypatch):
    """Another upload takes the last bytes while this one's body is stored: nothing was reserved, so the
    charge at activation refuses it; its object and pending row go, and the counters stay as they were."""
    from media_app import storing

    find_duplicate = storing.find_duplicate

    def a_concurrent_upload_fills_the_quota(**kwargs):
        Quota.objects.filter(organization=alice.organization).update(used_bytes=F("used_bytes") + 10**9)
        return find_duplicate(**kwargs)

    Quota.objects.filter(organization=alice.organization).update(limit_override_bytes=10**9)
    monkeypatch.setattr(storing, "find_duplicate", a_concurrent_upload_fills_the_quota)
    assert error_of(post_file(alice, unique_png()), 413)["code"] == "quota_exceeded"
    assert counters(alice.organization) == (10**9, 0, 0)
    assert not MediaFile.objects.exists() and store_keys("organizations/") == []
