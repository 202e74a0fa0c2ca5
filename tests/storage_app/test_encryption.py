"""Encryption at rest inside the storage layer, so every surface gets it."""
import hashlib
import io
import os

import pytest

from storage_app.backends import get_store
from storage_app.crypto import generate_key_string
from tests.factories import unique_png, upload
from tests.media_app.conftest import body_of, error_of


@pytest.fixture
def app_encryption(settings):
    settings.MEDIA_ENCRYPTION = "app"
    settings.MEDIA_MASTER_KEYS = generate_key_string("k1")
    settings.MEDIA_PROXY_DOWNLOAD = True
    return settings


def raw(store, key: str) -> bytes:
    return b"".join(store.open_range(key, encrypted=False))


def test_stored_bytes_differ_from_the_plaintext_on_both_backends(app_encryption, backend):
    store = get_store()
    data = unique_png() + os.urandom(200_000)
    saved = store.save_stream("organizations/1/files/1/secret.png", io.BytesIO(data), max_bytes=10**7)
    stored = raw(store, saved.key)
    assert stored != data and data[:64] not in stored
    assert saved.encryption == "app" and saved.key_id == "k1"
    assert saved.sha256 == hashlib.sha256(data).hexdigest()  # the hash is of the plaintext
    assert store.read_bytes(saved.key) == data
    assert b"".join(store.open_range(saved.key, 100_000, 100_099)) == data[100_000:100_100]


def test_keys_rotate_without_losing_old_objects(app_encryption, backend, settings):
    store = get_store()
    store.save_stream("organizations/1/files/1/old.png", io.BytesIO(unique_png()), max_bytes=10**6)
    old_keys = settings.MEDIA_MASTER_KEYS
    settings.MEDIA_MASTER_KEYS = generate_key_string("k2") + "," + old_keys
    store = get_store()
    assert store.read_bytes("organizations/1/files/1/old.png").startswith(b"\x89PNG")
    assert store.save_stream("organizations/1/files/1/new.png", io.BytesIO(unique_png()),
                             max_bytes=10**6).key_id == "k2"


def _upload(actor, data):
    response = actor.client.post("/v1/media/upload", {"file": upload("s.png", data)}, format="multipart")
    assert response.status_code in (200, 201), response.content
    return response.json()


def test_the_api_serves_plaintext_and_dedups_on_plaintext(app_encryption, alice, client):
    data = unique_png()
    first = _upload(alice, data)
    assert _upload(alice, data)["id"] == first["id"]
    response = alice.client.get(f"/v1/media/{first['id']}/content")
    assert response.status_code == 200 and body_of(response) == data
    # Even on S3 an encrypted object is handed out through the app's signed URL, never S3's.
    url = alice.client.get(f"/v1/media/{first['id']}/presign").json()["url"]
    assert url.startswith("http://testserver/files/") and "X-Amz-Signature" not in url
    assert body_of(client.get(url.removeprefix("http://testserver"))) == data


def test_the_storage_api_reports_encryption(app_encryption, alice):
    response = alice.client.post("/api/v1/storage/upload", {"file": upload("s.png", unique_png())},
                                 format="multipart")
    assert response.json()["encrypted"] is True


def _flip_a_byte(store, key: str, offset: int) -> None:
    stored = bytearray(raw(store, key))
    stored[offset] ^= 0x01
    store._write(key, io.BytesIO(bytes(stored)), content_type="application/octet-stream")


def test_a_flipped_byte_is_a_409_never_garbage(app_encryption, alice, caplog):
    from media_app.models import MediaFile

    media = _upload(alice, unique_png() + os.urandom(1000))
    store = get_store()
    _flip_a_byte(store, MediaFile.objects.get(pk=media["id"]).storage_key, 200)
    response = alice.client.get(f"/v1/media/{media['id']}/content")
    assert error_of(response, 409)["code"] == "object_corrupted"
    assert any("corrupt" in r.getMessage().lower() or "integrity" in r.getMessage().lower()
               for r in caplog.records)


def test_a_removed_key_is_a_503(app_encryption, alice, settings):
    media = _upload(alice, unique_png())
    settings.MEDIA_MASTER_KEYS = generate_key_string("other")
    response = alice.client.get(f"/v1/media/{media['id']}/content")
    assert error_of(response, 503)["code"] == "encryption_key_unavailable"


def test_presigned_uploads_are_encrypted_through_the_app(app_encryption, alice, client):
    from media_app.models import MediaFile

    data = unique_png()
    prepared = alice.client.post("/v1/media/prepare-upload", {"content_type": "image/png", "bytes": len(data)},
                                 format="json").json()
    assert prepared["presigned_url"].startswith("http://testserver/files/")
    put = client.put(prepared["presigned_url"].removeprefix("http://testserver"), data=data,
                     content_type="image/png")
    assert put.status_code == 204
    done = alice.client.put(f"/v1/media/{prepared['id']}").json()
    media = MediaFile.objects.get(pk=done["id"])
    assert (media.encryption, media.encryption_key_id) == ("app", "k1")
    assert media.sha256 == hashlib.sha256(data).hexdigest()
    assert raw(get_store(), media.storage_key) != data


def test_sse_asks_s3_for_server_side_encryption(settings, moto_endpoint, alice):
    from media_app.models import MediaFile
    from tests.conftest import use_s3

    use_s3(settings, moto_endpoint)
    settings.MEDIA_ENCRYPTION = "sse"
    media = _upload(alice, unique_png())
    store = get_store()
    key = MediaFile.objects.get(pk=media["id"]).storage_key
    head = store.client.head_object(Bucket=store.bucket, Key=key)
    assert head["ServerSideEncryption"] == "AES256"
    assert MediaFile.objects.get(pk=media["id"]).encryption == "sse"


def test_start_up_refuses_bad_master_keys():
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_")}
    env.update(MEDIA_ENCRYPTION="app", MEDIA_MASTER_KEYS="k1:notbase64", MEDIA_MASTER_KEYS_FILE="/nonexistent")
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"],
                            cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                            timeout=60, )
    assert result.returncode != 0 and "MEDIA_MASTER_KEYS" in result.stderr
