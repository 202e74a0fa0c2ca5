"""Slow clients and malformed requests against a live gunicorn started as in production
(config/gunicorn.conf.py defaults: 2 workers x 32 threads, every limit at its default but the grace
period, shortened so the test is quick)."""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.conftest import _free_port
from tests.e2e.conftest import _manage, server_env, start_gunicorn, stop

pytestmark = pytest.mark.e2e

TRICKLERS = 32
BOUNDARY = "trickle-boundary"


@dataclass
class Server:
    port: int
    attacker_key: str  # the organization whose uploads trickle
    other_key: str  # another organization


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    var = tmp_path_factory.mktemp("slow-clients")
    port = _free_port()
    env = server_env(var, port, MEDIA_BODY_GRACE="2s")
    _manage(env, "migrate", "--noinput")
    attacker = _manage(env, "create_api_key", "--org", "slowpoke", "--user", "slow")
    other = _manage(env, "create_api_key", "--org", "bystander", "--user", "busy")
    process = start_gunicorn(env, port, var / "server.log")
    yield Server(port=port, attacker_key=attacker, other_key=other)
    stop(process)


@dataclass
class Trickler:
    """Sends a multipart upload a few bytes at a time and never finishes it; reads any answer."""

    port: int
    key: str
    rate: int  # bytes per second
    answer: bytes = b""
    answered_after: float | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.bin\"\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n").encode()
            sock.sendall((f"POST /v1/media/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.key}\r\n"
                          f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                          f"Content-Length: {len(head) + 10_000_000}\r\n\r\n").encode() + head)
            step = max(self.rate // 10, 1)
            while not self.done.is_set():
                if select.select([sock], [], [], 0)[0]:  # an answer: like an attacker, keep sending anyway
                    self._read_answer(sock, start)
                try:
                    sock.sendall(b"\0" * step)
                except OSError:  # the server closed the connection
                    self._read_answer(sock, start)
                    return
                self.done.wait(0.1)

    def _read_answer(self, sock: socket.socket, start: float) -> None:
        if self.answered_after is not None:
            return
        try:
            sock.setblocking(False)
            self.answer = sock.recv(65536)
        except OSError:
            pass
        finally:
            sock.setblocking(True)
        self.answered_after = time.monotonic() - start
        self._read_rest(sock)

    def _read_rest(self, sock: socket.socket) -> None:
        """The rest of the answer when one recv held only part of it (headers and body may come apart)."""
        sock.settimeout(2)
        try:
            while b"\r\n\r\n" not in self.answer or len(self.answer.split(b"\r\n\r\n", 1)[1]) < self._length():
                more = sock.recv(65536)
                if not more:
                    return
                self.answer += more
        except OSError:
            return

    def _length(self) -> int:
        for line in self.answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                return int(value.strip())
        return 0

    @property
    def status(self) -> int | None:
        return int(self.answer.split(b" ", 2)[1]) if self.answer.startswith(b"HTTP/1.1 ") else None

    @property
    def error_code(self) -> str:
        return json.loads(self.answer.split(b"\r\n\r\n", 1)[1])["error"]["code"]

    def header(self, name: str) -> str | None:
        for line in self.answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
            key, _, value = line.decode("latin-1").partition(":")
            if key.lower() == name.lower():
                return value.strip()
        return None


def start(tricklers: list[Trickler]) -> list[threading.Thread]:
    threads = [threading.Thread(target=t.run, daemon=True) for t in tricklers]
    for thread in threads:
        thread.start()
    return threads


def timed(call) -> tuple[float, requests.Response]:  # noqa: ANN001
    began = time.monotonic()
    response = call()
    return time.monotonic() - began, response


def test_32_trickling_uploads_leave_healthz_and_other_uploads_fast_and_a_too_slow_one_gets_408(server):
    tricklers = [Trickler(server.port, server.attacker_key, rate=2048) for _ in range(TRICKLERS)]
    too_slow = Trickler(server.port, server.other_key, rate=200)
    threads = start([*tricklers, too_slow])
    try:
        # Sampled for 8 s: while refused tricklers are drained and closed, and admitted ones trickle on.
        healthz, upload = [], None
        for sample in range(16):
            time.sleep(0.5)
            healthz.append(timed(lambda: requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=10)))
            if sample == 6:
                upload_took, upload = timed(lambda: requests.post(
                    f"http://127.0.0.1:{server.port}/v1/media/upload", timeout=10,
                    headers={"Authorization": f"Bearer {server.other_key}"},
                    files={"file": ("big.bin", bytes(range(256)) * 4096, "application/octet-stream")}))
        deadline = time.monotonic() + 10
        while too_slow.answered_after is None and time.monotonic() < deadline:
            time.sleep(0.1)
        still_uploading = [t for t in tricklers if t.answered_after is None]
        refused = [t for t in tricklers if t.answered_after is not None]
    finally:
        for t in [*tricklers, too_slow]:
            t.done.set()
        for thread in threads:
            thread.join(timeout=5)

    worst_healthz = max(took for took, _ in healthz)
    print(f"\nhealthz under {TRICKLERS} tricklers: worst {worst_healthz * 1000:.0f} ms of {len(healthz)}; "
          f"1 MB upload by another organization: {upload_took * 1000:.0f} ms; "
          f"{len(still_uploading)} tricklers uploading, {len(refused)} refused; "
          f"408 for the too-slow one after {too_slow.answered_after:.1f} s")
    assert all(response.status_code == 200 for _, response in healthz)
    assert worst_healthz < 1.0
    assert upload.status_code == 201, upload.text
    assert upload.json()["bytes"] == 1024 * 1024 and upload_took < 1.0
    # The organization's limit (8 per worker, in-process counting) refused the rest at once.
    assert 8 <= len(still_uploading) <= 16
    assert {t.status for t in refused} == {429}
    assert {t.error_code for t in refused} == {"too_many_concurrent_uploads"}
    assert all(t.header("Retry-After") == "5" for t in refused)
    assert too_slow.status == 408 and too_slow.error_code == "request_timeout"
    assert too_slow.answered_after < 8


def raw_request(port: int, data: bytes) -> tuple[int, str, dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *headers = head.decode("latin-1").split("\r\n")
    content_type = next(h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("content-type:"))
    return int(status_line.split(" ")[1]), content_type, json.loads(body)


def test_a_10kb_url_answers_414_in_the_envelope(server):
    status, content_type, body = raw_request(
        server.port, f"GET /v1/media?q={'x' * 10_000} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    assert status == 414 and content_type == "application/json"
    assert body["error"]["code"] == "uri_too_long"


def test_a_bad_request_line_answers_400_in_the_envelope(server):
    status, content_type, body = raw_request(server.port, b"THIS IS NOT HTTP\r\n\r\n")
    assert status == 400 and content_type == "application/json"
    assert body["error"]["code"] == "invalid_request"


def test_too_large_header_fields_answer_431_in_the_envelope(server):
    headers = "".join(f"X-Filler-{i}: {'a' * 100}\r\n" for i in range(200))
    status, content_type, body = raw_request(
        server.port, f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
    assert status == 431 and content_type == "application/json"
    assert body["error"]["code"] == "headers_too_large"


def _worker_pids(master: int, count: int) -> list[int]:
    deadline = time.monotonic() + 30
    while len(pids := Path(f"/proc/{master}/task/{master}/children").read_text().split()) < count:
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.1)
    return [int(pid) for pid in pids]


def _connections_held(pid: int, port: int) -> int:
    """Established connections to `port` among the sockets process `pid` holds (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    held = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, state, inode = int(fields[1].split(":")[1], 16), fields[3], fields[9]
        held += local_port == port and state == "01" and inode in inodes
    return held


def test_a_worker_with_every_thread_busy_leaves_new_connections_to_a_worker_with_a_free_one(tmp_path):
    """2 workers x 4 threads. While one worker is stopped, the other takes 6 trickling uploads:
    it accepts 4, one per thread, and the other 2 wait in the listening socket's backlog. When the
    stopped worker resumes it takes them, and a /healthz sent meanwhile is answered at once instead of
    queueing behind the busy worker's uploads."""
    port = _free_port()
    env = server_env(tmp_path, port, MEDIASTORE_THREADS="4")
    _manage(env, "migrate", "--noinput")
    key = _manage(env, "create_api_key", "--org", "bursty", "--user", "burst")
    process = start_gunicorn(env, port, tmp_path / "server.log")
    tricklers = [Trickler(port, key, rate=2048) for _ in range(6)]
    busy, idle = _worker_pids(process.pid, 2)
    os.kill(idle, signal.SIGSTOP)
    try:
        threads = start(tricklers)
        deadline = time.monotonic() + 10
        while _connections_held(busy, port) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)  # time to take the other two as well, were it to
        held = _connections_held(busy, port)
        health = {}
        checker = threading.Thread(target=lambda: health.update(
            answer=timed(lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=20))))
        checker.start()
        time.sleep(0.5)
        resumed = time.monotonic()
        os.kill(idle, signal.SIGCONT)
        checker.join(timeout=25)
        answered_after_resume = time.monotonic() - resumed
    finally:
        os.kill(idle, signal.SIGCONT)
        for t in tricklers:
            t.done.set()
        stop(process)
    for thread in threads:
        thread.join(timeout=5)
    assert held == 4
    assert health["answer"][1].status_code == 200
    assert answered_after_resume < 1.0
