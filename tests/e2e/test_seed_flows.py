"""The seeds' own examples, as their clients send them, over HTTP to a live server."""
import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.factories import png_bytes

pytestmark = pytest.mark.e2e


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def origin():
    image = png_bytes(64, 64, noise=32)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(image)))
            self.end_headers()
            self.wfile.write(image)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/image.jpg", image
    server.shutdown()


def test_seed_004_curl_examples(live_server_process, origin):
    base, key = live_server_process.url, live_server_process.service_key
    url, image = origin
    remote = requests.post(f"{base}/v1/media", headers=auth(key), timeout=30, json={
        "source": {"type": "remote_url", "url": url}, "user_id": "user123"})
    assert remote.status_code == 200, remote.text
    body = remote.json()
    assert body["id"].startswith("jan_") and len(body["id"]) == 30
    assert body["mime"] == "image/png" and body["bytes"] == len(image) and body["deduped"] is False
    assert body["presigned_url"] and body["expires_at"]

    data_url = "data:image/png;base64," + base64.b64encode(image).decode()
    again = requests.post(f"{base}/v1/media", headers=auth(key), timeout=30, json={
        "source": {"type": "data_url", "data_url": data_url}, "user_id": "user123"}).json()
    assert again["id"] == body["id"] and again["deduped"] is True

    fresh = png_bytes(16, 16, noise=8)
    prepared = requests.post(f"{base}/v1/media/prepare-upload", headers=auth(key), timeout=30,
                             json={"content_type": "image/png", "user_id": "user123"}).json()
    assert prepared["jan_id"].startswith("jan_") and prepared["presigned_post"]["url"]
    put = requests.put(prepared["presigned_url"], data=fresh, headers={"Content-Type": "image/png"}, timeout=30)
    assert put.status_code == 204 and put.content == b""
    presign = requests.get(f"{base}/v1/media/{prepared['jan_id']}/presign", headers=auth(key), timeout=30).json()
    assert presign["id"] == prepared["jan_id"] and presign["expires_in"] > 0
    assert requests.get(presign["url"], timeout=30).content == fresh

    resolved = requests.post(f"{base}/v1/media/resolve", headers=auth(key), timeout=30,
                             json={"ids": [body["id"], prepared["jan_id"], "jan_01hqr8v9k2x3f4g5h6j7k8m9n1"]}).json()
    assert [m["id"] for m in resolved["media"]] == [body["id"], prepared["jan_id"]]
    assert resolved["not_found"] == ["jan_01hqr8v9k2x3f4g5h6j7k8m9n1"]

    got = requests.get(f"{base}/v1/media/{body['id']}", headers=auth(key), timeout=30).json()
    assert got["mime"] == "image/png" and got["bytes"] == len(image) and got["created_at"] and got["presigned_url"]
    assert requests.get(got["presigned_url"], timeout=30).content == image
    assert requests.get(f"{base}/healthz", timeout=10).json() == {"status": "ok"}


def test_seed_004_multipart_upload(live_server_process):
    base, key = live_server_process.url, live_server_process.service_key
    image = png_bytes(8, 8, noise=64)
    response = requests.post(f"{base}/v1/media/upload", headers=auth(key), timeout=30,
                             files={"file": ("image.png", image, "image/png")}, data={"user_id": "user123"})
    assert response.status_code == 201, response.text
    assert response.json()["bytes"] == len(image)


def test_seed_000_three_step_upload_and_listing(live_server_process):
    base, key = live_server_process.url, live_server_process.user_key
    image = png_bytes(1024, 1024, noise=16)
    step1 = requests.post(f"{base}/v1/media/upload", headers=auth(key), timeout=30,
                          json={"name": "example.png", "mime": "image/png"})
    assert step1.status_code == 201
    result = step1.json()["result"]
    upload = requests.put(result["url"], data=image, headers={"Content-Type": "image/png"}, timeout=30)
    assert upload.status_code == 204
    step3 = requests.put(f"{base}/v1/media/{result['id']}", headers=auth(key), timeout=30)
    done = step3.json()["result"]
    assert done["id"] == result["id"] and done["size"] == "1024x1024" and done["mime"] == "image/png"
    requests.patch(f"{base}/v1/media/{done['id']}", headers=auth(key), timeout=30,
                   json={"model": "stability/sdxl:1.0", "provider": "stability",
                         "prompt": "A beautiful sunset over the ocean"})
    listing = requests.get(f"{base}/v1/media", headers=auth(key), timeout=30,
                           params={"user": "me", "limit": 10, "media": "image", "model": "stability/sdxl",
                                   "provider": "stability", "search": "sunset", "sort": "newest"}).json()
    assert [m["id"] for m in listing["data"]] == [done["id"]]
    content = requests.get(f"{base}/v1/media/{done['id']}/content", headers=auth(key), timeout=30)
    assert content.content == image and content.headers["X-Content-Type-Options"] == "nosniff"
    deleted = requests.delete(f"{base}/v1/media/{done['id']}", headers=auth(key), timeout=30)
    assert deleted.json()["deleted"] is True
    assert requests.get(f"{base}/v1/media/{done['id']}", headers=auth(key), timeout=30).status_code == 404


def test_storage_api_over_http(live_server_process):
    base, key = live_server_process.url, live_server_process.user_key
    csv = b"name,score\nada,10\n"
    uploaded = requests.post(f"{base}/api/v1/storage/upload", headers=auth(key), timeout=30,
                             files={"file": ("scores.csv", csv, "text/csv")}, data={"category": "data_source"})
    assert uploaded.status_code == 201, uploaded.text
    name = uploaded.json()["file_name"]
    link = requests.get(f"{base}/api/v1/storage/objects/{name}/presigned-url", headers=auth(key), timeout=30)
    assert requests.get(link.json()["url"], timeout=30).content == csv
    assert requests.get(f"{base}/api/v1/storage/usage", headers=auth(key), timeout=30).json()["file_count"] >= 1
    missing = requests.get(f"{base}/api/v1/storage/objects/nope.csv/metadata", headers=auth(key), timeout=30)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "object_not_found"
    assert requests.get(f"{base}/api/v1/storage/usage", timeout=30).status_code == 401


def test_a_jan_client_prepares_uploads_and_resolves_a_chat_payload(live_server_process):
    base, key = live_server_process.url, live_server_process.service_key
    image = png_bytes(12, 12, noise=8)
    prepared = requests.post(f"{base}/v1/media/prepare-upload", headers=auth(key), timeout=30,
                             json={"mime_type": "image/png", "user_id": "user123"})
    assert prepared.status_code == 200, prepared.text
    jan = prepared.json()
    assert jan["id"].startswith("jan_") and jan["mime_type"] == "image/png" and jan["expires_in"] > 0
    put = requests.put(jan["upload_url"], data=image, headers={"Content-Type": "image/png"}, timeout=30)
    assert put.status_code == 204
    chat = {"model": "jan-v2-30b", "messages": [{"role": "user", "content": [
        {"type": "text", "text": f"What is data:image/png;{jan['id']}?"},
        {"type": "image_url", "image_url": {"url": jan["id"]}}]}]}
    requests.get(f"{base}/v1/media/{jan['id']}/presign", headers=auth(key), timeout=30)  # completes it
    resolved = requests.post(f"{base}/v1/media/resolve", headers=auth(key), timeout=30, json={"payload": chat})
    assert resolved.status_code == 200, resolved.text
    content = resolved.json()["payload"]["messages"][0]["content"]
    assert requests.get(content[1]["image_url"]["url"], timeout=30).content == image
    assert jan["id"] not in content[0]["text"]
