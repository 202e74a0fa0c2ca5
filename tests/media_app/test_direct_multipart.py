"""Direct multipart uploads to S3: prepare-upload with "multipart": true hands out presigned part
URLs, completion joins the parts by their ETags; refused where the bytes cannot go straight to S3."""
import hashlib
import os
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from media_app import lifecycle
from media_app.models import MediaFile
from quotas.models import Quota
from storage_app.backends import get_store
from storage_app.crypto import generate_key_string
from tests.conftest import use_local, use_s3
from tests.media_app.conftest import error_of

MIB = 1024 * 1024


@pytest.fixture
def s3(settings, moto_endpoint):
    use_s3(settings, moto_endpoint)
    return get_store()


def prepare(actor, size: int, **fields):
    return actor.client.post("/v1/media/prepare-upload", {"content_type": "video/mp4", "bytes": size,
                                                          "multipart": True, "filename": "clip.mp4", **fields},
                             format="json")


def video(size: int) -> bytes:
    return b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(size - 24)


def send_parts(body: dict, data: bytes) -> list[dict]:
    size, parts = body["multipart"]["part_size"], []
    for part in body["multipart"]["parts"]:
        start = (part["part_number"] - 1) * size
        answer = requests.put(part["url"], data=data[start:start + size], timeout=60)
        assert answer.status_code == 200, answer.text
        parts.append({"part_number": part["part_number"], "etag": answer.headers["ETag"]})
    return parts


def reserved(org) -> int:
    return Quota.objects.get(organization=org).reserved_bytes


def test_a_file_sent_in_presigned_parts_becomes_a_media_file(alice, s3, settings):
    settings.MEDIA_MAX_BYTES = MIB  # the one-request cap does not apply: the bytes never pass through
    data = video(12 * MIB + 5)
    response = prepare(alice, len(data))
    assert response.status_code == 201, response.content
    body = response.json()
    assert [p["part_number"] for p in body["multipart"]["parts"]] == [1, 2]
    assert reserved(alice.organization) == len(data)
    parts = send_parts(body, data)
    completed = alice.client.put(f"/v1/media/{body['id']}", {"parts": parts}, format="json")
    assert completed.status_code == 200, completed.content
    media = completed.json()
    assert (media["status"], media["bytes"], media["mime"]) == ("active", len(data), "video/mp4")
    assert media["sha256"] == hashlib.sha256(data).hexdigest()
    assert reserved(alice.organization) == 0
    assert s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []) == []


def test_completion_without_the_parts_says_the_upload_is_incomplete(alice, s3):
    body = prepare(alice, 6 * MIB).json()
    assert error_of(alice.client.put(f"/v1/media/{body['id']}"), 409)["code"] == "upload_incomplete"


def test_wrong_etags_are_refused(alice, s3):
    data = video(6 * MIB)
    body = prepare(alice, len(data)).json()
    send_parts(body, data)
    response = alice.client.put(f"/v1/media/{body['id']}", {"parts": [{"part_number": 1, "etag": '"0000"'}]},
                                format="json")
    assert error_of(response, 409)["code"] == "multipart_incomplete"


def test_multipart_needs_the_size(alice, s3):
    response = alice.client.post("/v1/media/prepare-upload", {"content_type": "video/mp4", "multipart": True},
                                 format="json")
    assert error_of(response, 400)["param"] == "bytes"


def test_the_local_backend_refuses_multipart_and_keeps_no_reservation(alice, settings, tmp_path):
    use_local(settings, tmp_path)
    assert error_of(prepare(alice, 6 * MIB), 400)["code"] == "multipart_not_supported"
    assert reserved(alice.organization) == 0
    assert not MediaFile.objects.exists()


def test_app_encryption_refuses_multipart(alice, s3, settings):
    settings.MEDIA_ENCRYPTION, settings.MEDIA_MASTER_KEYS = "app", generate_key_string("k1")
    assert error_of(prepare(alice, 6 * MIB), 400)["code"] == "multipart_not_supported"


def test_a_size_over_the_plan_limit_is_refused(alice, s3):
    too_big = alice.organization.plan.max_file_bytes + 1
    assert error_of(prepare(alice, too_big), 413)["code"] == "max_size_exceeded"


def test_expire_uploads_aborts_an_abandoned_multipart_upload(alice, s3):
    data = video(6 * MIB)
    body = prepare(alice, len(data)).json()
    send_parts(body, data)
    result = lifecycle.expire_uploads(now=timezone.now() + timedelta(days=1))
    assert (result.expired, result.multipart_aborted) == (1, 1)
    assert s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []) == []
    assert reserved(alice.organization) == 0


def test_reconcile_keeps_live_multipart_uploads_and_reports_orphans(alice, s3, settings):
    live = prepare(alice, 6 * MIB).json()
    orphan = s3.client.create_multipart_upload(Bucket=s3.bucket, Key="organizations/1/uploads/gone")["UploadId"]
    result = lifecycle.reconcile_storage(grace=0, dry_run=True)
    assert result.partial == 1 and orphan in result.partial_items[0]
    ids = {u["UploadId"] for u in s3.client.list_multipart_uploads(Bucket=s3.bucket)["Uploads"]}
    assert live["multipart"]["upload_id"] in ids


def test_reconcile_keeps_the_multipart_upload_of_a_live_tus_upload(alice, s3):
    response = alice.client.post("/v1/uploads/", HTTP_TUS_RESUMABLE="1.0.0", HTTP_UPLOAD_LENGTH=str(20 * MIB))
    assert response.status_code == 201
    result = lifecycle.reconcile_storage(grace=0)
    assert result.partial == 0
    assert len(s3.client.list_multipart_uploads(Bucket=s3.bucket)["Uploads"]) == 1
