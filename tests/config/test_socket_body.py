"""config.bodyguard.SocketBody: gunicorn's body of known length, read from the socket itself.

The body is gunicorn's own (`Body` over a `LengthReader` over a `SocketUnreader` on a real socket
pair), set up as gunicorn leaves it after reading the headers: part of the body, and perhaps the
next request, already read ahead into the unreader."""
import io
import socket
import threading
import time

import pytest
from gunicorn.http.body import Body, ChunkedReader, LengthReader
from gunicorn.http.unreader import SocketUnreader

from config.bodyguard import SocketBody

BODY = bytes(range(256)) * 4096  # 1 MiB
NEXT = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"  # a pipelined next request, never body


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def gunicorn_body(sock: socket.socket, read_ahead: bytes, length: int) -> Body:
    unreader = SocketUnreader(sock)
    unreader.unread(read_ahead)  # what gunicorn read past the headers
    return Body(LengthReader(unreader, length))


def send_later(sock: socket.socket, data: bytes, *, pieces: int = 1, pause: float = 0.0) -> threading.Thread:
    def send():
        size = -(-len(data) // pieces)
        for offset in range(0, len(data), size):
            sock.sendall(data[offset:offset + size])
            time.sleep(pause)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def test_the_body_is_read_whole_from_what_gunicorn_holds_then_the_socket_and_the_next_request_is_left(pair):
    server, client = pair
    body = gunicorn_body(server, BODY[:5000], len(BODY))
    sender = send_later(client, BODY[5000:] + NEXT, pieces=7)
    reader = SocketBody(body)
    got = b"".join(iter(lambda: reader.read(300_000), b""))
    sender.join()
    assert got == BODY
    assert body.reader.length == 0 and reader.read() == b""
    assert body.reader.unreader.read() == NEXT  # for gunicorn's next request on the connection


def test_read_answers_exactly_what_is_asked_across_receives(pair):
    server, client = pair
    body = gunicorn_body(server, b"", len(BODY))
    sender = send_later(client, BODY, pieces=64, pause=0.001)
    reader = SocketBody(body)
    sizes = [len(reader.read(100_000)) for _ in range(11)]
    sender.join()
    assert sizes == [100_000] * 10 + [len(BODY) - 1_000_000]


def test_a_body_all_read_ahead_with_the_next_request_never_touches_the_socket(pair):
    server, _ = pair
    server.settimeout(0.2)  # a receive would time out: there is nothing more to come
    body = gunicorn_body(server, b"hello" + NEXT, 5)
    reader = SocketBody(body)
    assert reader.read(2) == b"he"
    assert reader.read() == b"llo"
    assert reader.read(10) == b""
    assert body.reader.unreader.read() == NEXT


def test_a_readline_before_reading_keeps_gunicorns_order(pair):
    server, client = pair
    data = b"first line\n" + BODY
    body = gunicorn_body(server, data[:100], len(data))
    sender = send_later(client, data[100:])
    reader = SocketBody(body)
    assert reader.readline() == b"first line\n"  # through gunicorn, which keeps what it read past the line
    rest = b"".join(iter(lambda: reader.read(65536), b""))
    sender.join()
    assert rest == BODY and body.reader.length == 0


def test_gunicorn_drains_what_the_app_left_unread_for_keep_alive(pair):
    server, client = pair
    body = gunicorn_body(server, b"", len(BODY))
    sender = send_later(client, BODY + NEXT)
    reader = SocketBody(body)
    assert reader.read(1000) == BODY[:1000]
    drained = b"".join(iter(lambda: body.read(65536), b""))  # what gunicorn does before the next request
    sender.join()
    assert drained == BODY[1000:] and body.reader.unreader.read(len(NEXT)) == NEXT


def test_a_client_that_stops_sending_answers_a_short_body_then_nothing(pair):
    server, client = pair
    body = gunicorn_body(server, b"", 10_000)
    client.sendall(b"x" * 3000)
    client.shutdown(socket.SHUT_WR)
    reader = SocketBody(body)
    assert reader.read() == b"x" * 3000
    assert reader.read(10) == b""


def test_a_receive_that_times_out_marks_the_body_failed_so_gunicorn_closes(pair):
    server, client = pair
    server.settimeout(0.1)
    body = gunicorn_body(server, b"", 10_000)
    client.sendall(b"x" * 100)
    reader = SocketBody(body)
    with pytest.raises(TimeoutError):
        reader.read(10_000)
    assert body.failed and reader.failed
    assert body.reader.length == 10_000 - 100  # what did arrive is counted


def test_only_gunicorns_bodies_of_known_length_are_read_from_the_socket(pair):
    server, _ = pair
    length = Body(LengthReader(SocketUnreader(server), 10))
    assert isinstance(SocketBody.over(length), SocketBody)
    chunked = Body(ChunkedReader(None, SocketUnreader(server)))
    assert SocketBody.over(chunked) is chunked
    other = io.BytesIO(b"from another server")
    assert SocketBody.over(other) is other


def test_a_read_of_the_whole_body_receives_at_most_a_mebibyte_at_a_time(pair, monkeypatch):
    server, client = pair
    body = gunicorn_body(server, b"", 3 * len(BODY))
    sender = send_later(client, BODY * 3, pieces=3)
    asked = []
    reader = SocketBody(body)
    recv = server.recv
    reader._sock = type("Spy", (), {"recv": lambda self, n: asked.append(n) or recv(n)})()
    assert reader.read() == BODY * 3
    sender.join()
    assert max(asked) == SocketBody.RECV_MAX
