"""The upload page and the API call it makes: POST /v1/media/upload with the session and the CSRF header."""
from __future__ import annotations

import hashlib
import json
import os

import pytest
import requests
from django.conf import settings

from media_app.models import MediaFile
from quotas.models import Quota
from storage_app.crypto import generate_key_string
from tests.conftest import use_local, use_s3
from tests.factories import unique_png, upload


def session_upload(client, *, csrf: bool = True, name: str = "drop.png", data: bytes | None = None):  # noqa: ANN001, ANN201
    client.get("/upload")
    headers = {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value} if csrf else {}
    return client.post("/v1/media/upload", {"file": upload(name, unique_png() if data is None else data), "prompt": "dropped"},
                       **headers)


def test_the_upload_page_names_the_endpoint_the_limit_and_carries_the_csrf_token(web, bob):
    response = web(bob).get("/upload")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-endpoint="/v1/media/upload"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert f'data-max-bytes="{min(bob.organization.plan.max_file_bytes, settings.MEDIA_MAX_BYTES)}"' in html


def test_an_anonymous_visitor_is_sent_to_sign_in(web_anon, db):
    assert web_anon.get("/upload")["Location"] == "/sign-in?next=/upload"


def test_a_session_upload_with_the_csrf_header_lands_in_the_chosen_organization(web, bob):
    response = session_upload(web(bob))
    assert response.status_code == 201, response.content
    media = MediaFile.objects.get(pk=response.json()["id"])
    assert (media.organization, media.owner, media.prompt) == (bob.organization, bob.user, "dropped")


def test_a_session_upload_without_the_csrf_header_is_refused(web, bob):
    response = session_upload(web(bob), csrf=False)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_another_organization_uploads_into_its_own(web, charlie):
    response = session_upload(web(charlie))
    assert MediaFile.objects.get(pk=response.json()["id"]).organization == charlie.organization


def test_a_refusal_carries_the_code_the_page_turns_into_a_sentence(web, alice):
    response = session_upload(web(alice), name="empty.png", data=b"")
    assert response.status_code == 400
    code = response.json()["error"]["code"]
    assert code == "empty_file"
    from django.contrib.staticfiles import finders

    assert f"{code}:" in open(finders.find("web/app.js")).read()


# -- large files straight to the bucket: prepare-upload, the presigned PUT (or parts), completion
MIB = 1024 * 1024


@pytest.fixture
def s3(settings, moto_endpoint):
    use_s3(settings, moto_endpoint)
    settings.MEDIA_ENCRYPTION = "none"


def csrf(client) -> dict:  # noqa: ANN001
    client.get("/upload")
    return {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}


def session_json(client, method: str, path: str, body: dict | None = None, **headers):  # noqa: ANN001, ANN003, ANN201
    return getattr(client, method)(path, json.dumps(body or {}), content_type="application/json", **headers)


def test_on_local_storage_every_file_goes_through_the_api(web, bob, settings, tmp_path):
    use_local(settings, tmp_path)
    html = web(bob).get("/upload").content.decode()
    assert "data-direct-min-bytes" not in html and "data-prepare-endpoint" not in html


def test_on_s3_large_files_go_straight_to_the_bucket_from_the_configured_sizes(web, bob, s3, settings):
    settings.WEB_DIRECT_UPLOAD_MIN_BYTES, settings.WEB_MULTIPART_MIN_BYTES = 3 * MIB, 50 * MIB
    html = web(bob).get("/upload").content.decode()
    assert 'data-prepare-endpoint="/v1/media/prepare-upload"' in html
    assert f'data-direct-min-bytes="{3 * MIB}"' in html and f'data-multipart-min-bytes="{50 * MIB}"' in html


def test_on_s3_with_app_encryption_the_bytes_pass_through_the_server(web, bob, s3, settings):
    settings.MEDIA_ENCRYPTION = "app"
    settings.MEDIA_MASTER_KEYS = generate_key_string("k1")
    assert "data-direct-min-bytes" not in web(bob).get("/upload").content.decode()


def test_a_session_prepares_puts_to_the_bucket_and_completes(web, bob, s3):
    client = web(bob)
    headers = csrf(client)
    data = unique_png()
    prepared = session_json(client, "post", "/v1/media/prepare-upload",
                            {"filename": "big.png", "content_type": "image/png", "bytes": len(data),
                             "prompt": "straight to the bucket"}, **headers)
    assert prepared.status_code == 200, prepared.content
    body = prepared.json()
    assert body["upload_url"].startswith(settings.MEDIA_S3_ENDPOINT)  # the bucket, not this server
    assert requests.put(body["upload_url"], data=data, headers=body["headers"], timeout=30).status_code == 200
    completed = session_json(client, "put", f"/v1/media/{body['id']}", **headers)
    assert completed.status_code == 200, completed.content
    assert (completed.json()["status"], completed.json()["sha256"]) == ("active", hashlib.sha256(data).hexdigest())
    media = MediaFile.objects.get(pk=body["id"])
    assert (media.organization, media.owner, media.original_name, media.prompt) == (
        bob.organization, bob.user, "big.png", "straight to the bucket")


def test_a_session_sends_a_multipart_upload_in_parts_and_completes_with_their_etags(web, bob, s3):
    client = web(bob)
    headers = csrf(client)
    data = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(9 * MIB)
    prepared = session_json(client, "post", "/v1/media/prepare-upload",
                            {"filename": "clip.mp4", "content_type": "video/mp4", "bytes": len(data),
                             "multipart": True}, **headers)
    assert prepared.status_code == 201, prepared.content
    multipart = prepared.json()["multipart"]
    parts = []
    for part in multipart["parts"]:
        start = (part["part_number"] - 1) * multipart["part_size"]
        answer = requests.put(part["url"], data=data[start:start + multipart["part_size"]], timeout=60)
        parts.append({"part_number": part["part_number"], "etag": answer.headers["ETag"]})
    assert len(parts) == 2
    completed = session_json(client, "put", f"/v1/media/{prepared.json()['id']}", {"parts": parts}, **headers)
    assert completed.status_code == 200, completed.content
    assert completed.json()["bytes"] == len(data)


def test_the_prepare_and_completion_calls_need_the_csrf_header(web, bob, s3):
    client = web(bob)
    headers = csrf(client)
    refused = session_json(client, "post", "/v1/media/prepare-upload", {"content_type": "image/png", "bytes": 10})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "permission_denied")
    body = session_json(client, "post", "/v1/media/prepare-upload", {"content_type": "image/png", "bytes": 10},
                        **headers).json()
    refused = session_json(client, "put", f"/v1/media/{body['id']}")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "permission_denied")


def test_an_upload_the_bucket_refused_is_abandoned_and_its_reservation_released(web, bob, s3):
    client = web(bob)
    headers = csrf(client)
    body = session_json(client, "post", "/v1/media/prepare-upload", {"content_type": "image/png", "bytes": 5000},
                        **headers).json()
    assert Quota.objects.get(organization=bob.organization).reserved_bytes == 5000
    assert client.delete(f"/v1/media/{body['id']}", **headers).status_code == 200
    assert Quota.objects.get(organization=bob.organization).reserved_bytes == 0


def test_another_member_another_organization_or_nobody_cannot_complete_someone_s_upload(
        web, web_anon, alice, bob, charlie, s3):
    client = web(alice)
    body = session_json(client, "post", "/v1/media/prepare-upload", {"content_type": "image/png", "bytes": 10},
                        **csrf(client)).json()
    for other in (bob, charlie):
        other_client = web(other)
        answer = session_json(other_client, "put", f"/v1/media/{body['id']}", **csrf(other_client))
        assert (answer.status_code, answer.json()["error"]["code"]) == (404, "media_not_found")
    web_anon.get("/sign-in")  # a CSRF cookie, and no session
    answer = session_json(web_anon, "put", f"/v1/media/{body['id']}",
                          HTTP_X_CSRFTOKEN=web_anon.cookies["csrftoken"].value)
    assert (answer.status_code, answer.json()["error"]["code"]) == (401, "not_authenticated")
    assert MediaFile.objects.get(pk=body["id"]).status == MediaFile.Status.PENDING


def test_a_prepare_over_the_quota_answers_the_code_the_page_turns_into_a_sentence(web, bob, s3):
    Quota.objects.filter(organization=bob.organization).update(limit_override_bytes=1000)
    client = web(bob)
    refused = session_json(client, "post", "/v1/media/prepare-upload", {"content_type": "image/png", "bytes": 5000},
                           **csrf(client))
    assert (refused.status_code, refused.json()["error"]["code"]) == (413, "quota_exceeded")
    from django.contrib.staticfiles import finders

    assert "quota_exceeded:" in open(finders.find("web/app.js")).read()


def test_a_prepare_over_the_plan_s_file_size_or_of_a_refused_type_answers_codes_the_page_words(web, bob, s3):
    client = web(bob)
    headers = csrf(client)
    too_big = session_json(client, "post", "/v1/media/prepare-upload",
                           {"content_type": "image/png", "bytes": bob.organization.plan.max_file_bytes + 1}, **headers)
    assert (too_big.status_code, too_big.json()["error"]["code"]) == (413, "max_size_exceeded")
    refused = session_json(client, "post", "/v1/media/prepare-upload",
                           {"content_type": "application/x-msdownload", "bytes": 100}, **headers)
    assert refused.status_code == 415, refused.content
    from django.contrib.staticfiles import finders

    script = open(finders.find("web/app.js")).read()
    assert "max_size_exceeded:" in script and f"{refused.json()['error']['code']}:" in script
