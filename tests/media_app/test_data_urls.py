"""Data URLs (`POST /v1/media` with a `data_url` source) of every size up to the limit."""
import base64
import hashlib
import json
import os

import pytest
from django.conf import settings as django_settings

from media_app.models import MediaFile
from media_app.sources import _B64_CHUNK
from tests.media_app.conftest import error_of

KIB, MIB = 1024, 1024 * 1024


def content(size: int) -> bytes:
    """Bytes no sniffer recognises (a NUL first), unique so dedup never answers."""
    return (b"\x00ms" + os.urandom(size))[:size]


def encoded(data: bytes, style: str) -> str:
    text = base64.b64encode(data).decode()
    if style == "unpadded":
        return text.rstrip("=")
    if style in ("mime", "pem"):
        width, newline = (76, "\r\n") if style == "mime" else (64, "\n")
        return newline.join(text[i:i + width] for i in range(0, len(text), width)) + newline
    return text


def post_data_url(actor, payload: str, mime: str = "application/octet-stream"):
    return actor.client.post("/v1/media", {"source": {"type": "data_url", "data_url": f"data:{mime};base64,{payload}"}},
                             format="json")


def assert_stored(response, data: bytes) -> None:
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert (body["bytes"], body["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize("size", [64 * KIB - 2, 64 * KIB - 1, 64 * KIB, 64 * KIB + 1, 64 * KIB + 2, 1 * MIB])
@pytest.mark.parametrize("style", ["padded", "unpadded", "mime", "pem"])
def test_a_data_url_of_any_size_and_layout_is_stored_whole(alice, size, style):
    data = content(size)
    assert_stored(post_data_url(alice, encoded(data, style)), data)


@pytest.mark.parametrize("offset", [-3, -2, -1, 0, 1, 2, 3])
def test_whitespace_straddling_a_decode_step_is_skipped(alice, offset):
    data = content(3 * _B64_CHUNK)
    text = base64.b64encode(data).decode()
    cut = _B64_CHUNK + offset  # a run of whitespace around the first slice's end, and inside later slices
    payload = text[:cut] + " \r\n\t " + text[cut:cut + 5] + "\n" * 7 + text[cut + 5:2 * cut] + "\f\n" + text[2 * cut:]
    assert_stored(post_data_url(alice, payload), data)


def test_a_data_url_at_the_plans_file_limit_is_stored_and_one_byte_more_refused(alice):
    plan = alice.organization.plan
    plan.max_file_bytes = 100 * KIB + 1
    plan.save()
    assert_stored(post_data_url(alice, encoded(data := content(100 * KIB + 1), "mime")), data)
    response = post_data_url(alice, encoded(content(100 * KIB + 2), "mime"))
    assert error_of(response, 413)["code"] == "max_size_exceeded"
    assert MediaFile.objects.count() == 1


def test_the_request_body_limit_lets_a_wrapped_data_url_at_the_file_limit_through(alice):
    data = content(django_settings.MEDIA_MAX_BYTES)
    plan = alice.organization.plan
    plan.max_file_bytes = len(data)
    plan.save()
    body = {"source": {"type": "data_url", "data_url": "data:application/octet-stream;base64," + encoded(data, "pem")},
            "prompt": "\u00e9" * 20000, "model": "m" * 200, "provider": "p" * 100}
    assert len(json.dumps(body).encode()) <= django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert_stored(alice.client.post("/v1/media", body, format="json"), data)


@pytest.mark.parametrize("payload", ["AAAAA", "AA==AAAA", "AAA=\nA", "AA=A", "AAAA!AAA",
                                     "A" * (_B64_CHUNK - 2) + "==" + "AAAA"])  # padding ending a decode step
def test_malformed_base64_is_refused(alice, payload):
    assert error_of(post_data_url(alice, payload), 400)["code"] == "invalid_data_url"
    assert not MediaFile.objects.exists()
