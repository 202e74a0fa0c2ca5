"""The one outbound HTTP client (`config.http_client`) against a real HTTP server on 127.0.0.1.

Network rule: only 127.0.0.0/8 is ever contacted. The autouse `connections` fixture wraps the
client's single connection seam: it records every address tried and refuses, without touching
the network, anything that is not loopback.
"""
from __future__ import annotations

import ipaddress
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from config import http_client
from config.errors import RemoteFetchFailed, TooLarge
from config.http_client import AddressPolicy, UrlNotAllowed, get_json, open_url

LOOPBACK = AddressPolicy.allowing(["127.0.0.1/32"])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.paths.append(self.path)
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            getattr(self, "route_" + parts.path.strip("/"))(**query)
        except OSError:  # the client hung up on purpose (limits, deadline)
            self.close_connection = True

    def reply(self, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route_json(self) -> None:
        self.reply(b'{"keys": []}')

    def route_redirect(self, to: str) -> None:
        self.send_response(302)
        self.send_header("Location", to)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def route_unframed(self, size: str) -> None:  # no Content-Length: the size is learnt by reading
        self.close_connection = True
        self.wfile.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * int(size))

    def route_declared(self, size: str) -> None:  # declares a size, sends a little
        self.close_connection = True
        self.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode() + b"x" * 10)

    def route_drip(self) -> None:  # a body byte every 0.2 s for 6 s
        self.close_connection = True
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n")
        for _ in range(30):
            if self.server.stopping.wait(0.2):
                return
            self.wfile.write(b"z")
            self.wfile.flush()


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.paths, httpd.stopping = [], threading.Event()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.stopping.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def connections(monkeypatch):
    tried: list[tuple[str, int]] = []
    real = socket.create_connection

    def guarded(address, timeout):
        tried.append(tuple(address))
        if not ipaddress.ip_address(address[0]).is_loopback:
            raise ConnectionRefusedError("test guard: only loopback may be contacted")
        return real(address, timeout=timeout)

    monkeypatch.setattr(http_client, "_connect", guarded)
    return tried


def read_all(url: str, **kwargs) -> bytes:
    kwargs.setdefault("max_bytes", 1024 * 1024)
    kwargs.setdefault("timeout", 5)
    with open_url(url, **kwargs) as body:
        return body.read()


# -- the address policy -----------------------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0x7f.1", "[::ffff:127.0.0.1]"])
def test_a_loopback_address_is_refused_by_default(server, connections, host):
    port = server.server_address[1]
    with pytest.raises(UrlNotAllowed) as info:
        read_all(f"http://{host}:{port}/json", resolver=lambda name, _: ["127.0.0.1"])
    assert info.value.status == 400 and info.value.code == "url_not_allowed"
    assert connections == [] and server.paths == []


@pytest.mark.parametrize("address", ["10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                                     "fd00::1", "fe80::1", "::1"])
def test_a_name_resolving_to_a_private_address_is_refused_before_connecting(connections, address):
    with pytest.raises(UrlNotAllowed) as info:
        read_all("http://intranet.example/", resolver=lambda name, _: ["93.184.216.34", address])
    assert info.value.code == "url_not_allowed"
    assert connections == []


def test_a_setting_lets_chosen_networks_through(server):
    assert read_all(f"{server.base}/json", policy=AddressPolicy.allowing("10.0.0.0/8, 127.0.0.0/8")) == \
        b'{"keys": []}'


def test_the_connection_goes_to_the_address_that_was_checked(server, connections):
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])  # a second lookup would rebind to the LAN
    port = server.server_address[1]
    read_all(f"http://idp.test:{port}/json", policy=LOOPBACK, resolver=lambda name, _: next(answers))
    assert connections == [("127.0.0.1", port)]


# -- redirects --------------------------------------------------------------------------------
@pytest.mark.parametrize("location", ["http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/",
                                      "http://127.0.0.2:{port}/json", "http://[::1]:{port}/json",
                                      "http://metadata.test/", "file:///etc/passwd"])
def test_a_redirect_to_a_private_address_is_refused(server, connections, location):
    port = server.server_address[1]
    target = location.format(port=port)
    with pytest.raises(UrlNotAllowed):
        read_all(f"{server.base}/redirect?to={target}", policy=LOOPBACK,
                 resolver=lambda name, _: ["169.254.169.254"])
    assert connections == [("127.0.0.1", port)]  # the first hop only
    assert len(server.paths) == 1


def test_an_allowed_redirect_is_followed_and_no_redirect_is_followed_past_the_limit(server):
    url = f"{server.base}/redirect?to=/json"
    assert read_all(url, policy=LOOPBACK) == b'{"keys": []}'
    with pytest.raises(RemoteFetchFailed) as info:
        read_all(url, policy=LOOPBACK, max_redirects=0)
    assert info.value.status == 502 and info.value.code == "too_many_redirects"


# -- the size cap -----------------------------------------------------------------------------
def test_a_body_past_the_size_cap_is_cut_off_one_byte_past_it(server):
    with pytest.raises(TooLarge) as info:
        with open_url(f"{server.base}/unframed?size=5000", max_bytes=4096, timeout=5, policy=LOOPBACK) as body:
            for _ in body:
                pass
    assert info.value.status == 413 and info.value.code == "max_size_exceeded"
    assert body.bytes_read == 4097
    assert read_all(f"{server.base}/unframed?size=4096", max_bytes=4096, policy=LOOPBACK) == b"x" * 4096


def test_a_declared_size_past_the_cap_is_refused_before_reading(server):
    with pytest.raises(TooLarge):
        with open_url(f"{server.base}/declared?size=999999", max_bytes=4096, timeout=5, policy=LOOPBACK):
            pytest.fail("the body must not be handed out")


# -- the deadline -----------------------------------------------------------------------------
def test_a_dripping_server_is_cut_off_at_the_total_deadline(server):
    started = time.monotonic()
    with pytest.raises(RemoteFetchFailed) as info:
        read_all(f"{server.base}/drip", timeout=1.0, policy=LOOPBACK)
    assert info.value.status == 502 and info.value.code == "remote_fetch_timeout"
    assert 0.9 <= time.monotonic() - started < 1.8


def test_a_hanging_name_lookup_is_cut_off_at_the_total_deadline():
    release = threading.Event()
    started = time.monotonic()
    try:
        with pytest.raises(RemoteFetchFailed) as info:
            read_all("http://slow-dns.test/", timeout=0.5, resolver=lambda name, _: release.wait(10) and [])
    finally:
        release.set()
    assert info.value.code == "remote_fetch_timeout"
    assert time.monotonic() - started < 1.3


# -- JSON for the identity provider ---------------------------------------------------------------
def test_get_json_with_a_policy_allowing_any_address_reaches_a_provider_on_the_lan(server):
    assert get_json(f"{server.base}/json", max_bytes=1024, timeout=5, policy=AddressPolicy(allow_any=True)) == \
        {"keys": []}


def test_get_json_follows_no_redirect_by_default(server):
    with pytest.raises(RemoteFetchFailed) as info:
        get_json(f"{server.base}/redirect?to=/json", max_bytes=1024, timeout=5, policy=LOOPBACK)
    assert info.value.code == "too_many_redirects"
    assert server.paths == ["/redirect?to=/json"]
