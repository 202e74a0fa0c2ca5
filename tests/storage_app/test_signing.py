"""App-signed URLs: what the signature covers, how a URL is written, when it expires."""
from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote, unquote, urlencode, urlsplit

import pytest
from django.http import QueryDict
from django.utils.crypto import salted_hmac

from config.errors import SignatureInvalid
from storage_app import signing
from storage_app.signing import SignedGrant, file_url, grant_params, make_grant, signed_url, verify

KEY = "organizations/1/files/2/a b.png"
FULL = SignedGrant(op="put", key=KEY, expires=2_000_000_000, content_type="image/png", max_bytes=0,
                   filename="cat.png")
# Every optional field, with the characters a query string must encode: space, '&', '=', '+', '%', '/',
# ';' and non-ASCII. The transform is opaque to signing, so it gets odd characters too.
AWKWARD = SignedGrant(op="put", key="organizations/1/files/2/ünï & co #1?.png", expires=2_000_000_000,
                      content_type="text/plain; charset=utf-8", max_bytes=0,
                      filename="ünï & co/a+b=100%.txt", transform="w256_h0 fit&x=/1")
TRANSFORMED = replace(FULL, op="get", content_type="", max_bytes=None, transform="w256_h0_inside_q80_webp")


def refused(op: str, key: str, params: dict, **kwargs) -> tuple[int, str, str]:
    with pytest.raises(SignatureInvalid) as caught:
        verify(op, key, params, **kwargs)
    return caught.value.status, caught.value.code, caught.value.message


def test_a_signed_grant_verifies_back_to_itself():
    assert verify("put", KEY, grant_params(FULL), now=1_000) == FULL


def test_the_signature_is_a_salted_sha256_hmac_of_every_field_one_per_line(settings):
    # Pinned: a URL issued before an upgrade must still verify after it.
    settings.SECRET_KEY = "pinned-secret"
    message = "put\norganizations/1/files/2/a b.png\n2000000000\nimage/png\n0\ncat.png"
    expected = salted_hmac("mediastore.storage_app.signed-url.v1", message, secret="pinned-secret",
                           algorithm="sha256").hexdigest()
    assert grant_params(FULL)["sig"] == expected
    unlimited = salted_hmac("mediastore.storage_app.signed-url.v1", "get\nk\n5\n\n\n", secret="pinned-secret",
                            algorithm="sha256").hexdigest()
    assert grant_params(SignedGrant(op="get", key="k", expires=5))["sig"] == unlimited
    transformed = salted_hmac("mediastore.storage_app.signed-url.v1",
                              "get\norganizations/1/files/2/a b.png\n2000000000\n\n\ncat.png\ntf=w256_h0_inside_q80_webp",
                              secret="pinned-secret", algorithm="sha256").hexdigest()
    assert grant_params(TRANSFORMED)["sig"] == transformed


@pytest.mark.parametrize(("param", "value"), [
    ("op", "get"), ("exp", "2000000001"), ("ct", "text/html"), ("len", "1"), ("dl", "evil.html"),
])
def test_changing_any_signed_parameter_breaks_the_signature(param, value):
    params = {**grant_params(FULL), param: value}
    assert refused(params["op"], KEY, params, now=1_000) == (
        403, "signature_invalid", "The signed URL is invalid or has expired.")


@pytest.mark.parametrize("value", ["w512_h0_inside_q80_webp", "", "W256_H0_INSIDE_Q80_WEBP"])
def test_changing_the_transform_breaks_the_signature(value):
    params = {**grant_params(TRANSFORMED), "tf": value}
    assert refused("get", KEY, params, now=1_000)[1] == "signature_invalid"


def test_adding_a_transform_to_a_plain_grant_breaks_the_signature():
    params = {**grant_params(FULL), "tf": "w256_h0_inside_q80_webp"}
    assert refused("put", KEY, params, now=1_000)[1] == "signature_invalid"


@pytest.mark.parametrize("dropped", ["ct", "len", "dl"])
def test_dropping_an_optional_signed_parameter_breaks_the_signature(dropped):
    params = {k: v for k, v in grant_params(FULL).items() if k != dropped}
    assert refused("put", KEY, params, now=1_000)[1] == "signature_invalid"


def test_dropping_the_transform_breaks_the_signature():
    params = {k: v for k, v in grant_params(TRANSFORMED).items() if k != "tf"}
    assert refused("get", KEY, params, now=1_000)[1] == "signature_invalid"


def test_a_signature_for_one_key_does_not_open_another():
    assert refused("put", KEY + "x", grant_params(FULL), now=1_000)[1] == "signature_invalid"


def test_a_signature_for_one_operation_is_refused_for_another_even_if_the_url_says_so():
    params = grant_params(FULL)
    assert refused("get", KEY, params, now=1_000)[1] == "signature_invalid"


@pytest.mark.parametrize("params", [
    {}, {"op": "put"}, {"op": "put", "exp": "soon", "sig": "x"}, {"op": "put", "exp": "1", "len": "ten", "sig": "x"},
    {"op": "put", "exp": "2000000000"},
])
def test_missing_or_malformed_parameters_are_an_invalid_signature(params):
    assert refused("put", KEY, params, now=1_000) == (403, "signature_invalid",
                                                       "The signed URL is invalid or has expired.")


def test_a_grant_is_valid_up_to_its_expiry_second_and_expired_after_it():
    params = grant_params(FULL)
    assert verify("put", KEY, params, now=FULL.expires) == FULL
    assert refused("put", KEY, params, now=FULL.expires + 0.5) == (403, "signature_expired",
                                                                   "The signed URL has expired.")


def test_without_an_explicit_time_the_clock_decides(monkeypatch):
    params = grant_params(FULL)
    monkeypatch.setattr(signing.time, "time", lambda: FULL.expires - 1)
    assert verify("put", KEY, params) == FULL
    monkeypatch.setattr(signing.time, "time", lambda: FULL.expires + 1)
    assert refused("put", KEY, params)[1] == "signature_expired"


def test_a_grant_expires_ttl_seconds_from_now_rounded_down(monkeypatch):
    monkeypatch.setattr(signing.time, "time", lambda: 1_000.9)
    assert make_grant("get", "k", 60.5, filename="a.png") == SignedGrant(op="get", key="k", expires=1061,
                                                                           filename="a.png")


def test_the_parameters_carry_only_the_fields_a_grant_has():
    plain = SignedGrant(op="get", key="k", expires=5)
    assert list(grant_params(plain)) == ["op", "exp", "sig"]
    assert {k: v for k, v in grant_params(FULL).items() if k != "sig"} == {
        "op": "put", "exp": "2000000000", "ct": "image/png", "len": "0", "dl": "cat.png"}
    assert {k: v for k, v in grant_params(TRANSFORMED).items() if k != "sig"} == {
        "op": "get", "exp": "2000000000", "dl": "cat.png", "tf": "w256_h0_inside_q80_webp"}


def test_a_transformed_grant_verifies_back_to_itself():
    assert verify("get", KEY, grant_params(TRANSFORMED), now=1_000) == TRANSFORMED


def test_a_url_is_the_base_url_the_quoted_key_and_the_parameters(settings):
    settings.MEDIA_LOCAL_STORAGE_BASE_URL = "https://media.example/files"
    assert file_url(KEY) == "https://media.example/files/organizations/1/files/2/a%20b.png"
    url = signed_url(replace(FULL, max_bytes=None, content_type="", filename=""))
    sig = grant_params(replace(FULL, max_bytes=None, content_type="", filename=""))["sig"]
    assert url == f"https://media.example/files/organizations/1/files/2/a%20b.png?op=put&exp=2000000000&sig={sig}"


def test_a_grant_without_optional_fields_verifies_back_to_itself():
    plain = SignedGrant(op="get", key=KEY, expires=2_000_000_000)
    assert verify("get", KEY, grant_params(plain), now=1_000) == plain


def test_a_url_with_every_field_quotes_the_free_text_values_as_a_form_would(settings):
    settings.MEDIA_LOCAL_STORAGE_BASE_URL = "https://media.example/files"
    sig = grant_params(AWKWARD)["sig"]
    assert signed_url(AWKWARD) == (
        "https://media.example/files/organizations/1/files/2/%C3%BCn%C3%AF%20%26%20co%20%231%3F.png"
        "?op=put&exp=2000000000&ct=text%2Fplain%3B+charset%3Dutf-8&len=0"
        f"&dl=%C3%BCn%C3%AF+%26+co%2Fa%2Bb%3D100%25.txt&tf=w256_h0+fit%26x%3D%2F1&sig={sig}")


@pytest.mark.parametrize("grant", [FULL, TRANSFORMED, AWKWARD, SignedGrant(op="post", key="k", expires=5, max_bytes=7)],
                         ids=["full", "transformed", "awkward", "limit-only"])
def test_a_url_carries_the_same_query_urlencode_makes_of_the_parameters(grant):
    # signed_url builds the query by hand for speed; it must stay what urlencode(grant_params) gives.
    assert signed_url(grant) == f"{file_url(grant.key)}?{urlencode(grant_params(grant))}"


@pytest.mark.parametrize("grant", [FULL, TRANSFORMED, AWKWARD], ids=["full", "transformed", "awkward"])
def test_a_url_read_back_by_the_server_verifies_to_its_grant(grant, settings):
    settings.MEDIA_LOCAL_STORAGE_BASE_URL = "https://media.example/files"
    url = urlsplit(signed_url(grant))
    key = unquote(url.path.removeprefix("/files/"))
    assert verify(grant.op, key, QueryDict(url.query), now=1_000) == grant


@pytest.mark.parametrize("key", ["organizations/1/files/2/cat-1_a.b~c.png", "a+b=c@d,e/f.png", "a b/\u00fc.png", ""])
def test_a_file_url_path_is_what_quote_makes_of_the_key(key, settings):
    # Keys with nothing to quote skip the quoting pass; the path must be the same either way.
    settings.MEDIA_LOCAL_STORAGE_BASE_URL = "https://media.example/files"
    assert file_url(key) == f"https://media.example/files/{quote(key)}"


def test_a_new_secret_key_signs_differently_and_refuses_urls_of_the_old_one(settings):
    settings.SECRET_KEY = "first-secret"
    params = grant_params(FULL)
    settings.SECRET_KEY = "second-secret"
    assert grant_params(FULL)["sig"] != params["sig"]
    with pytest.raises(SignatureInvalid):
        verify(FULL.op, FULL.key, params, now=1_000)
