"""SSRF-safe remote fetching (`media_app.fetch`) against a real local HTTP server.

Network rule: these tests only ever send traffic to 127.0.0.0/8. The autouse
`connect_spy` replaces the HTTP client's single connection seam
(`config.http_client._connect`): it records every address the fetcher tries and
refuses (without touching the network) anything that is not loopback, so a public
or internal address can show up in the record but is never actually contacted.
"""
from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from config import http_client
from config.errors import RemoteFetchFailed, TooLarge
from media_app import fetch
from media_app.fetch import (
    CHUNK_SIZE, UrlNotAllowed, check_addresses, check_url, is_address_allowed, open_remote,
)

IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 800          # ~200 KiB: several chunks
BIG = b"x" * (2 * 1024 * 1024)                                   # 2 MiB
LIMIT = 1024 * 1024                                              # 1 MiB
LOCAL = ["127.0.0.0/8"]


# --------------------------------------------------------------------------- server

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.server.record(self)
        parts = urlsplit(self.path)
        route = parts.path.strip("/").split("/")
        handler = getattr(self, "route_" + route[0].replace("-", "_"), None)
        if handler is None:
            return self.send_body(404, b"not found")
        try:
            handler(*route[1:], **{k: v[0] for k, v in parse_qs(parts.query).items()})
        except OSError:            # the client hung up on purpose (limits, timeouts)
            self.close_connection = True

    # helpers
    def send_body(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def raw(self, head: str, body: bytes = b"") -> None:
        self.close_connection = True
        self.wfile.write(head.encode("latin-1") + b"\r\n\r\n" + body)

    # routes
    def route_image(self) -> None:
        self.send_body(200, IMAGE, "image/png")

    def route_host(self) -> None:
        self.send_body(200, self.headers["Host"].encode())

    def route_redirect(self, n: str) -> None:
        n = int(n)
        if n == 0:
            return self.redirect("/image")
        if n % 2:
            return self.redirect(f"/redirect/{n - 1}")                        # relative
        self.redirect(f"http://127.0.0.1:{self.server.port}/redirect/{n - 1}")  # absolute

    def route_to(self, url: str) -> None:
        self.redirect(url)

    def route_status(self, code: str) -> None:
        self.send_body(int(code), b"error page")

    def route_big_declared(self) -> None:
        self.raw(f"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {10 * LIMIT}",
                 b"x" * 1024)

    def route_lying_small(self) -> None:     # declares 1000 bytes, sends 2 MiB
        self.raw("HTTP/1.1 200 OK\r\nContent-Length: 1000", BIG)

    def route_bogus_length(self) -> None:    # unusable Content-Length: framed by close
        self.raw("HTTP/1.1 200 OK\r\nContent-Length: 1000x", BIG)

    def route_no_length(self) -> None:
        self.raw("HTTP/1.1 200 OK\r\nConnection: close", BIG)

    def route_chunked(self) -> None:
        self.raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked")
        for i in range(0, len(BIG), 65536):
            piece = BIG[i:i + 65536]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def route_truncated(self) -> None:       # declares 5000, sends 100 and closes
        self.raw("HTTP/1.1 200 OK\r\nContent-Length: 5000", b"y" * 100)

    def route_drip(self) -> None:            # a body byte every 0.2 s (6 s in all)
        self.raw("HTTP/1.1 200 OK\r\nContent-Length: 30")
        self.drip(b"z" * 30)

    def route_drip_headers(self) -> None:    # even the status line drips
        self.close_connection = True
        self.drip(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def drip(self, data: bytes) -> None:
        for i in range(len(data)):
            if self.server.stopping.wait(0.2):
                return
            self.wfile.write(data[i:i + 1])


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__((host, 0), _Handler)
        self.port = self.server_address[1]
        self.requests: list[dict] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()

    def record(self, handler: _Handler) -> None:
        with self._lock:
            self.requests.append({"path": handler.path, "headers": dict(handler.headers)})

    @property
    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]


@contextmanager
def _serving(server: _Server):
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def server():
    with _serving(_Server()) as srv:
        yield srv


@pytest.fixture
def other_server():
    """A second server on another loopback address and port (127.0.0.2)."""
    with _serving(_Server("127.0.0.2")) as srv:
        yield srv


@pytest.fixture(autouse=True)
def connect_spy(monkeypatch):
    calls: list[tuple[str, int]] = []
    real = socket.create_connection

    def spy(address, timeout):
        calls.append(tuple(address))
        if not ipaddress.ip_address(address[0]).is_loopback:
            raise ConnectionRefusedError("test guard: only loopback may be contacted")
        return real(address, timeout=timeout)

    monkeypatch.setattr(http_client, "_connect", spy)
    return calls


class Resolver:
    """A fake DNS: fixed answers per name, counting every call."""

    def __init__(self, answers: dict[str, list] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        answer = self.answers.get(host)
        if answer is None:
            raise AssertionError(f"unexpected DNS lookup of {host!r}")
        return answer.pop(0) if isinstance(answer[0], list) else answer


def fetch_all(url: str, **kwargs) -> tuple[fetch.RemoteBody, list[bytes]]:
    kwargs.setdefault("max_bytes", LIMIT)
    kwargs.setdefault("timeout", 5)
    with open_remote(url, **kwargs) as body:
        return body, list(body)


# --------------------------------------------------------------------------- happy paths

def test_fetch_streams_the_body_in_chunks(server, connect_spy):
    url = f"http://127.0.0.1:{server.port}/image"
    body, chunks = fetch_all(url, allow_networks=LOCAL)

    assert b"".join(chunks) == IMAGE
    assert len(chunks) > 1 and all(len(c) <= CHUNK_SIZE for c in chunks)
    assert body.content_type == "image/png"
    assert body.declared_length == len(IMAGE)
    assert body.url == url
    assert connect_spy == [("127.0.0.1", server.port)]
    [request] = server.requests
    assert request["headers"]["User-Agent"] == "Mediastore/1.0"
    assert request["headers"]["Accept-Encoding"] == "identity"
    assert request["headers"]["Host"] == f"127.0.0.1:{server.port}"


def test_read_is_file_like(server):
    with open_remote(f"http://127.0.0.1:{server.port}/image", max_bytes=LIMIT, timeout=5,
                     allow_networks=LOCAL) as body:
        assert body.read(0) == b""
        assert body.read(8) == IMAGE[:8]
        assert body.read(100) == IMAGE[8:108]
        assert body.read() == IMAGE[108:]
        assert body.read(10) == b""
        assert body.read() == b""


def test_a_chain_of_three_redirects_is_followed(server):
    body, chunks = fetch_all(f"http://127.0.0.1:{server.port}/redirect/2", allow_networks=LOCAL)
    assert b"".join(chunks) == IMAGE
    assert body.url == f"http://127.0.0.1:{server.port}/image"
    assert server.paths == ["/redirect/2", "/redirect/1", "/redirect/0", "/image"]


def test_a_fourth_redirect_is_refused(server):
    with pytest.raises(RemoteFetchFailed) as info:
        fetch_all(f"http://127.0.0.1:{server.port}/redirect/3", allow_networks=LOCAL)
    assert info.value.code == "too_many_redirects"
    assert info.value.status == 502
    assert server.paths == ["/redirect/3", "/redirect/2", "/redirect/1", "/redirect/0"]


def test_max_redirects_is_configurable(server):
    with pytest.raises(RemoteFetchFailed) as info:
        fetch_all(f"http://127.0.0.1:{server.port}/redirect/0", allow_networks=LOCAL,
                  max_redirects=0)
    assert info.value.code == "too_many_redirects"


# --------------------------------------------------------------------------- size limits

def test_a_declared_length_over_the_limit_is_refused_before_reading(server):
    with pytest.raises(TooLarge) as info:
        with open_remote(f"http://127.0.0.1:{server.port}/big-declared", max_bytes=LIMIT,
                         timeout=5, allow_networks=LOCAL):
            pytest.fail("the body must not be handed out")
    assert info.value.status == 413 and info.value.code == "max_size_exceeded"


@pytest.mark.parametrize("path", ["/no-length", "/chunked", "/bogus-length"])
def test_a_body_over_the_limit_without_usable_length_raises_too_large(server, path):
    seen = {}
    with pytest.raises(TooLarge):
        with open_remote(f"http://127.0.0.1:{server.port}{path}", max_bytes=LIMIT, timeout=5,
                         allow_networks=LOCAL) as body:
            seen["body"] = body
            for _ in body:
                pass
    assert seen["body"].declared_length is None
    assert seen["body"].bytes_read == LIMIT + 1          # stopped one byte past the limit


def test_a_lying_small_length_never_yields_more_than_declared(server):
    # The server declares 1000 bytes and sends 2 MiB: HTTP framing ends the body at
    # 1000 bytes, the rest is never read, so the limit is never at risk.
    body, chunks = fetch_all(f"http://127.0.0.1:{server.port}/lying-small",
                             allow_networks=LOCAL, max_bytes=1500)
    assert b"".join(chunks) == BIG[:1000]
    assert body.bytes_read == 1000


def test_a_lying_small_length_over_the_limit_is_refused_up_front(server):
    with pytest.raises(TooLarge):
        fetch_all(f"http://127.0.0.1:{server.port}/lying-small", allow_networks=LOCAL,
                  max_bytes=999)


def test_the_limit_counts_bytes_not_chunks(server):
    with pytest.raises(TooLarge):
        fetch_all(f"http://127.0.0.1:{server.port}/image", allow_networks=LOCAL,
                  max_bytes=len(IMAGE) - 1)
    body, chunks = fetch_all(f"http://127.0.0.1:{server.port}/image", allow_networks=LOCAL,
                             max_bytes=len(IMAGE))
    assert b"".join(chunks) == IMAGE


def test_a_truncated_body_fails(server):
    with pytest.raises(RemoteFetchFailed) as info:
        fetch_all(f"http://127.0.0.1:{server.port}/truncated", allow_networks=LOCAL)
    assert info.value.code == "remote_fetch_failed"


# --------------------------------------------------------------------------- deadline, errors

@pytest.mark.parametrize("path", ["/drip", "/drip-headers"])
def test_a_slow_drip_hits_the_overall_deadline(server, path):
    started = time.monotonic()
    with pytest.raises(RemoteFetchFailed) as info:
        fetch_all(f"http://127.0.0.1:{server.port}{path}", allow_networks=LOCAL, timeout=1.0)
    elapsed = time.monotonic() - started
    assert info.value.code == "remote_fetch_timeout"
    assert 0.9 <= elapsed < 2.0


def test_a_hanging_resolver_hits_the_deadline():
    release = threading.Event()

    def hanging(host, port):
        release.wait(10)
        return ["127.0.0.1"]

    started = time.monotonic()
    try:
        with pytest.raises(RemoteFetchFailed) as info:
            fetch_all("http://slow-dns.test/", allow_networks=LOCAL, timeout=0.5,
                      resolver=hanging)
    finally:
        release.set()
    assert info.value.code == "remote_fetch_timeout"
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("status", [404, 500])
def test_an_error_status_fails(server, status):
    with pytest.raises(RemoteFetchFailed) as info:
        fetch_all(f"http://127.0.0.1:{server.port}/status/{status}", allow_networks=LOCAL)
    assert info.value.status == 502
    assert str(status) in info.value.message


def test_connection_refused_and_dns_failure_fail_cleanly(server):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()                                   # nothing listens there now
    with pytest.raises(RemoteFetchFailed) as info:
        fetch_all(f"http://127.0.0.1:{port}/", allow_networks=LOCAL)
    assert info.value.code == "remote_fetch_failed"

    def nxdomain(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(RemoteFetchFailed):
        fetch_all("http://nowhere.test/", resolver=nxdomain)
    with pytest.raises(RemoteFetchFailed):
        fetch_all("http://nowhere.test/", resolver=lambda h, p: [])


# --------------------------------------------------------------------------- refusals

REFUSED_URLS = [
    "http://127.0.0.1:{port}/",
    "http://localhost:{port}/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/",
    "http://[::1]:{port}/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]:{port}/",
    "http://[::127.0.0.1]/",
    "http://[2002:7f00:1::]/",
    "http://[64:ff9b::a00:1]/",
    "http://[fe80::1%25eth0]/",
    "http://0.0.0.0/",
    "http://0/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f000001/",
    "http://0x7f.1/",
    "http://127.1:{port}/",
    "http://127.0.0.1.:{port}/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "ftp://example.com/x",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{port}/",
    "http://user:pw@example.com/",
    "http://user@127.0.0.1:{port}/",
    "http://example.com\\@127.0.0.1:{port}/",
    "http:///nohost",
    "http://1.2.3.4.5/",
    "",
]


@pytest.mark.parametrize("template", REFUSED_URLS)
def test_refused_without_allow_list(server, connect_spy, template):
    # Only "localhost" may be looked up (for real: it is in /etc/hosts).
    def resolver(host, port):
        assert host == "localhost", f"unexpected DNS lookup of {host!r}"
        return fetch.default_resolver(host, port)

    url = template.format(port=server.port)
    with pytest.raises(UrlNotAllowed) as info:
        fetch_all(url, resolver=resolver)
    assert info.value.status == 400
    assert info.value.code == "url_not_allowed"
    assert info.value.param == "source.url"
    assert connect_spy == []
    assert server.requests == []


BAD_ADDRESSES = [
    "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
    "169.254.169.254", "100.64.0.1", "100.127.255.255", "0.0.0.0", "0.1.2.3", "224.0.0.1",
    "239.255.255.250", "240.0.0.1", "255.255.255.255", "192.0.0.8", "192.0.2.1",
    "198.18.0.1", "198.51.100.1", "203.0.113.1",
    "::", "::1", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1", "fec0::1", "ff02::1",
    "ff0e::1", "2001:db8::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "::127.0.0.1", "::10.0.0.1", "2002:7f00:1::", "2002:a9fe:a9fe::1", "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "not-an-ip", "",
]
GOOD_ADDRESSES = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111",
                  "::ffff:93.184.216.34", "2002:5db8:d822::1"]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_refused_address_classes(address):
    assert not is_address_allowed(address)
    with pytest.raises(UrlNotAllowed):
        check_addresses([address])


@pytest.mark.parametrize("address", GOOD_ADDRESSES)
def test_public_addresses_are_accepted(address):
    assert is_address_allowed(address)
    assert check_addresses([address]) == (str(ipaddress.ip_address(address)),)


def test_allow_list_opens_only_its_networks():
    assert is_address_allowed("127.0.0.1", ["127.0.0.0/8"])
    assert is_address_allowed("::ffff:127.0.0.1", ["127.0.0.0/8"])
    assert not is_address_allowed("127.0.0.1", ["127.0.0.2/32"])
    assert not is_address_allowed("10.0.0.1", ["127.0.0.0/8"])
    assert not is_address_allowed("::1", ["127.0.0.0/8"])
    assert is_address_allowed("10.1.2.3", "10.0.0.0/8, 192.168.0.0/16")
    with pytest.raises(ValueError):
        check_addresses(["8.8.8.8"], ["not a network"])


@pytest.mark.parametrize("host", ["2130706433", "0177.0.0.1", "0x7f000001", "0x7f.1", "127.1",
                                  "0x7F.0.0.1", "127.0.0.1.", "0177.0.0x0.1"])
def test_numeric_hosts_are_parsed_locally_never_resolved(host):
    no_dns = Resolver()
    target = check_url(f"http://{host}:8080/a", allow_networks=LOCAL, resolver=no_dns)
    assert target.addresses == ("127.0.0.1",)
    assert target.url == "http://127.0.0.1:8080/a"
    assert no_dns.calls == []
    # A resolver claiming a public address for the literal changes nothing.
    liar = Resolver({host.lower(): ["93.184.216.34"]})
    with pytest.raises(UrlNotAllowed):
        check_url(f"http://{host}/", resolver=liar)


# --------------------------------------------------------------------------- DNS

def test_a_public_name_passes_the_check_without_connecting(connect_spy):
    dns = Resolver({"public.example": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]})
    target = check_url("https://public.example/a.png?x=1", resolver=dns)
    assert target.addresses == ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
    assert (target.host, target.port, target.path) == ("public.example", 443, "/a.png?x=1")
    assert target.host_header == "public.example"
    assert dns.calls == ["public.example"]
    assert connect_spy == []


def test_the_connection_goes_to_the_checked_address(connect_spy):
    # The guard refuses the public address without contacting it; what matters is
    # that the fetcher tried exactly the address the resolver gave and the check passed.
    dns = Resolver({"public.example": ["93.184.216.34"]})
    with pytest.raises(RemoteFetchFailed):
        fetch_all("http://public.example/a.png", resolver=dns)
    assert connect_spy == [("93.184.216.34", 80)]
    assert dns.calls == ["public.example"]


@pytest.mark.parametrize("answer", [["8.8.8.8", "127.0.0.1"], ["127.0.0.1", "8.8.8.8"],
                                    ["93.184.216.34", "::1"], ["93.184.216.34", "10.0.0.1"]])
def test_one_bad_address_among_good_ones_is_refused(connect_spy, answer):
    dns = Resolver({"mixed.example": answer})
    with pytest.raises(UrlNotAllowed):
        fetch_all("http://mixed.example/", resolver=dns)
    assert connect_spy == []


def test_dns_rebinding_cannot_redirect_the_connection(server, connect_spy):
    # First answer is allowed (via the allow list), every later one is internal:
    # the fetcher must resolve once and connect to the address it checked.
    dns = Resolver({"rebind.test": [["127.0.0.1"], ["10.0.0.1"], ["10.0.0.1"]]})
    body, chunks = fetch_all(f"http://rebind.test:{server.port}/host", allow_networks=LOCAL,
                             resolver=dns)
    assert b"".join(chunks) == f"rebind.test:{server.port}".encode()
    assert dns.calls == ["rebind.test"]
    assert connect_spy == [("127.0.0.1", server.port)]
    assert server.requests[0]["headers"]["Host"] == f"rebind.test:{server.port}"
    assert body.url == f"http://rebind.test:{server.port}/host"


# --------------------------------------------------------------------------- redirects out

@pytest.mark.parametrize("location", [
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "http://127.0.0.2:{other}/",
    "http://[::1]:{port}/image",
    "http://0x7f000002:{other}/",
    "http://metadata.test/",
    "http://internal.test:{other}/",
    "ftp://127.0.0.1/",
    "file:///etc/passwd",
])
def test_a_redirect_out_of_the_allow_list_is_refused(server, other_server, connect_spy, location):
    dns = Resolver({"metadata.test": ["169.254.169.254"], "internal.test": ["127.0.0.2"]})
    target = location.format(port=server.port, other=other_server.port)
    with pytest.raises(UrlNotAllowed):
        fetch_all(f"http://127.0.0.1:{server.port}/to?url={target}",
                  allow_networks=["127.0.0.1/32"], resolver=dns, timeout=2)
    assert connect_spy == [("127.0.0.1", server.port)]       # only the first hop
    assert other_server.requests == []
    assert len(server.requests) == 1


def test_a_redirect_inside_the_allow_list_is_followed(server, other_server):
    body, chunks = fetch_all(
        f"http://127.0.0.1:{server.port}/to?url=http://127.0.0.2:{other_server.port}/image",
        allow_networks=LOCAL)
    assert b"".join(chunks) == IMAGE
    assert body.url == f"http://127.0.0.2:{other_server.port}/image"


# --------------------------------------------------------------------------- https

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A throw-away CA and a leaf certificate for `rebind.test`."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Mediastore test CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rebind.test")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("rebind.test")]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("pki")
    (folder / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (folder / "leaf.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "leaf.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return folder


@pytest.fixture
def tls_server(pki, monkeypatch):
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki / "leaf.pem", pki / "leaf.key")
    sni: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: sni.append(name)
    client_ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    monkeypatch.setattr(http_client, "_ssl_context", lambda: client_ctx)
    srv = _Server()
    srv.socket = server_ctx.wrap_socket(srv.socket, server_side=True)
    srv.sni = sni
    with _serving(srv):
        yield srv


def test_https_pins_the_ip_and_verifies_the_original_hostname(tls_server, connect_spy):
    dns = Resolver({"rebind.test": [["127.0.0.1"], ["10.0.0.1"]]})
    body, chunks = fetch_all(f"https://rebind.test:{tls_server.port}/host",
                             allow_networks=LOCAL, resolver=dns)
    assert b"".join(chunks) == f"rebind.test:{tls_server.port}".encode()
    assert tls_server.sni == ["rebind.test"]
    assert connect_spy == [("127.0.0.1", tls_server.port)]
    assert dns.calls == ["rebind.test"]


@pytest.mark.parametrize("url", ["https://other.test:{port}/image", "https://127.0.0.1:{port}/image"])
def test_https_refuses_a_certificate_for_another_name(tls_server, url):
    dns = Resolver({"other.test": ["127.0.0.1"]})
    with pytest.raises(RemoteFetchFailed) as info:
        fetch_all(url.format(port=tls_server.port), allow_networks=LOCAL, resolver=dns)
    assert "certificate" in info.value.message
    assert tls_server.requests == []
