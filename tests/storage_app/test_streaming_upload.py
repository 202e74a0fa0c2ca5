"""Multipart uploads stream into storage as they arrive: no temporary file, fields in any order.

The Media API (`/v1/media/upload`) and the Storage API (`/api/v1/storage/upload`) read the
file part straight from the request body (`storage_app.uploads.open_upload_form`). Fields that
follow the file are applied before the file is activated; a refusal then leaves nothing.
"""
import hashlib
import os
import random
import threading

import pytest
from django.test.client import BOUNDARY, encode_multipart

from media_app.models import MediaFile
from quotas.models import Quota
from storage_app.uploads import MultipartReader, open_upload_form
from tests.factories import pdf_bytes, unique_png

MEDIA = "/v1/media/upload"
STORAGE = "/api/v1/storage/upload"


def multipart(*parts, boundary: str = "b0undary") -> tuple[bytes, str]:
    """A body from ("name", "value") fields and ("name", "filename", bytes) files, in this order."""
    body = b""
    for part in parts:
        if len(part) == 2:
            body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{part[0]}\"\r\n\r\n"
                     f"{part[1]}\r\n").encode()
        else:
            name, filename, data = part
            body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
                     f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def post(actor, url, *parts):
    body, content_type = multipart(*parts)
    return actor.client.generic("POST", url, data=body, content_type=content_type)


def error_of(response, status):
    assert response.status_code == status, response.content[:500]
    return response.json()["error"]


def nothing_left(org, store_keys):
    quota = Quota.objects.get(organization=org)
    assert not MediaFile.objects.exists()
    assert (quota.used_bytes, quota.reserved_bytes, quota.file_count) == (0, 0, 0)
    assert store_keys("organizations/") == []


@pytest.fixture
def no_spooling(monkeypatch):
    """Fail the test if Django's upload handlers spool or buffer a file part."""
    from django.core.files import uploadhandler

    def refuse(*args, **kwargs):
        pytest.fail("the upload went through Django's upload handlers")

    monkeypatch.setattr(uploadhandler.TemporaryFileUploadHandler, "new_file", refuse)
    monkeypatch.setattr(uploadhandler.MemoryFileUploadHandler, "new_file", refuse)
    monkeypatch.setattr(uploadhandler.TemporaryFileUploadHandler, "receive_data_chunk", refuse)
    monkeypatch.setattr(uploadhandler.MemoryFileUploadHandler, "receive_data_chunk", refuse)


# -- no temporary file -----------------------------------------------------------------------
@pytest.mark.parametrize("url", [MEDIA, STORAGE])
def test_a_multipart_upload_writes_no_temporary_file(alice, backend, no_spooling, url):
    data = os.urandom(3 * 1024 * 1024)
    response = post(alice, url, ("file", "big.bin", data))
    assert response.status_code == 201, response.content
    media = MediaFile.objects.get()
    assert media.bytes == len(data) and media.sha256 == hashlib.sha256(data).hexdigest()


def test_a_large_file_is_hashed_beside_the_writer_and_the_hash_thread_ends(alice, backend):
    data = os.urandom(9 * 1024 * 1024)  # past Digest.THREADED_AFTER
    response = post(alice, MEDIA, ("file", "big.bin", data))
    assert response.status_code == 201, response.content
    assert response.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert not [t for t in threading.enumerate() if t.name == "sha256"]


def test_a_body_over_the_limit_stops_early_and_leaves_nothing(alice, store_keys, monkeypatch):
    from django.test.client import FakePayload

    read = {"bytes": 0}
    original = FakePayload.read

    def counting(self, *args, **kwargs):
        data = original(self, *args, **kwargs)
        read["bytes"] += len(data)
        return data

    monkeypatch.setattr(FakePayload, "read", counting)
    # 15 MiB passes the deployment's 20 MiB check of the declared length; the category, sent
    # first, allows 5 MiB: the stream is cut there.
    response = post(alice, MEDIA, ("category", "profile_image"),
                    ("file", "big.png", unique_png() + os.urandom(15 * 1024 * 1024)))
    assert error_of(response, 413)["code"] == "max_size_exceeded"
    assert read["bytes"] < 7 * 1024 * 1024  # a piece past the limit, not the whole body
    nothing_left(alice.organization, store_keys)
    assert not [t for t in threading.enumerate() if t.name == "sha256"]


# -- fields after the file --------------------------------------------------------------------
def test_fields_after_the_file_are_recorded(alice, backend):
    response = post(alice, MEDIA, ("file", "cat.png", unique_png()), ("visibility", "public"),
                    ("model", "stability/sdxl"), ("provider", "stability"), ("prompt", "a cat"),
                    ("generation", '{"seed": 7}'))
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["visibility"], body["model"], body["provider"], body["prompt"], body["generation"]) == (
        "public", "stability/sdxl", "stability", "a cat", {"seed": 7})
    media = MediaFile.objects.get(pk=body["id"])
    assert media.status == "active" and media.visibility == "public" and media.prompt == "a cat"


def test_fields_before_and_after_the_file_mix_and_the_last_value_wins(alice):
    response = post(alice, MEDIA, ("prompt", "first"), ("provider", "p"), ("file", "cat.png", unique_png()),
                    ("prompt", "second"))
    assert response.status_code == 201
    assert (response.json()["prompt"], response.json()["provider"]) == ("second", "p")


def test_a_user_id_after_the_file_moves_the_object_to_that_users_folder(acme_service, bob, backend, store_keys):
    data = unique_png()
    response = post(acme_service, MEDIA, ("file", "cat.png", data), ("user_id", "bob"))
    assert response.status_code == 201, response.content
    media = MediaFile.objects.get(pk=response.json()["id"])
    assert media.owner == bob.user
    assert media.storage_key.startswith(f"organizations/{bob.organization.pk}/files/{bob.user.pk}/")
    assert store_keys("organizations/") == [media.storage_key]
    content = acme_service.client.get(f"/v1/media/{media.pk}/content")
    assert content.status_code in (200, 302)


def test_a_late_user_id_deduplicates_against_the_named_users_files(acme_service, bob, store_keys):
    data = unique_png()
    first = post(acme_service, MEDIA, ("user_id", "bob"), ("file", "cat.png", data)).json()
    second = post(acme_service, MEDIA, ("file", "cat.png", data), ("user_id", "bob"))
    assert second.status_code == 200 and second.json()["id"] == first["id"] and second.json()["deduped"] is True
    assert len(store_keys("organizations/")) == 1


def test_a_late_user_id_with_a_user_key_is_refused_and_leaves_nothing(alice, bob, backend, store_keys):
    response = post(alice, MEDIA, ("file", "cat.png", unique_png()), ("user_id", "bob"))
    assert error_of(response, 403)["code"] == "user_id_not_allowed"
    nothing_left(alice.organization, store_keys)


@pytest.mark.parametrize("url", [MEDIA, STORAGE])
def test_a_late_category_the_content_does_not_fit_is_refused_and_leaves_nothing(alice, backend, store_keys, url):
    response = post(alice, url, ("file", "avatar.png", pdf_bytes()), ("category", "profile_image"))
    assert error_of(response, 415)["code"] == "unsupported_media_type"
    nothing_left(alice.organization, store_keys)


@pytest.mark.parametrize("url", [MEDIA, STORAGE])
def test_a_late_category_whose_limit_the_file_passes_is_refused(alice, store_keys, url):
    from storage_app.categories import PROFILE_IMAGE_MAX_BYTES

    big = unique_png() + b"\0" * PROFILE_IMAGE_MAX_BYTES
    response = post(alice, url, ("file", "avatar.png", big), ("category", "profile_image"))
    assert error_of(response, 413)["code"] == "max_size_exceeded"
    nothing_left(alice.organization, store_keys)


@pytest.mark.parametrize("url", [MEDIA, STORAGE])
def test_an_unknown_late_category_is_a_400_and_leaves_nothing(alice, store_keys, url):
    response = post(alice, url, ("file", "cat.png", unique_png()), ("category", "selfies"))
    error = error_of(response, 400)
    assert (error["code"], error["param"]) == ("invalid_category", "category")
    nothing_left(alice.organization, store_keys)


def test_a_late_category_that_fits_is_recorded(alice):
    response = post(alice, STORAGE, ("file", "t.csv", b"a,b\n1,2\n"), ("category", "data_source"))
    assert response.status_code == 201, response.content
    assert response.json()["category"] == "data_source"
    assert MediaFile.objects.get().category == "data_source"


def test_a_late_field_that_is_not_valid_is_a_400_and_leaves_nothing(alice, store_keys):
    response = post(alice, MEDIA, ("file", "cat.png", unique_png()), ("visibility", "everyone"))
    assert error_of(response, 400)["param"] == "visibility"
    nothing_left(alice.organization, store_keys)


# -- bad bodies ------------------------------------------------------------------------------
def test_a_second_file_is_refused_and_leaves_nothing(alice, store_keys):
    response = post(alice, MEDIA, ("file", "a.png", unique_png()), ("file", "b.png", unique_png()))
    assert error_of(response, 400)["code"] == "multiple_files"
    nothing_left(alice.organization, store_keys)


def test_a_body_cut_short_is_refused_and_leaves_nothing(alice, store_keys):
    body, content_type = multipart(("file", "cat.png", unique_png() + os.urandom(100_000)))
    response = alice.client.generic("POST", MEDIA, data=body[:60_000], content_type=content_type)
    assert error_of(response, 400)["code"] == "upload_interrupted"
    nothing_left(alice.organization, store_keys)


def test_a_client_that_goes_away_is_a_400_not_a_storage_failure(alice, store_keys, monkeypatch):
    from django.test.client import FakePayload

    original = FakePayload.read
    calls = {"n": 0}

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError("connection reset")
        return original(self, *args, **kwargs)

    monkeypatch.setattr("storage_app.uploads.READ_BLOCK", 64 * 1024)
    monkeypatch.setattr(FakePayload, "read", failing)
    response = post(alice, MEDIA, ("file", "cat.png", unique_png() + os.urandom(300_000)))
    assert error_of(response, 400)["code"] == "upload_interrupted"
    nothing_left(alice.organization, store_keys)


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=\"\"",
                                          "multipart/form-data; boundary=" + "x" * 300])
def test_a_missing_or_bad_boundary_is_a_400(alice, content_type):
    response = alice.client.generic("POST", MEDIA, data=b"--x\r\n", content_type=content_type)
    assert response.status_code == 400


def test_no_file_part_is_a_400_with_param(alice):
    error = error_of(post(alice, MEDIA, ("prompt", "nothing")), 400)
    assert (error["param"], error["code"]) == ("file", "required")


# -- the parser ------------------------------------------------------------------------------
class Trickle:
    """A request body that answers reads in random, often tiny, pieces."""

    def __init__(self, data: bytes, rng: random.Random) -> None:
        self.data, self.position, self.rng = data, 0, rng

    def read(self, n: int) -> bytes:
        size = min(n, self.rng.choice([1, 2, 7, 64, 1000, 70_000]))
        out = self.data[self.position:self.position + size]
        self.position += len(out)
        return out


def test_the_parser_finds_every_part_whatever_the_piece_sizes(monkeypatch):
    from django.core.files.uploadedfile import SimpleUploadedFile

    rng = random.Random(2024)
    for _ in range(300):
        monkeypatch.setattr("storage_app.uploads.READ_BLOCK", rng.choice([5, 64, 4096, 1 << 20]))
        expected = []
        for i in range(rng.randint(0, 4)):
            # Content that looks like the start of a boundary, right where a piece may end.
            almost = BOUNDARY.encode()[:rng.randint(0, len(BOUNDARY) - 1)]  # never the whole boundary
            data = os.urandom(rng.choice([0, 1, 50, 5000])) + b"\r\n--" + almost
            is_file = rng.random() < 0.5
            expected.append((f"f{i}", data, is_file))
        form = {name: SimpleUploadedFile("x.bin", data) if is_file else data.decode("latin-1")
                for name, data, is_file in expected}
        body = encode_multipart(BOUNDARY, form)
        reader = MultipartReader(Trickle(body, rng), BOUNDARY.encode(), len(body))
        got = []
        while (part := reader.next_part()) is not None:
            chunks = []
            while chunk := reader.read(rng.choice([1, 3, 100, 1 << 20])):
                chunks.append(bytes(chunk))
            got.append((part.name, b"".join(chunks), part.filename is not None))
        assert got == [(n, d if f else d.decode("latin-1").encode(), f) for n, d, f in expected]


def test_an_already_parsed_body_is_used_as_it_is(rf):
    from tests.factories import upload

    request = rf.post("/v1/media/upload", {"prompt": "a cat", "file": upload("cat.png", b"png")})
    assert request.POST["prompt"] == "a cat"  # parsed, e.g. by a session's CSRF check
    form = open_upload_form(request)
    assert form.fields == {"prompt": "a cat"} and form.file.name == "cat.png" and form.bound == 3
    assert form.finish() == {"prompt": "a cat"}


def test_a_source_that_reuses_its_buffer_is_hashed_and_stored_as_it_was(backend):
    """Chunks are hashed on another thread and written in batches: a reused buffer must not leak in."""
    from storage_app.backends import get_store

    data = os.urandom(7 * 1024 * 1024)

    class Reusing:
        def __init__(self) -> None:
            self.position, self.buffer = 0, bytearray(64 * 1024)

        def read(self, n: int) -> bytearray:
            piece = data[self.position:self.position + min(n, len(self.buffer))]
            self.position += len(piece)
            self.buffer[:len(piece)] = piece
            return self.buffer[:len(piece)] if len(piece) < len(self.buffer) else self.buffer

    store = get_store()
    saved = store.save_stream("organizations/1/files/1/reused.bin", Reusing(), max_bytes=10**9)
    assert saved.sha256 == hashlib.sha256(data).hexdigest()
    assert store.read_bytes(saved.key) == data
