"""Chunked request bodies (`Transfer-Encoding: chunked`, no Content-Length) on every upload route,
sent to gunicorn as real clients send them: each is stored whole, never as 0 bytes."""
import uuid

import pytest
import requests

from tests.factories import png_bytes

pytestmark = pytest.mark.e2e
BOUNDARY = "chunked-boundary"


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def chunked(data: bytes, size: int = 1000):  # noqa: ANN201 - a generator: requests sends it chunked
    return (data[i:i + size] for i in range(0, len(data), size))


def form(fields: dict[str, str], data: bytes) -> bytes:
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
                 "Content-Type: image/png\r\n\r\n".encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def prepare(base: str, key: str) -> dict:
    response = requests.post(f"{base}/v1/media/prepare-upload", headers=auth(key), timeout=30,
                             json={"content_type": "image/png"})
    assert response.status_code == 200, response.text
    return response.json()


def completed_size(base: str, key: str, media_id: str) -> int:
    response = requests.put(f"{base}/v1/media/{media_id}", headers=auth(key), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["bytes"]


def test_a_chunked_put_to_a_signed_url_is_stored_whole(live_server_process):
    base, key = live_server_process.url, live_server_process.user_key
    data = png_bytes(40, 40, noise=5000)
    prepared = prepare(base, key)
    put = requests.put(prepared["presigned_url"], data=chunked(data), headers={"Content-Type": "image/png"},
                       timeout=30)
    assert put.status_code == 204, put.text
    assert completed_size(base, key, prepared["id"]) == len(data)


def test_a_chunked_form_post_to_a_signed_url_is_stored_whole(live_server_process):
    base, key = live_server_process.url, live_server_process.user_key
    data = png_bytes(40, 40, noise=5000)
    prepared = prepare(base, key)
    body = form(prepared["presigned_post"]["fields"], data)
    post = requests.post(prepared["presigned_post"]["url"], data=chunked(body), headers=MULTIPART, timeout=30)
    assert post.status_code == 204, post.text
    assert completed_size(base, key, prepared["id"]) == len(data)


@pytest.mark.parametrize("route,size_field,who", [
    ("/v1/media/upload", "bytes", "user_key"),
    ("/api/v1/storage/upload", "size", "user_key"),
    ("/api/v1/storage/images/chunked/{name}.png", "bytes", "service_key"),
])
def test_a_chunked_multipart_upload_is_stored_whole(live_server_process, route, size_field, who):
    base, key = live_server_process.url, getattr(live_server_process, who)
    data = png_bytes(40, 40, noise=5000)
    response = requests.post(base + route.format(name=uuid.uuid4().hex), data=chunked(form({}, data)),
                             headers={**auth(key), **MULTIPART}, timeout=30)
    assert response.status_code == 201, response.text
    assert response.json()[size_field] == len(data)
