"""POST /v1/media from a remote URL, against a real HTTP server on 127.0.0.1."""
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from media_app.models import MediaFile
from quotas.models import Quota
from tests.factories import unique_png
from tests.media_app.conftest import error_of

IMAGE = unique_png()


class Handler(BaseHTTPRequestHandler):
    hits: list[str] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        Handler.hits.append(self.path)
        if self.path == "/cat.png":
            self._send(IMAGE, "image/png")
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/cat.png")
            self.end_headers()
        elif self.path == "/to-metadata":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
        elif self.path == "/big":
            self._send(IMAGE + b"\0" * 5000, "image/png")
        elif self.path == "/lying":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()  # no Content-Length: read until close
            self.wfile.write(IMAGE + b"\0" * 5000)
        elif self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.5)
        else:
            self._send(b"missing", "text/plain", status=404)

    def _send(self, body: bytes, content_type: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def origin():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def loopback_allowed(settings):
    settings.MEDIA_REMOTE_FETCH_ALLOW_NETWORKS = ["127.0.0.0/8"]
    settings.MEDIA_REMOTE_FETCH_TIMEOUT = 2


def from_url(actor, url, **extra):
    return actor.client.post("/v1/media", {"source": {"type": "remote_url", "url": url}, **extra}, format="json")


def test_a_remote_image_is_fetched_and_stored(alice, origin, loopback_allowed):
    response = from_url(alice, f"{origin}/cat.png", prompt="from the web")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["bytes"] == len(IMAGE) and body["mime"] == "image/png" and body["original_name"] == "cat.png"
    media = MediaFile.objects.get(pk=body["id"])
    assert media.source == "remote_url" and media.source_url == f"{origin}/cat.png"
    assert from_url(alice, f"{origin}/redirect").json()["deduped"] is True


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/cat.png", "http://localhost:{port}/cat.png", "http://10.0.0.1/x", "http://172.16.0.1/x",
    "http://192.168.1.1/x", "http://169.254.169.254/latest/meta-data/", "http://[::1]:{port}/cat.png",
    "http://[::ffff:127.0.0.1]:{port}/cat.png", "http://0.0.0.0:{port}/cat.png", "http://2130706433:{port}/cat.png",
    "http://0177.0.0.1:{port}/cat.png",
])
def test_internal_addresses_are_refused_without_fetching(alice, origin, url):
    Handler.hits.clear()
    port = origin.rsplit(":", 1)[1]
    error = error_of(from_url(alice, url.format(port=port)), 400)
    assert error["code"] == "url_not_allowed"
    assert Handler.hits == [] and not MediaFile.objects.exists()


def test_a_redirect_to_an_internal_address_is_refused(alice, origin, settings):
    settings.MEDIA_REMOTE_FETCH_ALLOW_NETWORKS = ["127.0.0.1/32"]
    assert error_of(from_url(alice, f"{origin}/to-metadata"), 400)["code"] == "url_not_allowed"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x.png", "gopher://example.com/x",
                                 "http://user:secret@example.com/x.png"])
def test_other_schemes_and_credentials_are_400(alice, url):
    assert error_of(from_url(alice, url), 400)["code"] == "url_not_allowed"


def test_a_slow_server_is_a_502_within_the_timeout(alice, origin, loopback_allowed):
    started = time.monotonic()
    assert error_of(from_url(alice, f"{origin}/slow"), 502)["code"] == "remote_fetch_timeout"
    assert time.monotonic() - started < 4
    assert not MediaFile.objects.exists()


@pytest.mark.parametrize("path", ["/big", "/lying"])
def test_a_body_over_the_limit_is_413_and_nothing_is_stored(alice, origin, loopback_allowed, settings, path,
                                                             store_keys):
    settings.MEDIA_MAX_BYTES = len(IMAGE) + 100
    assert error_of(from_url(alice, f"{origin}{path}"), 413)["code"] == "max_size_exceeded"
    assert not MediaFile.objects.exists() and store_keys("organizations/") == []
    quota = Quota.objects.get(organization=alice.organization)
    assert (quota.used_bytes, quota.reserved_bytes) == (0, 0)


def test_a_missing_remote_file_is_502(alice, origin, loopback_allowed):
    assert error_of(from_url(alice, f"{origin}/nothing"), 502)["code"] == "remote_fetch_failed"
