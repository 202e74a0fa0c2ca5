"""Slow request bodies (config/bodyguard.py): idle timeout and minimum rate, answered 408."""
import io
import socket
import threading
import time

import pytest

from config.bodyguard import BodyLimits, GuardedInput
from config.errors import RequestTimeout
from tests.factories import png_bytes

LIMITS = BodyLimits(idle_timeout=30, min_rate=1000, grace=10)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class SlowStream:
    """A body whose every read takes `seconds_per_read` of the clock and answers at most `per_read` bytes."""

    def __init__(self, data: bytes, clock: Clock, seconds_per_read: float, per_read: int = 1000) -> None:
        self.source = io.BytesIO(data)
        self.clock = clock
        self.seconds_per_read = seconds_per_read
        self.per_read = per_read
        self.failed = False  # as gunicorn's Body

    def read(self, n: int = -1) -> bytes:
        self.clock.now += self.seconds_per_read
        return self.source.read(min(n, self.per_read))


def test_a_body_at_the_minimum_rate_is_read_whole():
    clock = Clock()
    data = bytes(range(256)) * 100
    guarded = GuardedInput(SlowStream(data, clock, seconds_per_read=0.9), LIMITS, clock=clock)
    assert guarded.read() == data


def test_a_body_below_the_minimum_rate_after_the_grace_period_answers_request_timeout():
    clock = Clock()
    raw = SlowStream(b"x" * 100_000, clock, seconds_per_read=2)  # 500 bytes per second
    guarded = GuardedInput(raw, LIMITS, clock=clock)
    with pytest.raises(RequestTimeout) as caught:
        guarded.read(100_000)
    assert caught.value.status == 408 and caught.value.code == "request_timeout"
    assert 10 < clock.now <= 24  # not before the grace period, and soon after it
    assert raw.failed  # gunicorn closes the connection instead of draining the rest


def test_a_slow_start_is_forgiven_within_the_grace_period():
    clock = Clock()
    guarded = GuardedInput(SlowStream(b"x" * 500, clock, seconds_per_read=8), LIMITS, clock=clock)
    assert guarded.read(500) == b"x" * 500


def test_an_idle_socket_timeout_answers_request_timeout():
    class Idle:
        failed = False

        def read(self, n: int = -1) -> bytes:
            raise TimeoutError("timed out")

    raw = Idle()
    with pytest.raises(RequestTimeout, match="No part of the request body arrived for 30 seconds"):
        GuardedInput(raw, LIMITS).read(10)
    assert raw.failed


class BlockingBody:
    """What gunicorn's Body.read(n) does: recv until n bytes have arrived."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def read(self, n: int = -1) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                break
            data += chunk
        return data


def test_the_watchdog_cuts_a_read_that_falls_behind_while_bytes_keep_trickling():
    server, client = socket.socketpair()
    stop = threading.Event()

    def trickle() -> None:  # a byte every 50 ms: never idle, far below 1000 bytes per second
        while not stop.is_set():
            client.send(b"x")
            stop.wait(0.05)

    threading.Thread(target=trickle, daemon=True).start()
    limits = BodyLimits(idle_timeout=30, min_rate=1000, grace=0.3)
    began = time.monotonic()
    try:
        with pytest.raises(RequestTimeout, match="slower than 1000 bytes per second"):
            GuardedInput(BlockingBody(server), limits, sock=server).read(1_000_000)
    finally:
        stop.set()
        server.close()
        client.close()
    assert time.monotonic() - began < 3  # the deadline of a first 1 KB piece: 0.3 s + 1.024 s


class TimingOut(io.BytesIO):
    """A request body whose socket times out after `good` bytes."""

    def __init__(self, data: bytes, good: int) -> None:
        super().__init__(data)
        self.good = good

    def read(self, n: int = -1) -> bytes:
        if self.tell() >= self.good:
            raise TimeoutError("timed out")
        return super().read(min(n if n >= 0 else len(self.getvalue()), self.good - self.tell()))


def test_a_multipart_upload_whose_body_times_out_answers_408(alice):
    body = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + png_bytes(256, 256, noise=64) + b"\r\n--b--\r\n")
    response = alice.client.generic("POST", "/v1/media/upload", content_type="multipart/form-data; boundary=b",
                                    CONTENT_LENGTH=str(len(body)), **{"wsgi.input": TimingOut(body, 300)})
    assert response.status_code == 408, response.content
    assert response.json()["error"]["code"] == "request_timeout"


def test_a_signed_put_whose_body_times_out_answers_408_not_503(alice):
    image = png_bytes(256, 256, noise=64)
    prepared = alice.client.post("/v1/media/prepare-upload", {"content_type": "image/png", "bytes": len(image)},
                                 format="json").json()
    url = prepared["presigned_url"].removeprefix("http://testserver")
    response = alice.client.generic("PUT", url, content_type="image/png", CONTENT_LENGTH=str(len(image)),
                                    **{"wsgi.input": TimingOut(image, 300)})
    assert response.status_code == 408
    assert response.json()["error"]["code"] == "request_timeout"
