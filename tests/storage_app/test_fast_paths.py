"""The fast paths behind the benchmarks (docs/benchmarks.md) answer exactly what the slow ones did.

Presigned S3 URLs are signed without boto3's per-call machinery (same bytes as boto3);
local downloads go through the server's sendfile path (`wsgi.file_wrapper`), ranges included;
API-key requests are authenticated in one query.
"""
from datetime import datetime, timezone

import boto3
import botocore.auth
import pytest
from botocore.config import Config
from django.db import connection
from django.test.utils import CaptureQueriesContext

from storage_app.backends import content_disposition
from storage_app.backends.presign import QueryPresigner
from tests.factories import unique_png

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
KEYS = ["organizations/1/files/2/My_Cat_20260102_030405_1a2b3c4d.png",
        "organizations/1/files/2/a b (1)~x_é.png", "compute/7/gen/2025/a+b=c&d.webp"]


def boto3_client(style: str, endpoint: str | None, token: str | None):
    return boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="AKIDEXAMPLE",
                        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", aws_session_token=token,
                        config=Config(s3={"addressing_style": style}, signature_version="s3v4"))


@pytest.mark.parametrize("style,endpoint", [
    ("path", "http://127.0.0.1:9000"), ("auto", "http://minio:9000"), ("auto", None), ("virtual", None),
    ("virtual", "https://account.r2.cloudflarestorage.com"), ("path", "https://s3.example.com:443"),
    ("path", "http://[::1]:9000"),
])
@pytest.mark.parametrize("token", [None, "FQoGZXIvYXdzE/session+token=="])
def test_presigned_urls_are_byte_for_byte_what_boto3_signs(monkeypatch, style, endpoint, token):
    client = boto3_client(style, endpoint, token)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: NOW.replace(tzinfo=None))
    presigner = QueryPresigner(client, "my-bucket")
    for key in KEYS:
        for mime, name in [("", ""), ("image/png", "My Cat (1).png"), ("image/svg+xml", 'a "b";\\c.svg')]:
            params = {"Bucket": "my-bucket", "Key": key}
            response = {}
            if mime:
                disposition = content_disposition(mime, name)
                params.update(ResponseContentType=mime, ResponseContentDisposition=disposition)
                response = {"response-content-type": mime, "response-content-disposition": disposition}
            expected = client.generate_presigned_url("get_object", Params=params, ExpiresIn=604800)
            assert presigner.url(key, 604800, response, now=NOW) == expected


def test_the_s3_store_signs_with_the_presigner_and_the_url_serves_the_bytes(settings, moto_endpoint, alice):
    import requests

    from tests.conftest import use_s3

    use_s3(settings, moto_endpoint)
    data = unique_png()
    body = alice.client.post("/v1/media/upload", {"file": _upload("cat.png", data)}, format="multipart").json()
    from storage_app.backends import get_store

    assert get_store()._presigner() is not None
    assert requests.get(body["presigned_url"], timeout=10).content == data


def _upload(name, data):
    from tests.factories import upload

    return upload(name, data)


# -- local downloads through sendfile ---------------------------------------------------------
@pytest.fixture
def stored(alice, settings, tmp_path):
    from tests.conftest import use_local

    use_local(settings, tmp_path)
    data = bytes(range(256)) * 20_000  # 5 MB, recognisable at every offset
    body = alice.client.post("/v1/media/upload", {"file": _upload("blob.bin", data)}, format="multipart").json()
    return body["id"], data


def serve(store, key, size, *, range_header=None, encrypted=False):
    from django.test import RequestFactory

    from storage_app.http import ObjectView, serve_object

    request = RequestFactory().get("/x", HTTP_RANGE=range_header) if range_header else RequestFactory().get("/x")
    return serve_object(request, store, ObjectView(key=key, size=size, mime="application/octet-stream",
                                                   encrypted=encrypted))


def test_a_local_download_hands_the_file_to_the_servers_sendfile(alice, stored):
    import os

    from media_app.models import MediaFile
    from storage_app.backends import get_store

    media_id, data = stored
    media = MediaFile.objects.get(pk=media_id)
    response = serve(get_store(), media.storage_key, len(data))
    handle = response.file_to_stream  # what Django gives `wsgi.file_wrapper`, i.e. gunicorn's sendfile
    assert os.lseek(handle.fileno(), 0, os.SEEK_CUR) == 0 and response["Content-Length"] == str(len(data))
    assert response.block_size >= 1024 * 1024
    response.close()
    ranged = serve(get_store(), media.storage_key, len(data), range_header="bytes=1000-1999")
    handle = ranged.file_to_stream
    assert os.lseek(handle.fileno(), 0, os.SEEK_CUR) == 1000 and ranged["Content-Length"] == "1000"
    assert handle.read(10_000) == data[1000:2000] and handle.read(10) == b""
    ranged.close()


@pytest.mark.parametrize("header,start,end", [(None, 0, None), ("bytes=0-0", 0, 0), ("bytes=100-", 100, None),
                                              ("bytes=-300", -300, None), ("bytes=4000000-4100000", 4000000, 4100000)])
def test_local_downloads_send_exactly_the_range(alice, stored, header, start, end):
    media_id, data = stored
    extra = {"HTTP_RANGE": header} if header else {}
    response = alice.client.get(f"/v1/media/{media_id}/content", **extra)
    expected = data[start:] if end is None else data[start:end + 1]
    assert response.status_code == (206 if header else 200)
    assert response["Content-Length"] == str(len(expected))
    assert b"".join(response.streaming_content) == expected


def test_behind_nginx_the_file_is_left_to_x_accel_redirect(alice, stored, settings):
    from media_app.models import MediaFile

    media_id, data = stored
    settings.MEDIA_ACCEL_REDIRECT_PREFIX = "/_media/"
    response = alice.client.get(f"/v1/media/{media_id}/content", HTTP_RANGE="bytes=0-9")
    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == "/_media/" + MediaFile.objects.get(pk=media_id).storage_key
    assert response["ETag"] and response["X-Content-Type-Options"] == "nosniff"


def test_an_encrypted_object_is_never_handed_to_sendfile(alice, settings, tmp_path):
    from storage_app.crypto import generate_key_string
    from tests.conftest import use_local

    use_local(settings, tmp_path)
    settings.MEDIA_ENCRYPTION = "app"
    settings.MEDIA_MASTER_KEYS = generate_key_string("k1")
    data = unique_png()
    media_id = alice.client.post("/v1/media/upload", {"file": _upload("c.png", data)}, format="multipart").json()["id"]
    response = alice.client.get(f"/v1/media/{media_id}/content")
    assert getattr(response, "file_to_stream", None) is None
    assert b"".join(response.streaming_content) == data


# -- authentication in one query -------------------------------------------------------------
def test_an_api_key_request_authenticates_in_one_query(alice, alices_media, settings):
    settings.API_KEY_CACHE_SECONDS = 0  # the lookup itself (a cached key needs none: tests/accounts)
    alice.client.get(f"/v1/media/{alices_media['id']}")  # last_used_at is fresh now
    with CaptureQueriesContext(connection) as queries:
        response = alice.client.get(f"/v1/media/{alices_media['id']}")
    assert response.status_code == 200
    assert len(queries) == 2, [q["sql"] for q in queries]  # the key (with user, org, plan, role), the file


def test_the_one_query_key_lookup_answers_what_the_orm_does(alice, carol):
    from accounts.authentication import _key_with_role
    from accounts.models import Membership
    from accounts.services import api_key_lookup

    def fields(instance) -> dict:
        return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}

    for actor, role in ((alice, "owner"), (carol, "admin")):
        mine, orm = _key_with_role(actor.key), api_key_lookup(actor.key)
        assert mine.member_role == role
        for ours, theirs in ((mine, orm), (mine.organization, orm.organization),
                             (mine.organization.plan, orm.organization.plan), (mine.user, orm.user)):
            assert fields(ours) == fields(theirs) and ours._state.db == theirs._state.db
    assert _key_with_role(alice.key[:-2] + "xx") is None and _key_with_role("msk_nope") is None
    Membership.objects.filter(user=carol.user).delete()
    assert _key_with_role(carol.key).member_role is None
    error = carol.client.get("/v1/media").json()["error"]
    assert error["code"] == "permission_denied"


# -- read-ahead for proxied downloads --------------------------------------------------------
def test_read_ahead_hands_over_every_chunk_in_order_and_then_the_error():
    from config.errors import StorageUnavailable
    from storage_app.http import ReadAhead

    assert list(ReadAhead(iter([b"b", b"c", b"d"]), first=b"a", depth=1)) == [b"a", b"b", b"c", b"d"]

    def failing():
        yield b"x"
        raise StorageUnavailable()

    chunks = ReadAhead(failing())
    assert next(chunks) == b"x"
    with pytest.raises(StorageUnavailable):
        next(chunks)


def test_closing_a_read_ahead_early_stops_its_thread_and_closes_the_source():
    import threading

    from storage_app.http import ReadAhead

    closed = threading.Event()

    def endless():
        try:
            while True:
                yield b"x" * 10
        finally:
            closed.set()

    chunks = ReadAhead(endless())
    assert next(chunks) == b"x" * 10
    chunks.close()  # what Django does when a client goes away
    assert closed.wait(5) and not chunks._thread.is_alive()


def test_a_proxied_s3_download_streams_through_the_read_ahead(alice, settings, moto_endpoint):
    from tests.conftest import use_s3

    use_s3(settings, moto_endpoint)
    settings.MEDIA_PROXY_DOWNLOAD = True
    data = bytes(range(256)) * 12_000  # 3 MB: several chunks
    media_id = alice.client.post("/v1/media/upload", {"file": _upload("b.bin", data)}, format="multipart").json()["id"]
    response = alice.client.get(f"/v1/media/{media_id}/content")
    assert response.status_code == 200 and b"".join(response.streaming_content) == data
    ranged = alice.client.get(f"/v1/media/{media_id}/content", HTTP_RANGE="bytes=1000000-2999999")
    assert b"".join(ranged.streaming_content) == data[1000000:3000000]


@pytest.mark.parametrize("grant", [
    dict(op="get", key="organizations/1/files/a b.png", expires=1_900_000_000),
    dict(op="put", key="organizations/1/files/x.png", expires=1_900_000_000, content_type="image/png; q=1",
         max_bytes=1024, filename="été & co?.png", transform="w=256,f=webp"),
])
def test_a_signed_url_has_the_query_string_urlencode_would_make(settings, grant):
    from urllib.parse import urlencode

    from storage_app.signing import SignedGrant, file_url, grant_params, signed_url

    settings.MEDIA_LOCAL_STORAGE_BASE_URL = "/files"
    made = SignedGrant(**grant)
    assert signed_url(made) == f"{file_url(made.key)}?{urlencode(grant_params(made))}"
