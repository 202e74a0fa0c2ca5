"""Resumable uploads (tus 1.0.0) at /v1/uploads/, spoken with the Django test client."""
import base64
import hashlib
import os
from datetime import timedelta

import pytest
from django.utils import timezone

from media_app import lifecycle
from media_app.models import MediaFile, ResumableUpload
from quotas.models import Quota
from storage_app.backends import get_store
from storage_app.crypto import generate_key_string
from tests.factories import png_bytes, unique_png
from tests.media_app.conftest import error_of

TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}
OCTETS = "application/offset+octet-stream"


def metadata(**fields: str) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in fields.items())


def create(actor, length: int, body: bytes = b"", **fields):
    headers = {**TUS, "HTTP_UPLOAD_LENGTH": str(length), "HTTP_UPLOAD_METADATA": metadata(**fields)}
    if body:
        return actor.client.post("/v1/uploads/", data=body, content_type=OCTETS, **headers)
    return actor.client.post("/v1/uploads/", **headers)


def location(response) -> str:
    assert response.status_code == 201, response.content[:300]
    return response["Location"].split("testserver", 1)[1]


def patch(actor, url: str, offset: int, data: bytes, **headers):
    return actor.client.patch(url, data=data, content_type=OCTETS, HTTP_UPLOAD_OFFSET=str(offset), **TUS, **headers)


def reserved(org) -> int:
    return Quota.objects.get(organization=org).reserved_bytes


def big_png(size: int) -> bytes:
    """A PNG header followed by noise: sniffed as PNG, `size` bytes long."""
    head = png_bytes(4, 4)
    return head + os.urandom(size - len(head))


@pytest.fixture(params=["none", "app"])
def encryption(request, settings):
    settings.MEDIA_ENCRYPTION = request.param
    settings.MEDIA_MASTER_KEYS = generate_key_string("k1") if request.param == "app" else ""
    return request.param


def test_options_announces_the_version_extensions_limit_and_checksums(alice):
    response = alice.client.options("/v1/uploads/")
    assert response.status_code == 204
    assert response["Tus-Version"] == "1.0.0" and response["Tus-Resumable"] == "1.0.0"
    assert response["Tus-Extension"] == "creation,creation-with-upload,termination,expiration,checksum"
    assert "sha256" in response["Tus-Checksum-Algorithm"].split(",")
    assert int(response["Tus-Max-Size"]) == alice.organization.plan.max_file_bytes


def test_a_file_uploaded_in_three_patches_becomes_a_media_file(alice, encryption):
    data = big_png(300_000)
    url = location(create(alice, len(data), filename="clip.png", content_type="image/png", model="veo",
                          provider="google", prompt="a cat", visibility="public"))
    assert reserved(alice.organization) == len(data)
    head = alice.client.head(url, **TUS)
    assert (head.status_code, head["Upload-Offset"], head["Upload-Length"]) == (200, "0", str(len(data)))
    for start, end in [(0, 100_000), (100_000, 250_000), (250_000, 300_000)]:
        response = patch(alice, url, start, data[start:end])
        assert response.status_code == 204 and response["Upload-Offset"] == str(end)
    media_id = response["Mediastore-Media-Id"]
    body = alice.client.get(f"/v1/media/{media_id}").json()
    assert (body["bytes"], body["sha256"], body["mime"]) == (len(data), hashlib.sha256(data).hexdigest(), "image/png")
    assert (body["model"], body["provider"], body["prompt"], body["visibility"]) == ("veo", "google", "a cat", "public")
    media = MediaFile.objects.get(pk=media_id)
    assert get_store().read_bytes(media.storage_key, encrypted=encryption == "app") == data
    assert media.encryption == encryption
    assert reserved(alice.organization) == 0
    assert Quota.objects.get(organization=alice.organization).used_bytes == len(data)


def test_creation_with_upload_stores_the_first_bytes_at_once(alice):
    data = unique_png()
    response = create(alice, len(data), body=data, filename="a.png")
    assert response["Upload-Offset"] == str(len(data))
    assert MediaFile.objects.get(pk=response["Mediastore-Media-Id"]).status == "active"


def test_a_wrong_offset_is_409(alice):
    url = location(create(alice, 1000))
    assert error_of(patch(alice, url, 10, b"x" * 10), 409)["code"] == "offset_mismatch"


def test_a_checksum_mismatch_is_460_and_stores_nothing(alice):
    data = big_png(50_000)
    url = location(create(alice, len(data)))
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    response = patch(alice, url, 0, data[:20_000], HTTP_UPLOAD_CHECKSUM=f"sha256 {wrong}")
    assert error_of(response, 460)["code"] == "checksum_mismatch"
    assert alice.client.head(url, **TUS)["Upload-Offset"] == "0"
    right = base64.b64encode(hashlib.sha256(data).digest()).decode()
    response = patch(alice, url, 0, data, HTTP_UPLOAD_CHECKSUM=f"sha256 {right}")
    assert response.status_code == 204 and response["Mediastore-Media-Id"]


def test_an_unknown_checksum_algorithm_is_refused(alice):
    url = location(create(alice, 10))
    response = patch(alice, url, 0, b"x" * 10, HTTP_UPLOAD_CHECKSUM="crc32 AAAA")
    assert error_of(response, 400)["code"] == "checksum_algorithm_not_supported"


def test_termination_ends_the_upload_and_releases_its_reservation(alice):
    data = big_png(100_000)
    url = location(create(alice, len(data)))
    patch(alice, url, 0, data[:40_000])
    assert alice.client.delete(url, **TUS).status_code == 204
    assert alice.client.head(url, **TUS).status_code == 404
    assert error_of(patch(alice, url, 40_000, data[40_000:]), 404)["code"] == "upload_not_found"
    assert reserved(alice.organization) == 0
    assert not MediaFile.objects.filter(organization=alice.organization).exists()


def test_an_expired_upload_is_410(alice):
    url = location(create(alice, 1000))
    ResumableUpload.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert alice.client.head(url, **TUS).status_code == 410
    assert error_of(patch(alice, url, 0, b"x"), 410)["code"] == "upload_expired"


def test_only_the_uploader_may_patch_head_or_delete(alice, bob, carol, charlie):
    url = location(create(alice, 1000))
    for other in (bob, carol, charlie):
        assert other.client.head(url, **TUS).status_code == 404
        assert error_of(patch(other, url, 0, b"x"), 404)["code"] == "upload_not_found"
        assert error_of(other.client.delete(url, **TUS), 404)["code"] == "upload_not_found"


def test_anonymous_callers_are_401(anon):
    response = anon.post("/v1/uploads/", HTTP_UPLOAD_LENGTH="10", **TUS)
    assert error_of(response, 401)["code"] == "not_authenticated"


def test_a_deferred_length_is_refused(alice):
    response = alice.client.post("/v1/uploads/", HTTP_UPLOAD_DEFER_LENGTH="1", **TUS)
    assert error_of(response, 400)["code"] == "deferred_length_not_supported"


def test_a_missing_tus_version_is_412(alice):
    response = alice.client.post("/v1/uploads/", HTTP_UPLOAD_LENGTH="10")
    assert error_of(response, 412)["code"] == "tus_version_not_supported"
    assert response["Tus-Version"] == "1.0.0"


def test_a_length_over_the_quota_is_refused_at_creation(alice):
    Quota.objects.filter(organization=alice.organization).update(limit_override_bytes=1000)
    assert error_of(create(alice, 2000), 413)["code"] == "quota_exceeded"


def test_a_length_over_the_plan_limit_is_refused_but_not_one_over_media_max_bytes(alice, settings):
    settings.MEDIA_MAX_BYTES = 1000
    assert create(alice, 5000).status_code == 201
    too_big = alice.organization.plan.max_file_bytes + 1
    assert error_of(create(alice, too_big), 413)["code"] == "max_size_exceeded"


def test_a_refused_type_is_refused_with_its_first_bytes(alice):
    data = b"MZ" + b"\0" * 20_000  # a Windows executable
    url = location(create(alice, len(data) * 2))
    assert error_of(patch(alice, url, 0, data), 415)["code"] == "unsupported_media_type"
    assert alice.client.head(url, **TUS).status_code == 404
    assert reserved(alice.organization) == 0


def test_a_category_refuses_the_wrong_declared_type_at_creation(alice):
    response = create(alice, 100, category="profile_image", content_type="application/pdf")
    assert error_of(response, 415)["code"] == "unsupported_media_type"


def test_a_service_key_uploads_for_a_member(acme_service, bob):
    data = unique_png()
    response = create(acme_service, len(data), body=data, user_id=bob.user.username)
    assert MediaFile.objects.get(pk=response["Mediastore-Media-Id"]).owner == bob.user


def test_a_user_key_may_not_name_another_owner(alice, bob):
    assert error_of(create(alice, 10, user_id=bob.user.username), 403)["code"] == "user_id_not_allowed"


def test_the_same_content_twice_answers_the_first_file(alice):
    data = unique_png()
    first = create(alice, len(data), body=data)["Mediastore-Media-Id"]
    assert create(alice, len(data), body=data)["Mediastore-Media-Id"] == first
    assert reserved(alice.organization) == 0


def test_the_hash_is_right_when_another_process_served_the_earlier_patches(alice):
    from media_app import resumable

    data = big_png(200_000)
    url = location(create(alice, len(data)))
    patch(alice, url, 0, data[:120_000])
    resumable._digests = resumable._Digests()  # the next PATCH lands on a process that never saw this one
    media_id = patch(alice, url, 120_000, data[120_000:])["Mediastore-Media-Id"]
    assert MediaFile.objects.get(pk=media_id).sha256 == hashlib.sha256(data).hexdigest()


def test_browsers_from_allowed_origins_get_cors_headers(alice, anon, settings):
    settings.MEDIA_CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    preflight = anon.options("/v1/uploads/", HTTP_ORIGIN="https://app.example.com",
                             HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert preflight["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Upload-Offset" in preflight["Access-Control-Allow-Headers"]
    response = alice.client.post(
        "/v1/uploads/", HTTP_UPLOAD_LENGTH="10", HTTP_ORIGIN="https://app.example.com", **TUS)
    assert "Location" in response["Access-Control-Expose-Headers"]
    assert "Upload-Offset" in response["Access-Control-Expose-Headers"]
    other = anon.options("/v1/uploads/", HTTP_ORIGIN="https://evil.example.com")
    assert "Access-Control-Allow-Origin" not in other


def test_expire_uploads_ends_abandoned_tus_uploads(alice):
    data = big_png(100_000)
    url = location(create(alice, len(data)))
    patch(alice, url, 0, data[:50_000])
    later = timezone.now() + timedelta(days=1)
    result = lifecycle.expire_uploads(now=later)
    assert result.tus_expired == 1
    assert reserved(alice.organization) == 0
    assert not MediaFile.objects.filter(status="pending").exists()
    assert list(get_store().list("")) == []
    ResumableUpload.objects.update(expires_at=later)
    assert alice.client.head(url, **TUS).status_code == 410


def test_a_body_longer_than_what_is_left_is_refused_before_it_is_read(alice):
    url = location(create(alice, 100))
    assert error_of(patch(alice, url, 0, b"x" * 101), 413)["code"] == "upload_length_exceeded"
    assert alice.client.head(url, **TUS)["Upload-Offset"] == "0"


def test_a_patch_without_the_tus_content_type_is_415(alice):
    url = location(create(alice, 10))
    response = alice.client.patch(url, data=b"x" * 10, content_type="application/octet-stream",
                                  HTTP_UPLOAD_OFFSET="0", **TUS)
    assert error_of(response, 415)["code"] == "invalid_content_type"
