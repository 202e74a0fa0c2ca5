"""The storage layer, run once per backend (local folder and moto's S3 server)."""
import hashlib
import io
import os
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from config.errors import InvalidPath, NotFound, StorageUnavailable, TooLarge, UnsupportedMediaType
from storage_app import signing
from storage_app.backends import get_store

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000105e27e2b0000000049454e44ae426082")


def payload(n: int = 300_000) -> bytes:
    return PNG + os.urandom(n)


class Trickle(io.RawIOBase):
    """A source that returns short reads, like a socket."""

    def __init__(self, data: bytes, step: int = 777) -> None:
        self.data, self.pos, self.step = data, 0, step

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.step if n is None or n < 0 else min(n, self.step)
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk


def test_save_hashes_counts_and_sniffs_in_one_pass(store):
    data = payload()
    saved = store.save_stream("organizations/1/files/1/a.png", Trickle(data), max_bytes=10**7)
    assert saved.size == len(data)
    assert saved.sha256 == hashlib.sha256(data).hexdigest()
    assert saved.sniffed.mime == "image/png" and saved.sniffed.kind == "image"
    assert store.read_bytes(saved.key) == data
    assert store.size(saved.key) == len(data)


def test_a_write_over_the_limit_stops_and_leaves_no_object(store):
    key = "organizations/1/files/1/big.bin"
    with pytest.raises(TooLarge) as caught:
        store.save_stream(key, io.BytesIO(os.urandom(50_000)), max_bytes=20_000)
    assert caught.value.status == 413 and caught.value.code == "max_size_exceeded"
    assert not store.exists(key)
    assert list(store.list("organizations/1/")) == []


def test_a_multipart_sized_write_over_the_limit_leaves_no_object(store):
    key = "organizations/1/files/1/huge.bin"
    with pytest.raises(TooLarge):
        store.save_stream(key, io.BytesIO(b"\0" * (20 * 1024 * 1024)), max_bytes=18 * 1024 * 1024)
    assert not store.exists(key)


def test_a_refused_type_is_refused_before_anything_is_written(store):
    def only_pdf(sniffed):
        raise UnsupportedMediaType()

    with pytest.raises(UnsupportedMediaType):
        store.save_stream("organizations/1/files/1/x.png", io.BytesIO(payload(10)), max_bytes=100, check=only_pdf)
    assert not store.exists("organizations/1/files/1/x.png")


@pytest.mark.parametrize("start,end", [(0, 0), (0, 99), (5, 5), (1000, 299_999), (250_000, None)])
def test_byte_ranges(store, start, end):
    data = payload()
    store.save_stream("k/range.png", io.BytesIO(data), max_bytes=10**7)
    expected = data[start:None if end is None else end + 1]
    assert b"".join(store.open_range("k/range.png", start, end)) == expected


def test_copy_delete_exists(store):
    store.save_stream("compute/a.png", io.BytesIO(payload(10)), max_bytes=1000)
    store.copy("compute/a.png", "organizations/1/files/1/b.png")
    assert store.read_bytes("organizations/1/files/1/b.png") == store.read_bytes("compute/a.png")
    store.delete("compute/a.png")
    assert not store.exists("compute/a.png")
    store.delete("compute/a.png")  # a missing key is fine
    with pytest.raises(NotFound):
        store.read_bytes("compute/a.png")
    with pytest.raises(NotFound):
        store.copy("compute/missing.png", "compute/other.png")


def test_list_by_prefix_never_mixes_org1_and_org10(store):
    for key in ("organizations/1/files/1/a.png", "organizations/10/files/1/b.png", "organizations/1/x/c.png"):
        store.save_stream(key, io.BytesIO(payload(10)), max_bytes=1000)
    keys = sorted(info.key for info in store.list("organizations/1/"))
    assert keys == ["organizations/1/files/1/a.png", "organizations/1/x/c.png"]
    assert [i.key for i in store.list("organizations/1/files/1/")] == ["organizations/1/files/1/a.png"]
    assert all(info.size > 0 for info in store.list("organizations/"))


def test_sweep_partial_removes_an_unfinished_write_begun_before_the_cutoff_only(store, db):
    from datetime import datetime, timedelta, timezone

    from tests.factories import leave_partial_upload, partial_uploads

    store.save_stream("organizations/1/files/1/done.png", io.BytesIO(payload(10)), max_bytes=1000)
    leave_partial_upload("organizations/1/files/1/crashed.png")
    assert store.sweep_partial(prefix="organizations/", older_than=datetime(2000, 1, 1, tzinfo=timezone.utc)) == []
    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    assert len(store.sweep_partial(prefix="organizations/", older_than=later, dry_run=True)) == 1
    assert partial_uploads() == ["crashed.png"]
    assert len(store.sweep_partial(prefix="organizations/", older_than=later)) == 1
    assert partial_uploads() == [] and store.exists("organizations/1/files/1/done.png")


@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "a\\b", "a\x00b", "a//b", "%2e%2e/x", "a%2fb"])
def test_bad_keys_are_rejected_before_any_storage_call(store, key, monkeypatch):
    def explode(*args, **kwargs):
        raise AssertionError("the backend was called")

    for name in ("_write", "_read"):
        monkeypatch.setattr(store, name, explode)
    with pytest.raises(InvalidPath):
        store.save_stream(key, io.BytesIO(b"x"), max_bytes=10)
    with pytest.raises(InvalidPath):
        list(store.open_range(key))
    with pytest.raises(InvalidPath):
        store.signed_download_url(key, 60)


def test_signed_upload_and_download_round_trip(store, client, backend, alice):
    from media_app.models import MediaFile

    data = payload(5000)
    prepared = alice.client.post("/v1/media/prepare-upload", {"content_type": "image/png", "bytes": len(data)},
                                 format="json").json()
    _put(client, prepared["presigned_url"], data, prepared["headers"])
    assert alice.client.put(f"/v1/media/{prepared['id']}").status_code == 200
    url = store.signed_download_url(MediaFile.objects.get(pk=prepared["id"]).storage_key, 300)
    assert _get(client, url) == data


def test_s3_download_urls_are_presigned_by_boto3(settings, moto_endpoint, tmp_path):
    from tests.conftest import use_s3

    use_s3(settings, moto_endpoint)
    store = get_store()
    store.save_stream("compute/x.png", io.BytesIO(payload(100)), max_bytes=10**6)
    url = store.signed_download_url("compute/x.png", 300)
    assert url.startswith(moto_endpoint) and "X-Amz-Signature" in url
    assert requests.get(url, timeout=10).content == store.read_bytes("compute/x.png")


def _put(client, url, data, headers):
    if url.startswith("http://testserver/"):
        response = client.put(url.removeprefix("http://testserver"), data=data,
                              content_type=headers["Content-Type"])
    else:
        response = requests.put(url, data=data, headers=headers, timeout=10)
    assert response.status_code in (200, 204), getattr(response, "content", b"")[:300]


def _get(client, url) -> bytes:
    if url.startswith("http://testserver/"):
        response = client.get(url.removeprefix("http://testserver"))
        assert response.status_code == 200
        return b"".join(response.streaming_content) if response.streaming else response.content
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    return response.content


# -- app-signed URLs: tampering and expiry ------------------------------------------------
@pytest.fixture
def signed(client, settings, tmp_path):
    from tests.conftest import use_local

    use_local(settings, tmp_path)
    store = get_store()
    store.save_stream("compute/1/s.png", io.BytesIO(payload(100)), max_bytes=10**6)
    store.save_stream("compute/1/t.png", io.BytesIO(payload(100)), max_bytes=10**6)
    return store.signed_download_url("compute/1/s.png", 300)


def _tamper(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    path = changes.pop("path", parts.path)
    query.update(changes)
    return f"{path}?{urlencode(query)}"


def _assert_403(response, code="signature_invalid"):
    assert response.status_code == 403
    assert response.json()["error"]["code"] == code


def test_a_valid_signed_url_serves_the_bytes(client, signed):
    response = client.get(_tamper(signed))
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_changed_path_is_refused(client, signed):
    _assert_403(client.get(_tamper(signed, path="/files/compute/1/t.png")))


def test_a_changed_expiry_is_refused(client, signed):
    _assert_403(client.get(_tamper(signed, exp=str(int(time.time()) + 10**6))))


def test_a_bad_signature_is_refused(client, signed):
    _assert_403(client.get(_tamper(signed, sig="0" * 64)))


def test_a_missing_signature_is_refused(client, signed):
    _assert_403(client.get(urlsplit(signed).path))


def test_a_past_expiry_is_refused(client, db):
    store = get_store()
    store.save_stream("organizations/1/files/1/old.png", io.BytesIO(payload(10)), max_bytes=10**6)
    grant = signing.SignedGrant(op="get", key="organizations/1/files/1/old.png", expires=int(time.time()) - 1)
    _assert_403(client.get(_tamper(signing.signed_url(grant))), "signature_expired")


def test_a_download_grant_cannot_upload(client, signed):
    response = client.put(_tamper(signed), data=b"x", content_type="image/png")
    _assert_403(response)


@pytest.fixture
def local_store(settings, tmp_path):
    """App-signed URLs are the local backend's (S3 enforces its own presigned limits)."""
    from tests.conftest import use_local

    use_local(settings, tmp_path)
    return get_store()


def test_a_signed_upload_refuses_more_bytes_than_signed(client, local_store):
    store = local_store
    upload = store.signed_upload("organizations/1/files/1/u.png", content_type="image/png", max_bytes=50, ttl=60)
    response = client.put(upload.url.removeprefix("http://testserver"), data=payload(100), content_type="image/png")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "max_size_exceeded"
    assert not store.exists("organizations/1/files/1/u.png")


def test_a_signed_upload_refuses_another_content_type(client, local_store):
    store = local_store
    upload = store.signed_upload("organizations/1/files/1/v.png", content_type="image/png", max_bytes=500, ttl=60)
    response = client.put(upload.url.removeprefix("http://testserver"), data=b"%PDF-1.4\n", content_type="application/pdf")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "content_type_mismatch"


def test_ranges_through_the_signed_url(client, signed):
    response = client.get(_tamper(signed), HTTP_RANGE="bytes=0-7")
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == PNG[:8]
    assert response["Content-Range"].startswith("bytes 0-7/")
    assert client.get(_tamper(signed), HTTP_RANGE="bytes=999999-").status_code == 416


# -- outages ------------------------------------------------------------------------------
def test_an_unreachable_s3_is_storage_unavailable(settings):
    from tests.conftest import s3_storage_settings

    settings.MEDIA_STORAGE_BACKEND = "s3"
    settings.STORAGES = {**settings.STORAGES, "media": s3_storage_settings("http://127.0.0.1:9", "nowhere")}
    store = get_store()
    with pytest.raises(StorageUnavailable):
        store.save_stream("compute/x.png", io.BytesIO(payload(10)), max_bytes=1000)
    with pytest.raises(StorageUnavailable):
        store.exists("compute/x.png")


def test_signed_urls_answer_503_when_storage_is_down(client, settings):
    from tests.conftest import s3_storage_settings

    settings.MEDIA_STORAGE_BACKEND = "s3"
    settings.STORAGES = {**settings.STORAGES, "media": s3_storage_settings("http://127.0.0.1:9", "nowhere")}
    url = signing.signed_url(signing.make_grant("get", "compute/x.png", 60))
    response = client.get(url.removeprefix("http://testserver"))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "storage_unavailable"


def test_a_multipart_sized_write_keeps_every_byte(store):
    data = PNG + os.urandom(17 * 1024 * 1024)
    saved = store.save_stream("organizations/1/files/1/large.png", Trickle(data, step=65536), max_bytes=10**8)
    assert saved.size == len(data) == store.size(saved.key)
    assert hashlib.sha256(store.read_bytes(saved.key)).hexdigest() == saved.sha256 == hashlib.sha256(data).hexdigest()


def test_presigned_urls_can_name_the_endpoint_clients_reach(settings, moto_endpoint):
    from tests.conftest import use_s3

    use_s3(settings, moto_endpoint)
    outside = moto_endpoint.replace("127.0.0.1", "localhost")
    settings.MEDIA_S3_PRESIGN_ENDPOINT = outside
    store = get_store()
    store.save_stream("compute/p.png", io.BytesIO(payload(10)), max_bytes=10**6)
    url = store.signed_download_url("compute/p.png", 60)
    assert url.startswith(outside + "/")
    assert requests.get(url, timeout=10).content == store.read_bytes("compute/p.png")
    upload = store.signed_upload("compute/q.png", content_type="image/png", max_bytes=100, ttl=60)
    assert upload.url.startswith(outside + "/")


def test_a_failed_replacement_keeps_the_old_object(store):
    key = "compute/1/keep.png"
    old = payload(100)
    store.save_stream(key, io.BytesIO(old), max_bytes=10**6)
    with pytest.raises(TooLarge):
        store.save_stream(key, io.BytesIO(payload(5000)), max_bytes=1000, replacing=True)
    assert store.read_bytes(key) == old


def test_sse_copies_stay_encrypted(settings, moto_endpoint):
    from tests.conftest import use_s3

    use_s3(settings, moto_endpoint)
    settings.MEDIA_ENCRYPTION = "sse"
    store = get_store()
    store.save_stream("compute/1/a.png", io.BytesIO(payload(10)), max_bytes=10**6)
    store.copy("compute/1/a.png", "organizations/1/files/1/a.png")
    head = store.client.head_object(Bucket=store.bucket, Key="organizations/1/files/1/a.png")
    assert head["ServerSideEncryption"] == "AES256"


# -- choosing a backend ---------------------------------------------------------------------
def test_the_backend_is_the_class_media_storage_backend_names(settings, backend):
    from tests.storage_app.memory_store import MemoryStore

    settings.MEDIA_STORAGE_BACKEND = "tests.storage_app.memory_store.MemoryStore"
    store = get_store()
    assert isinstance(store, MemoryStore) and store.name == "memory" and store.bucket_name == "memory"


def test_callers_learn_no_backend_specifics_beyond_the_interface(store):
    saved = store.save_stream("compute/1/gen/a.png", io.BytesIO(payload(10)), max_bytes=1000)
    stat = store.stat(saved.key)
    assert stat.size == saved.size and isinstance(stat.etag, str)
    assert store.public_url(saved.key) is None  # no MEDIA_S3_PUBLIC_ENDPOINT: no backend has one
    path = store.local_path(saved.key)
    assert path is None or path.read_bytes() == store.read_bytes(saved.key)
    with pytest.raises(NotFound):
        store.stat("compute/1/gen/missing.png")
