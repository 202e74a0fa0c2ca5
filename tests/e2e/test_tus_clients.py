"""Real tus clients against a live server: tuspy (Python) and tus-js-client (node) upload a file in
chunks through a proxy that cuts the connection once mid-upload; each client resumes from the
server's offset, and the stored file has every byte. Local and S3 (moto) backends, encryption on
and off."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest
import requests

from tests.conftest import _free_port, make_bucket
from tests.e2e.conftest import _manage, server_env, start_gunicorn, stop

pytestmark = pytest.mark.e2e
TUS_JS = Path(__file__).resolve().parent / "tus_js"
MIB = 1024 * 1024
FILE_SIZE = 20 * MIB + 12345
CHUNK = 6 * MIB
CUT_AFTER = 9 * MIB  # bytes through the proxy before it closes the connection (mid second chunk)


class CuttingProxy:
    """A TCP proxy in front of the live server that closes one connection, both ways, once
    `cut_after` bytes from clients have gone through it: the client's request fails mid-body."""

    def __init__(self, target_port: int, cut_after: int) -> None:
        self.target_port, self.cut_after = target_port, cut_after
        self.forwarded, self.cuts = 0, 0
        self._lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while data := source.recv(256 * 1024):
                if from_client and self._cut_now(len(data)):
                    break
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _cut_now(self, n: int) -> bool:
        with self._lock:
            self.forwarded += n
            if self.cuts == 0 and self.forwarded > self.cut_after:
                self.cuts = 1
                return True
        return False

    def close(self) -> None:
        self.listener.close()


@pytest.fixture(scope="module", params=["local-none", "local-app", "s3-none", "s3-app"])
def tus_server(request, tmp_path_factory):
    backend, encryption = request.param.split("-")
    var = tmp_path_factory.mktemp(f"tus-{request.param}")
    port = _free_port()
    extra = {"MEDIA_ENCRYPTION": encryption}
    if backend == "s3":
        endpoint = request.getfixturevalue("moto_endpoint")
        extra.update(MEDIA_STORAGE_BACKEND="s3", MEDIA_S3_BUCKET=make_bucket(endpoint), MEDIA_S3_ENDPOINT=endpoint,
                     MEDIA_S3_ACCESS_KEY_ID="test", MEDIA_S3_SECRET_ACCESS_KEY="test", MEDIA_S3_USE_PATH_STYLE="true")
    env = server_env(var, port, **extra)
    if encryption == "app":
        env["MEDIA_MASTER_KEYS"] = _manage({**env, "MEDIA_ENCRYPTION": "none"}, "create_master_key", "--print")
    _manage(env, "migrate", "--noinput")
    key = _manage(env, "create_api_key", "--org", "tus", "--user", "uploader")
    server = start_gunicorn(env, port, var / "server.log")
    yield {"url": f"http://127.0.0.1:{port}", "port": port, "key": key}
    stop(server)


@pytest.fixture
def proxy(tus_server):
    proxy = CuttingProxy(tus_server["port"], CUT_AFTER)
    yield proxy
    proxy.close()


@pytest.fixture
def video(tmp_path) -> Path:
    path = tmp_path / "clip.mp4"
    # An MP4 `ftyp` box, then noise: sniffed as video/mp4.
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(FILE_SIZE - 24))
    return path


def assert_stored_whole(server: dict, media_id: str, path: Path) -> None:
    auth = {"Authorization": f"Bearer {server['key']}"}
    media = requests.get(f"{server['url']}/v1/media/{media_id}", headers=auth, timeout=30).json()
    data = path.read_bytes()
    assert (media["status"], media["bytes"], media["mime"]) == ("active", len(data), "video/mp4")
    assert media["sha256"] == hashlib.sha256(data).hexdigest()
    content = requests.get(f"{server['url']}/v1/media/{media_id}/content", headers=auth, timeout=60)
    assert content.status_code == 200 and hashlib.sha256(content.content).digest() == hashlib.sha256(data).digest()


def test_tuspy_resumes_after_the_connection_is_cut(tus_server, proxy, video):
    from tusclient import client as tus_client

    client = tus_client.TusClient(f"http://127.0.0.1:{proxy.port}/v1/uploads/",
                                  headers={"Authorization": f"Bearer {tus_server['key']}"})
    uploader = client.uploader(str(video), chunk_size=CHUNK, retries=3, retry_delay=0.2, upload_checksum=True,
                               metadata={"filename": "clip.mp4", "content_type": "video/mp4", "model": "veo-3"})
    uploader.upload()
    assert proxy.cuts == 1
    media_id = uploader.request.response_headers["mediastore-media-id"]
    assert_stored_whole(tus_server, media_id, video)


def test_tus_js_client_resumes_after_the_connection_is_cut(tus_server, proxy, video):
    node = shutil.which("node")
    assert node, "node (v20) is needed for the tus-js-client test"
    assert (TUS_JS / "node_modules" / "tus-js-client").is_dir(), "run `make tus-js` (npm ci in tests/e2e/tus_js)"
    metadata = json.dumps({"filename": "clip.mp4", "content_type": "video/mp4"})
    done = subprocess.run([node, "upload.js", f"http://127.0.0.1:{proxy.port}/v1/uploads/", tus_server["key"],
                           str(video), str(CHUNK), metadata], cwd=TUS_JS, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert proxy.cuts == 1 and result["failures"] >= 1
    assert_stored_whole(tus_server, result["mediaId"], video)
