"""Upload URLs write at most once, only while their upload is pending; signed downloads serve only
live files; form POSTs are verified before their file is read; chunked bodies are never empty.

The reuse tests run on both backends: locally the app refuses a reused URL (409); S3's presigned
URLs cannot be revoked, so there the reuse lands under a dead upload's staging key, never on the
file, and the next expire_uploads deletes it.
"""
from __future__ import annotations

import io
import threading
import uuid

import pytest
import requests
from django.test.client import FakePayload
from django.utils import timezone

from media_app import lifecycle
from media_app.grants import media_upload_claim
from media_app.models import MediaFile
from quotas.models import Quota
from storage_app.backends import get_store
from storage_app.keys import upload_staging_key
from tests.factories import unique_png

LOCAL = "http://testserver"


# -- helpers ------------------------------------------------------------------------------
@pytest.fixture
def local(settings, tmp_path) -> None:
    """App-signed upload URLs: the local backend's (S3's go to S3)."""
    from tests.conftest import use_local

    use_local(settings, tmp_path)


def prepare(actor, size: int) -> dict:
    response = actor.client.post("/v1/media/prepare-upload", {"content_type": "image/png", "bytes": size},
                                 format="json")
    assert response.status_code == 200, response.content
    return response.json()


def put(client, prepared: dict, data: bytes, **extra):  # noqa: ANN201 - a Django or a requests response
    url = prepared["presigned_url"]
    if url.startswith(LOCAL):
        return client.put(url.removeprefix(LOCAL), data=data, content_type="image/png", **extra)
    return requests.put(url, data=data, headers=prepared["headers"], timeout=10)


def complete(actor, prepared: dict) -> dict:
    response = actor.client.put(f"/v1/media/{prepared['id']}")
    assert response.status_code == 200, response.content
    return response.json()


def uploaded(actor, client, data: bytes) -> dict:
    prepared = prepare(actor, len(data))
    # The app answers an upload URL with 204; S3 answers its presigned PUT with 200.
    assert put(client, prepared, data).status_code == (204 if prepared["presigned_url"].startswith(LOCAL) else 200)
    return prepared


def content(actor, media_id: str) -> bytes:
    response = actor.client.get(f"/v1/media/{media_id}/content")
    if response.status_code == 302:
        return requests.get(response["Location"], timeout=10).content
    assert response.status_code == 200
    return b"".join(response.streaming_content) if response.streaming else response.content


def refused_locally(response, backend: str, code: str) -> None:
    """A reused URL: refused by the app where it signs the URLs (every backend but S3); S3 takes the
    bytes (a dead upload's staging key)."""
    if backend != "s3":
        assert response.status_code == 409, response.content
        assert response.json()["error"]["code"] == code


def object_keys() -> set[str]:
    return {info.key for info in get_store().list("organizations/")}


def counters(org) -> tuple[int, int, int]:
    quota = Quota.objects.get(organization=org)
    return quota.used_bytes, quota.reserved_bytes, quota.file_count


def other_bytes(data: bytes) -> bytes:
    """Different content of the same length (a presigned S3 PUT is signed for one length)."""
    replacement = unique_png()
    assert len(replacement) == len(data) and replacement != data
    return replacement


# -- 1. an upload URL writes once, while its upload is pending ------------------------------
def test_a_reused_upload_url_cannot_change_a_completed_file(alice, client, backend):
    data = unique_png()
    prepared = uploaded(alice, client, data)
    done = complete(alice, prepared)
    refused_locally(put(client, prepared, other_bytes(data)), backend, "upload_not_pending")
    lifecycle.expire_uploads()
    assert content(alice, prepared["id"]) == data
    assert alice.client.get(f"/v1/media/{prepared['id']}").json()["sha256"] == done["sha256"]
    assert object_keys() == {MediaFile.objects.get(pk=prepared["id"]).storage_key}
    assert counters(alice.organization) == (len(data), 0, 1)


def test_a_second_put_before_completion_does_not_replace_the_received_bytes(alice, client, backend):
    data = unique_png()
    prepared = uploaded(alice, client, data)
    again = put(client, prepared, other_bytes(data))
    if backend != "s3":
        assert again.status_code == 409 and again.json()["error"]["code"] == "upload_already_received"
        assert complete(alice, prepared)["bytes"] == len(data) and content(alice, prepared["id"]) == data


def test_a_reused_upload_url_cannot_recreate_a_deleted_or_purged_file(alice, client, backend):
    data = unique_png()
    prepared = uploaded(alice, client, data)
    complete(alice, prepared)
    assert alice.client.delete(f"/v1/media/{prepared['id']}").status_code == 200
    refused_locally(put(client, prepared, other_bytes(data)), backend, "upload_not_pending")
    assert lifecycle.purge_media(grace=0).purged == 1
    refused_locally(put(client, prepared, other_bytes(data)), backend, "upload_not_pending")
    lifecycle.expire_uploads()
    assert object_keys() == set()
    assert counters(alice.organization) == (0, 0, 0)


def test_a_cancelled_upload_url_writes_nothing(alice, client, backend):
    data = unique_png()
    prepared = prepare(alice, len(data))
    assert alice.client.delete(f"/v1/media/{prepared['id']}").status_code == 200
    refused_locally(put(client, prepared, data), backend, "upload_not_pending")
    lifecycle.expire_uploads()
    assert object_keys() == set() and counters(alice.organization) == (0, 0, 0)


def test_an_upload_url_writes_nothing_after_its_window_or_its_expiry(alice, client, backend):
    data = unique_png()
    late, expired = prepare(alice, len(data)), prepare(alice, len(data))
    MediaFile.objects.filter(pk__in=[late["id"], expired["id"]]).update(upload_expires_at=timezone.now())
    refused_locally(put(client, late, data), backend, "upload_not_pending")  # window over, job not run yet
    lifecycle.expire_uploads()
    refused_locally(put(client, expired, data), backend, "upload_not_pending")
    lifecycle.expire_uploads()
    assert object_keys() == set() and counters(alice.organization) == (0, 0, 0)


def test_a_reused_upload_url_of_a_dedup_alias_stores_nothing(alice, client, backend, post_file):
    data = unique_png()
    original = post_file(alice, data).json()
    prepared = uploaded(alice, client, data)
    assert complete(alice, prepared)["duplicate_of"] == original["id"]
    refused_locally(put(client, prepared, other_bytes(data)), backend, "upload_not_pending")
    lifecycle.expire_uploads()
    assert object_keys() == {MediaFile.objects.get(pk=original["id"]).storage_key}
    assert content(alice, prepared["id"]) == data
    assert counters(alice.organization) == (2 * len(data), 0, 2)


def test_ten_reused_upload_urls_add_no_bytes_that_no_quota_counts(alice, client, backend):
    files = [(uploaded(alice, client, data), data) for data in (unique_png() for _ in range(10))]
    for prepared, data in files:
        complete(alice, prepared)
        refused_locally(put(client, prepared, other_bytes(data)), backend, "upload_not_pending")
    lifecycle.expire_uploads()
    stored = sum(info.size for info in get_store().list("organizations/"))
    assert len(object_keys()) == 10 and stored == sum(len(data) for _, data in files)
    assert counters(alice.organization) == (stored, 0, 10)


def test_the_reconcile_job_deletes_staged_bytes_of_a_finished_upload_at_once(alice, client, backend):
    data = unique_png()
    prepared = uploaded(alice, client, data)
    complete(alice, prepared)
    stray = upload_staging_key(alice.organization.pk, prepared["id"])
    get_store().save_stream(stray, io.BytesIO(other_bytes(data)), max_bytes=10**6)  # S3's reused URL
    waiting = uploaded(alice, client, unique_png())
    result = lifecycle.reconcile_storage(fix=True)  # the default grace: staged bytes need none
    assert result.stray_keys == [stray]
    assert object_keys() == {MediaFile.objects.get(pk=prepared["id"]).storage_key,
                             upload_staging_key(alice.organization.pk, waiting["id"])}


def test_a_put_while_another_is_writing_is_409_in_progress(alice, client, local):
    data = unique_png()
    prepared = prepare(alice, len(data))
    media_upload_claim(key=upload_staging_key(alice.organization.pk, prepared["id"]))  # the first PUT, mid-write
    response = put(client, prepared, data)
    assert response.status_code == 409 and response.json()["error"]["code"] == "upload_in_progress"


def test_two_concurrent_puts_store_one_of_them(alice, client, local, monkeypatch):
    data, other = unique_png(), unique_png()
    prepared = prepare(alice, len(data))
    store, real_write = get_store(), get_store()._write
    inside, answers = threading.Event(), {}

    def second_put_meanwhile(key, stream, **kwargs):  # noqa: ANN001, ANN003
        if not inside.is_set():
            inside.set()
            answers["second"] = put(client, prepared, other)  # arrives while the first is writing
        real_write(key, stream, **kwargs)

    monkeypatch.setattr(store, "_write", second_put_meanwhile)
    assert put(client, prepared, data).status_code == 204
    assert answers["second"].status_code == 409
    assert answers["second"].json()["error"]["code"] == "upload_in_progress"
    assert complete(alice, prepared)["bytes"] == len(data) and content(alice, prepared["id"]) == data


def test_a_put_interrupted_midway_can_be_retried(alice, client, local, monkeypatch):
    from storage_app.uploads import UploadInterrupted

    data = unique_png()
    prepared = prepare(alice, len(data))
    store, real_write = get_store(), get_store()._write

    def broken_connection(key, stream, **kwargs):  # noqa: ANN001, ANN003
        stream.read(10)
        raise UploadInterrupted()

    monkeypatch.setattr(store, "_write", broken_connection)
    failed = put(client, prepared, data)
    assert failed.status_code == 400 and failed.json()["error"]["code"] == "upload_interrupted"
    monkeypatch.setattr(store, "_write", real_write)
    assert put(client, prepared, data).status_code == 204
    assert complete(alice, prepared)["bytes"] == len(data)


def test_a_refused_put_can_be_retried_with_the_right_file(alice, client, local):
    data = unique_png()
    prepared = prepare(alice, len(data))
    unknown_length = put(client, prepared, data, CONTENT_LENGTH="")
    assert unknown_length.status_code == 411 and unknown_length.json()["error"]["code"] == "length_required"
    too_big = put(client, prepared, data + b"\0" * 10)
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "max_size_exceeded"
    assert put(client, prepared, data).status_code == 204


def test_an_upload_url_can_only_write_its_staging_key(alice, client, local):
    from storage_app import signing

    for key in ("organizations/1/files/1/x.png", f"compute/{alice.organization.pk}/x.png"):
        grant = signing.make_grant("put", key, 60, content_type="image/png", max_bytes=1000)
        response = client.put(signing.signed_url(grant).removeprefix(LOCAL), data=unique_png(),
                              content_type="image/png")
        assert response.status_code == 403 and response.json()["error"]["code"] == "upload_not_allowed"
    assert object_keys() == set() and not list(get_store().list("compute/"))


def test_a_put_answers_204_without_a_body(alice, client, local):
    response = put(client, prepare(alice, 100), unique_png())
    assert response.status_code == 204 and response.content == b"" and "Content-Type" not in response


def test_an_empty_put_stores_nothing_and_can_be_retried(alice, client, local):
    data = unique_png()
    prepared = prepare(alice, len(data))
    empty = put(client, prepared, b"", CONTENT_TYPE="image/png", CONTENT_LENGTH="0")  # dropped for no data
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "empty_file"
    assert object_keys() == set()
    assert put(client, prepared, data).status_code == 204


# -- 2. form POSTs are verified before their file is read -------------------------------------
BOUNDARY = "grant-boundary"


def form_body(fields: dict[str, str], data: bytes) -> bytes:
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
                 f"Content-Type: image/png\r\n\r\n".encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


def post_form(client, url: str, body: bytes, **extra):  # noqa: ANN201
    return client.generic("POST", url.removeprefix(LOCAL), body,
                          content_type=f"multipart/form-data; boundary={BOUNDARY}", **extra)


@pytest.fixture
def bytes_read(monkeypatch) -> list[int]:
    """How many bytes the server read of each request body."""
    counted: list[int] = []
    real_read, real_init = FakePayload.read, FakePayload.__init__

    def init(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        real_init(self, *args, **kwargs)
        counted.append(0)

    def read(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        data = real_read(self, *args, **kwargs)
        counted[-1] += len(data)
        return data

    monkeypatch.setattr(FakePayload, "__init__", init)
    monkeypatch.setattr(FakePayload, "read", read)
    return counted


def test_a_signed_form_post_stores_the_file(alice, client, local):
    data = unique_png()
    prepared = prepare(alice, len(data))
    response = post_form(client, prepared["presigned_post"]["url"], form_body(prepared["presigned_post"]["fields"],
                                                                              data))
    assert response.status_code == 204, response.content
    assert complete(alice, prepared)["bytes"] == len(data)
    again = post_form(client, prepared["presigned_post"]["url"], form_body(prepared["presigned_post"]["fields"],
                                                                           data))
    assert again.status_code == 409 and again.json()["error"]["code"] == "upload_not_pending"


def test_a_big_post_with_a_bad_signature_is_refused_after_a_small_prefix(alice, client, local, bytes_read):
    prepared = prepare(alice, 10 * 1024 * 1024)
    fields = {**prepared["presigned_post"]["fields"], "sig": "0" * 64}
    response = post_form(client, prepared["presigned_post"]["url"], form_body(fields, b"\0" * (8 * 1024 * 1024)))
    assert response.status_code == 403 and response.json()["error"]["code"] == "signature_invalid"
    assert bytes_read[-1] <= 9 * 1024


def test_a_post_whose_fields_do_not_fit_the_prefix_is_refused_unread(alice, client, local, bytes_read):
    prepared = prepare(alice, 100)
    fields = {"padding": "x" * (1024 * 1024), **prepared["presigned_post"]["fields"]}
    response = post_form(client, prepared["presigned_post"]["url"], form_body(fields, unique_png()))
    assert response.status_code == 413 and response.json()["error"]["code"] == "max_size_exceeded"
    assert bytes_read[-1] <= 9 * 1024


def test_a_post_grant_of_100_bytes_refuses_a_1_mb_file_after_reading_little(alice, client, local, bytes_read):
    prepared = prepare(alice, 100)
    body = form_body(prepared["presigned_post"]["fields"], unique_png() + b"\0" * (1024 * 1024))
    response = post_form(client, prepared["presigned_post"]["url"], body)
    assert response.status_code == 413 and response.json()["error"]["code"] == "max_size_exceeded"
    assert bytes_read[-1] <= 9 * 1024 + 100 + 1024
    assert object_keys() == set()


# -- 8. chunked bodies (a server that de-chunks them marks wsgi.input_terminated) --------------
CHUNKED = {"CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked"}


def terminated(body: bytes) -> dict:
    """What gunicorn hands over for a chunked body: no Content-Length, the decoded body as input."""
    return {**CHUNKED, "wsgi.input_terminated": True, "wsgi.input": io.BytesIO(body)}


def test_a_chunked_put_is_stored_whole(alice, client, local):
    data = unique_png()
    prepared = prepare(alice, len(data))
    assert put(client, prepared, data, **terminated(data)).status_code == 204
    assert complete(alice, prepared)["bytes"] == len(data)


def test_a_chunked_form_post_is_stored_whole(alice, client, local):
    data = unique_png()
    prepared = prepare(alice, len(data))
    body = form_body(prepared["presigned_post"]["fields"], data)
    assert post_form(client, prepared["presigned_post"]["url"], body, **terminated(body)).status_code == 204
    assert complete(alice, prepared)["bytes"] == len(data)


def test_a_body_of_unknown_length_is_411_on_every_upload_route(alice, acme_service, client, local):
    prepared = prepare(alice, 1000)
    answers = [
        put(client, prepared, unique_png(), **CHUNKED),
        post_form(client, prepared["presigned_post"]["url"], form_body(prepared["presigned_post"]["fields"],
                                                                       unique_png()), **CHUNKED),
        multipart(alice, "/v1/media/upload", **CHUNKED),
        multipart(alice, "/api/v1/storage/upload", **CHUNKED),
        multipart(acme_service, "/api/v1/storage/images/a.png", **CHUNKED),
    ]
    for response in answers:
        assert response.status_code == 411 and response.json()["error"]["code"] == "length_required"
    assert object_keys() == set() and not list(get_store().list("compute/"))


def multipart(actor, path: str, body: bytes | None = None, **extra):  # noqa: ANN201
    return actor.client.generic("POST", path, body or form_body({}, unique_png()),
                                content_type=f"multipart/form-data; boundary={BOUNDARY}", **extra)


def test_chunked_multipart_uploads_are_stored_whole(alice, acme_service, local):
    for actor, path, size in ((alice, "/v1/media/upload", "bytes"), (alice, "/api/v1/storage/upload", "size"),
                              (acme_service, f"/api/v1/storage/images/{uuid.uuid4().hex}.png", "bytes")):
        data = unique_png()
        body = form_body({}, data)
        response = multipart(actor, path, body, **terminated(body))
        assert response.status_code == 201, response.content
        assert response.json()[size] == len(data)


# -- 10. a signed download serves only a live file ------------------------------------------
def test_a_signed_url_of_a_deleted_file_is_404_at_once(alice, client, local, post_file):
    media = post_file(alice).json()
    url = alice.client.get(f"/v1/media/{media['id']}/presign").json()["url"]
    assert client.get(url.removeprefix(LOCAL)).status_code == 200
    assert alice.client.delete(f"/v1/media/{media['id']}").status_code == 200
    response = client.get(url.removeprefix(LOCAL))
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert client.head(url.removeprefix(LOCAL)).status_code == 404


def test_a_signed_url_keeps_serving_while_a_live_alias_reads_the_object(alice, client, local, post_file):
    data = unique_png()
    original = post_file(alice, data).json()
    prepared = uploaded(alice, client, data)
    complete(alice, prepared)
    url = alice.client.get(f"/v1/media/{prepared['id']}/presign").json()["url"]
    assert alice.client.delete(f"/v1/media/{original['id']}").status_code == 200
    response = client.get(url.removeprefix(LOCAL))
    assert response.status_code == 200 and b"".join(response.streaming_content) == data
    assert alice.client.delete(f"/v1/media/{prepared['id']}").status_code == 200
    assert client.get(url.removeprefix(LOCAL)).status_code == 404


def test_a_signed_url_of_a_staging_key_serves_nothing(alice, client, local):
    from storage_app import signing

    data = unique_png()
    prepared = uploaded(alice, client, data)
    key = upload_staging_key(alice.organization.pk, prepared["id"])
    response = client.get(signing.signed_url(signing.make_grant("get", key, 60)).removeprefix(LOCAL))
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
