"""The remote-fetch URL and address rules (`config.url_policy`), without any network.

Several rules answer with the same code (`url_not_allowed`); the message tells which one
refused, so each test names the rule it expects.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time

import pytest

from config import url_policy
from config.errors import InvalidRequest, RemoteFetchFailed
from config.url_policy import (
    AddressPolicy, Target, UrlNotAllowed, check_addresses, check_url, default_resolver, is_address_allowed,
    network_errors, parse_networks, time_left,
)

PUBLIC = "93.184.216.34"


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"unexpected DNS lookup of {host!r}")


def dns(answer: list[str] | None, calls: list | None = None):
    def resolve(host: str, port: int) -> list[str] | None:
        if calls is not None:
            calls.append((host, port))
        return answer
    return resolve


def refusal(url: str, **kwargs) -> tuple[int, str, str]:
    with pytest.raises(UrlNotAllowed) as caught:
        check_url(url, **{"resolver": dns([PUBLIC]), **kwargs})
    return caught.value.status, caught.value.code, caught.value.message


# --------------------------------------------------------------------------- URLs

@pytest.mark.parametrize(("url", "message"), [
    ("", "A URL is required."),
    ("   ", "A URL is required."),
    (None, "A URL is required."),
    ("http://exa\tmple.com/", "The URL contains control characters."),
    ("http://example.com/\x7f", "The URL contains control characters."),
    ("http://example.com:99999/", "The URL is malformed."),
    ("ftp://example.com/", "Only http and https URLs can be fetched."),
    ("http://user@example.com/", "URLs with credentials (user:password@) are not allowed."),
    ("http://example.com\\x/", "The URL has no valid host."),
    ("http:///path", "The URL has no valid host."),
    ("http://example.com:0/", "The URL port is not valid."),
    ("http://[v1.a:b]/", "The URL host is not a valid IPv6 address."),  # IPvFuture: urlsplit lets it by
    ("http://exa mple.com/", "The URL host is not a valid hostname."),
    ("http://a\u2028b.com/", "The URL host is not a valid hostname."),
    ("http://1.2.3.4.5/", "The URL host is not a valid IPv4 address."),
    ("http://1.2.3.4.0/", "The URL host is not a valid IPv4 address."),
    ("http://1.2.3.256/", "The URL host is not a valid IPv4 address."),
    ("http://256.1.1.1/", "The URL host is not a valid IPv4 address."),
    ("http://1.2.65536/", "The URL host is not a valid IPv4 address."),
    ("http://4294967296/", "The URL host is not a valid IPv4 address."),
    ("http://0x7g.1/", "The URL host is not a valid IPv4 address."),
    ("http://09.1.1.1/", "The URL host is not a valid IPv4 address."),
])
def test_each_url_rule_refuses_with_its_own_message(url, message):
    assert refusal(url) == (400, "url_not_allowed", message)


def test_a_refused_url_is_an_invalid_request_with_a_default_message():
    assert issubclass(UrlNotAllowed, InvalidRequest)
    assert UrlNotAllowed().message == "This URL is not allowed."


@pytest.mark.parametrize(("url", "clean", "host", "port", "path", "header"), [
    ("HTTP://Example.COM/a", "http://example.com/a", "example.com", 80, "/a", "example.com"),
    ("https://example.com", "https://example.com/", "example.com", 443, "/", "example.com"),
    ("https://example.com:443/a?b=c#frag", "https://example.com/a?b=c", "example.com", 443, "/a?b=c", "example.com"),
    ("http://example.com:443/", "http://example.com:443/", "example.com", 443, "/", "example.com:443"),
    ("https://example.com:8443/x", "https://example.com:8443/x", "example.com", 8443, "/x", "example.com:8443"),
    ("  http://example.com/a b/ü?q=a b  ", "http://example.com/a%20b/%C3%BC?q=a%20b", "example.com", 80,
     "/a%20b/%C3%BC?q=a%20b", "example.com"),
    ("http://example.com/%41!$&'()*+,;=:@~?x=[y]", "http://example.com/%41!$&'()*+,;=:@~?x=[y]", "example.com", 80,
     "/%41!$&'()*+,;=:@~?x=[y]", "example.com"),
    ("http://bücher.example/", "http://xn--bcher-kva.example/", "xn--bcher-kva.example", 80, "/",
     "xn--bcher-kva.example"),
    ("http://under_score.example/", "http://under_score.example/", "under_score.example", 80, "/",
     "under_score.example"),
])
def test_a_checked_url_is_normalized_for_the_request_line(url, clean, host, port, path, header):
    calls: list = []
    target = check_url(url, resolver=dns([PUBLIC], calls))
    assert (target.url, target.scheme, target.host, target.port, target.path) == (
        clean, clean.split(":")[0], host, port, path)
    assert target.host_header == header
    assert target.addresses == (PUBLIC,)
    assert calls == [(host, port)]


def test_an_ipv6_literal_is_bracketed_in_the_url_and_the_host_header():
    target = check_url("http://[2606:4700:4700:0::1111]:8080/", resolver=no_dns)
    assert (target.host, target.url, target.addresses) == (
        "2606:4700:4700::1111", "http://[2606:4700:4700::1111]:8080/", ("2606:4700:4700::1111",))
    assert target.host_header == "[2606:4700:4700::1111]:8080"
    assert Target(url="", scheme="https", host="::1", port=443, path="/", addresses=()).host_header == "[::1]"


@pytest.mark.parametrize(("host", "address"), [
    ("8.8.8.8", "8.8.8.8"), ("134744072", "8.8.8.8"), ("010.010.010.010", "8.8.8.8"),
    ("0x8.0x8.0x8.0x8", "8.8.8.8"), ("0X8.8.8.8", "8.8.8.8"), ("8.8.2056", "8.8.8.8"), ("8.526344", "8.8.8.8"),
    ("8.8.8.8.", "8.8.8.8"), ("0x.8.8.8", "0.8.8.8"), ("1.0.0.255", "1.0.0.255"), ("1.255.65535", "1.255.255.255"),
    ("4294967295", "255.255.255.255"), ("134744072.", "8.8.8.8"),
])
def test_numeric_hosts_are_ipv4_as_browsers_read_them_and_never_resolved(host, address):
    target = check_url(f"http://{host}/", allow_networks="0.0.0.0/0", resolver=no_dns)
    assert (target.host, target.addresses) == (address, (address,))


def test_a_name_ending_in_letters_is_resolved_not_parsed(monkeypatch):
    calls: list = []
    assert check_url("http://1.2.3.com/", resolver=dns([PUBLIC], calls)).host == "1.2.3.com"
    assert calls == [("1.2.3.com", 80)]


# --------------------------------------------------------------------------- addresses

@pytest.mark.parametrize("address", [
    "100.64.0.1", "192.0.0.1", "198.18.0.1", "198.19.255.255", "240.0.0.1", "0.0.0.1",
    "100::1", "2001::1", "2001:1ff::1", "2001:db8::1", "64:ff9b:1::1", "fc00::1", "fec0::1",
    "::ffff:100.64.0.1", "::8.8.8.8", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "64:ff9b::10.0.0.1", "2002:0a00:0001::1",
])
def test_special_purpose_ranges_are_refused_whatever_python_thinks(address):
    assert is_address_allowed(address) is False


@pytest.mark.parametrize("address", [
    "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:0808:0808::1",
])
def test_public_addresses_and_ipv6_forms_of_public_ipv4_are_allowed(address):
    assert is_address_allowed(address)


def test_an_ipv6_address_with_a_scope_is_refused():
    assert not AddressPolicy().allows(ipaddress.IPv6Address("2606:4700:4700::1111%eth0"))


def test_allow_networks_open_their_ranges_for_plain_and_mapped_addresses_only():
    policy = AddressPolicy.allowing("10.0.0.0/8, fd00::/8")
    assert policy.allows(ipaddress.ip_address("10.1.2.3"))
    assert policy.allows(ipaddress.ip_address("::ffff:10.1.2.3"))
    assert policy.allows(ipaddress.ip_address("fd00::1"))
    assert not policy.allows(ipaddress.ip_address("192.168.0.1"))
    assert not policy.allows(ipaddress.ip_address("::10.1.2.3"))


def test_allow_any_lets_every_address_through():
    assert AddressPolicy(allow_any=True).allows(ipaddress.ip_address("127.0.0.1"))
    assert not AddressPolicy().allows(ipaddress.ip_address("127.0.0.1"))


@pytest.mark.parametrize(("networks", "parsed"), [
    ("10.0.0.0/8, 192.168.0.0/16", ("10.0.0.0/8", "192.168.0.0/16")),
    ("10.0.0.0/8\n 192.168.0.0/16 ,,", ("10.0.0.0/8", "192.168.0.0/16")),
    ("10.1.2.3/8", ("10.0.0.0/8",)),
    ([" 127.0.0.1 "], ("127.0.0.1/32",)),
    ("", ()),
])
def test_networks_come_from_a_list_or_a_comma_or_space_separated_setting(networks, parsed):
    assert tuple(str(n) for n in parse_networks(networks)) == parsed


def test_a_bad_network_is_a_configuration_error_naming_it():
    with pytest.raises(ValueError, match="^Invalid network in an address allow list: .*'10.0.0.0/33'"):
        parse_networks("10.0.0.0/33")


def test_checking_keeps_the_resolver_order_once_each_in_canonical_form():
    assert check_addresses(["8.8.8.8", "2606:4700:4700:0:0:0:0:1111", "8.8.8.8", "1.1.1.1"]) == (
        "8.8.8.8", "2606:4700:4700::1111", "1.1.1.1")


@pytest.mark.parametrize(("addresses", "message"), [
    (["8.8.8.8", "not-an-ip"], "The host did not resolve to a valid address."),
    (["8.8.8.8", "10.0.0.1"], "The host resolves to an address that is not allowed."),
])
def test_one_bad_address_refuses_the_host_without_naming_it(addresses, message):
    with pytest.raises(UrlNotAllowed) as caught:
        check_addresses(addresses)
    assert caught.value.message == message


def test_a_host_with_no_address_fails_as_unresolvable():
    with pytest.raises(RemoteFetchFailed) as caught:
        check_url("http://example.com/", resolver=dns(None))
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        502, "remote_fetch_failed", "The remote host could not be resolved.")


def test_a_number_or_nonsense_is_not_an_allowed_address():
    assert is_address_allowed(2130706433) is False
    assert is_address_allowed("example.com") is False
    assert is_address_allowed("10.0.0.1", ["10.0.0.0/8"]) is True


# --------------------------------------------------------------------------- resolving and deadlines

def test_a_resolver_failure_is_an_unresolvable_host():
    def broken(host: str, port: int) -> list[str]:
        raise socket.gaierror("no such name")

    with pytest.raises(RemoteFetchFailed) as caught:
        check_url("http://example.com/", resolver=broken)
    assert (caught.value.code, caught.value.message) == ("remote_fetch_failed", "The remote host could not be resolved.")
    assert isinstance(caught.value.__cause__, socket.gaierror)


def test_a_service_error_from_the_resolver_is_passed_on_as_it_is():
    def refusing(host: str, port: int) -> list[str]:
        raise UrlNotAllowed("nope")

    assert refusal("http://example.com/", resolver=refusing) == (400, "url_not_allowed", "nope")


def test_a_resolver_timeout_is_a_fetch_timeout():
    def slow(host: str, port: int) -> list[str]:
        raise TimeoutError("resolver gave up")

    with pytest.raises(RemoteFetchFailed) as caught:
        check_url("http://example.com/", resolver=slow)
    assert caught.value.code == "remote_fetch_timeout"


def test_a_hanging_resolver_is_abandoned_at_the_deadline():
    def hanging(host: str, port: int) -> list[str]:
        time.sleep(5)
        return [PUBLIC]

    started = time.monotonic()
    with pytest.raises(RemoteFetchFailed) as caught:
        check_url("http://example.com/", resolver=hanging, timeout=0.2)
    assert caught.value.code == "remote_fetch_timeout"
    assert time.monotonic() - started < 2


def test_time_left_counts_down_and_raises_at_the_deadline():
    assert 9 < time_left(time.monotonic() + 10) <= 10
    with pytest.raises(TimeoutError, match="^outbound HTTP deadline exceeded$"):
        time_left(time.monotonic())


def test_the_default_resolver_returns_each_address_once_in_order(monkeypatch):
    infos = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", 80)),
             (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2001:4860::8888", 80, 0, 0)),
             (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", 80))]
    seen: list = []

    def getaddrinfo(host, port, *args, **kwargs):
        seen.append((host, port, kwargs))
        return infos

    monkeypatch.setattr(url_policy.socket, "getaddrinfo", getaddrinfo)
    assert default_resolver("dns.example", 80) == ["8.8.8.8", "2001:4860::8888"]
    assert seen == [("dns.example", 80, {"type": socket.SOCK_STREAM})]


@pytest.mark.parametrize(("raised", "code", "message"), [
    (TimeoutError(), "remote_fetch_timeout", "The remote server did not answer in time."),
    (ssl.SSLCertVerificationError(), "remote_fetch_failed",
     "The remote server's TLS certificate is not valid for this host."),
    (ConnectionResetError(), "remote_fetch_failed", "The remote file could not be fetched."),
    (http.client.BadStatusLine("x"), "remote_fetch_failed", "The remote file could not be fetched."),
    (ValueError(), "remote_fetch_failed", "The remote file could not be fetched."),
])
def test_network_errors_become_remote_fetch_failures(raised, code, message):
    with pytest.raises(RemoteFetchFailed) as caught, network_errors():
        raise raised
    assert (caught.value.status, caught.value.code, caught.value.message) == (502, code, message)
    assert caught.value.__cause__ is raised


def test_service_errors_and_others_pass_through_network_errors():
    with pytest.raises(UrlNotAllowed), network_errors():
        raise UrlNotAllowed()
    with pytest.raises(KeyError), network_errors():
        raise KeyError("x")
