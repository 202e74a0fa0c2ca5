"""OIDC bearer tokens against a real JWKS endpoint served over HTTP on 127.0.0.1."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.contrib.auth import get_user_model
from django.urls import path
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from rest_framework.decorators import api_view
from rest_framework.response import Response
from rest_framework.test import APIClient

from accounts import oidc
from accounts.models import Membership, Organization
from accounts.principal import principal_for

ROOT = Path(__file__).resolve().parents[2]
ISSUER = "https://id.example.test/realms/mediastore"
AUDIENCE = "mediastore"


@api_view(["GET"])
def whoami(request):
    principal = principal_for(request)
    return Response({"user": request.user.username, "org": principal.organization.slug,
                     "role": principal.role, "service": principal.is_service})


urlpatterns = [path("api/test/whoami", whoami)]


# -- keys and a real JWKS endpoint ------------------------------------------------------------
@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def rsa_jwk(key, kid: str) -> dict:
    return {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig", "alg": "RS256"}


def ec_jwk(key, kid: str) -> dict:
    return {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig", "alg": "ES256"}


class JWKSServer:
    """A JWKS endpoint in a thread: counts hits, can answer slowly or with an error."""

    def __init__(self) -> None:
        self.keys: list[dict] = []
        self.hits = 0
        self.delay = 0.0
        self.status = 200
        self.trickle = False  # send the headers, then a byte every 0.2 s
        self.released = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                server.hits += 1
                if server.delay:
                    server.released.wait(server.delay)
                body = json.dumps({"keys": server.keys}).encode()
                if server.trickle:
                    return self._trickle(body)
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (the slow case)

            def _trickle(self, body):
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for byte in body:
                        if server.released.wait(0.2):
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/realms/mediastore/certs"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def jwks(rsa_key, ec_key):
    server = JWKSServer()
    server.keys = [rsa_jwk(rsa_key, "rsa-1"), ec_jwk(ec_key, "ec-1")]
    yield server
    server.close()


@pytest.fixture(autouse=True)
def oidc_settings(settings, jwks):
    settings.ROOT_URLCONF = __name__
    settings.OIDC_ENABLED = True
    settings.OIDC_ISSUER = ISSUER
    settings.OIDC_JWKS_URL = jwks.url
    settings.OIDC_AUDIENCE = [AUDIENCE, "account"]
    settings.OIDC_ALGORITHMS = ["RS256", "ES256"]
    settings.OIDC_LEEWAY = 30.0
    settings.OIDC_TIMEOUT = 1.0
    settings.OIDC_JWKS_CACHE_TTL = 3600.0
    settings.OIDC_JWKS_MIN_REFRESH_INTERVAL = 30.0
    settings.OIDC_USERNAME_CLAIM = "preferred_username"
    settings.OIDC_ORG_CLAIM = ""
    settings.OIDC_ORG_AUTO_CREATE = False
    oidc.jwks_cache_clear()
    yield settings
    oidc.jwks_cache_clear()


def claims(**overrides) -> dict:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "3f1c9a52-0000-4000-8000-000000000001",
            "preferred_username": "dana", "email": "dana@example.test", "given_name": "Dana",
            "family_name": "Scully", "iat": now, "nbf": now, "exp": now + 300}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def make_token(key, kid: str | None = "rsa-1", alg: str = "RS256", **overrides) -> str:
    headers = {"kid": kid} if kid else {}
    return jwt.encode(claims(**overrides), key, algorithm=alg, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade_token(header: dict, payload: dict, signature: bytes = b"") -> tuple[str, str]:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return signing_input, f"{signing_input}.{b64(signature)}"


def call(token: str):
    return APIClient().get("/api/test/whoami", HTTP_AUTHORIZATION=f"Bearer {token}")


def assert_invalid(response, *words: str) -> None:
    assert response.status_code == 401, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_token" and error["type"] == "authentication_error"
    assert response["WWW-Authenticate"].startswith("Bearer")
    for word in words:
        assert word in error["message"]


# -- the happy path --------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_valid_token_acts_as_a_user_created_on_first_sight(rsa_key, jwks):
    response = call(make_token(rsa_key))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body == {"user": "oidc:3f1c9a52-0000-4000-8000-000000000001", "org": body["org"],
                    "role": "owner", "service": False}
    user = get_user_model().objects.get(username=body["user"])
    assert (user.email, user.first_name, user.last_name) == ("dana@example.test", "Dana", "Scully")
    assert not user.has_usable_password() and not user.is_staff
    personal = Organization.objects.get(slug=body["org"])
    assert personal.kind == Organization.Kind.INDIVIDUAL and personal.name == "dana"
    assert jwks.hits == 1


@pytest.mark.django_db
def test_a_second_request_reuses_the_user_organization_and_cached_keys(rsa_key, jwks):
    first = call(make_token(rsa_key)).json()
    # the provider renamed the user: still the same account, profile updated
    second = call(make_token(rsa_key, preferred_username="dana.s", email="dana.s@example.test")).json()
    assert first == second
    assert get_user_model().objects.filter(username__startswith="oidc:").count() == 1
    assert get_user_model().objects.get().email == "dana.s@example.test"
    assert Organization.objects.filter(kind=Organization.Kind.INDIVIDUAL).count() == 1
    assert jwks.hits == 1


@pytest.mark.django_db
def test_an_es256_token_verifies_against_the_ec_key(ec_key):
    response = call(make_token(ec_key, kid="ec-1", alg="ES256"))
    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_a_token_without_kid_uses_the_only_key_for_its_algorithm(rsa_key):
    assert call(make_token(rsa_key, kid=None)).status_code == 200


@pytest.mark.django_db
def test_leeway_accepts_a_token_expired_ten_seconds_ago(rsa_key):
    now = int(time.time())
    assert call(make_token(rsa_key, iat=now - 600, nbf=now - 600, exp=now - 10)).status_code == 200


@pytest.mark.django_db
def test_an_audience_list_containing_ours_is_accepted(rsa_key):
    assert call(make_token(rsa_key, aud=["other-client", "account"])).status_code == 200


@pytest.mark.django_db
def test_a_very_long_sub_gets_a_hashed_username(rsa_key):
    sub = "x" * 200
    body = call(make_token(rsa_key, sub=sub)).json()
    assert body["user"] == "oidc:sha256:" + hashlib.sha256(sub.encode()).hexdigest()


@pytest.mark.django_db
def test_a_disabled_user_is_refused(rsa_key):
    call(make_token(rsa_key))
    get_user_model().objects.update(is_active=False)
    response = call(make_token(rsa_key))
    assert response.status_code == 401 and response.json()["error"]["code"] == "user_inactive"


# -- organizations from a claim ---------------------------------------------------------------
@pytest.mark.django_db
def test_the_org_claim_joins_an_existing_organization_as_member(rsa_key, acme, settings):
    settings.OIDC_ORG_CLAIM = "org"
    body = call(make_token(rsa_key, org="acme")).json()
    assert body["org"] == "acme" and body["role"] == "member"
    user = get_user_model().objects.get(username=body["user"])
    assert Membership.objects.filter(user=user, organization=acme, role="member").exists()
    assert Membership.objects.filter(user=user, organization__kind="individual", role="owner").exists()
    # an existing role is kept; Keycloak's {"alias": {...}} shape and a one-element list work too
    Membership.objects.filter(user=user, organization=acme).update(role="admin")
    assert call(make_token(rsa_key, org={"acme": {"id": "x"}})).json()["role"] == "admin"
    assert call(make_token(rsa_key, org=["ACME"])).json()["org"] == "acme"


@pytest.mark.django_db
def test_without_the_claim_the_token_acts_in_the_personal_organization(rsa_key, acme, settings):
    settings.OIDC_ORG_CLAIM = "org"
    assert call(make_token(rsa_key)).json()["org"].startswith("user-oidc")


@pytest.mark.django_db
def test_an_unknown_organization_is_refused_unless_auto_create(rsa_key, settings):
    settings.OIDC_ORG_CLAIM = "org"
    response = call(make_token(rsa_key, org="initech"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert "initech" in response.json()["error"]["message"]
    assert not Organization.objects.filter(slug="initech").exists()

    settings.OIDC_ORG_AUTO_CREATE = True
    body = call(make_token(rsa_key, org="initech")).json()
    org = Organization.objects.get(slug="initech")
    assert body["org"] == "initech" and body["role"] == "member"
    assert org.kind == Organization.Kind.ORGANIZATION and org.plan.slug == "organization"
    assert org.quota.used_bytes == 0
    # a second user of the same organization joins it, no `initech-2`
    other = call(make_token(rsa_key, sub="another-subject", org="initech")).json()
    assert other["org"] == "initech"
    assert Organization.objects.filter(slug__startswith="initech").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("value", [["acme", "globex"], "not a slug!", 42])
def test_a_bad_org_claim_is_refused(rsa_key, acme, globex, settings, value):
    settings.OIDC_ORG_CLAIM = "org"
    settings.OIDC_ORG_AUTO_CREATE = True
    response = call(make_token(rsa_key, org=value))
    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"


@pytest.mark.django_db
def test_the_claim_cannot_name_someones_personal_organization(rsa_key, settings):
    settings.OIDC_ORG_CLAIM = "org"
    victim = call(make_token(rsa_key, sub="victim")).json()["org"]
    response = call(make_token(rsa_key, sub="intruder", org=victim))
    assert response.status_code == 403


# -- every bad token answers 401 --------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("overrides,words", [
    ({"exp": -120}, ["expired"]),
    ({"nbf": 120}, ["not yet valid", "nbf"]),
    ({"iat": 120, "nbf": None}, ["not yet valid", "iat"]),
    ({"iss": "https://evil.example.test/realms/mediastore"}, ["issuer"]),
    ({"aud": "someone-else"}, ["audience"]),
    ({"aud": None}, ["aud"]),
    ({"exp": None}, ["exp"]),
    ({"sub": None}, ["sub"]),
])
def test_bad_claims_are_refused(rsa_key, overrides, words):
    now = int(time.time())
    relative = {k: (now + v if k in ("exp", "nbf", "iat") and v is not None else v) for k, v in overrides.items()}
    assert_invalid(call(make_token(rsa_key, **relative)), *words)


@pytest.mark.django_db
def test_alg_none_is_refused(jwks):
    _, token = handmade_token({"alg": "none", "typ": "JWT", "kid": "rsa-1"}, claims())
    assert_invalid(call(token), "algorithm")
    assert_invalid(call(token[: token.rindex(".") + 1]), "algorithm")
    assert jwks.hits == 0


@pytest.mark.django_db
def test_hs256_signed_with_the_public_key_is_refused(rsa_key, jwks, settings):
    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input, _ = handmade_token({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, claims())
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64(signature)}"
    assert_invalid(call(token), "algorithm")
    settings.OIDC_ALGORITHMS = ["HS256", "RS256"]  # even if misconfigured at run time
    assert_invalid(call(token), "algorithm")


@pytest.mark.django_db
def test_an_algorithm_outside_the_allowed_list_is_refused(rsa_key):
    assert_invalid(call(make_token(rsa_key, alg="PS256")), "algorithm")


@pytest.mark.django_db
def test_a_bad_signature_is_refused(rsa_key, other_rsa_key):
    assert_invalid(call(make_token(other_rsa_key, kid="rsa-1")), "signature")
    good = make_token(rsa_key)
    head, payload, signature = good.split(".")
    tampered_payload = b64(json.dumps(claims(sub="admin")).encode())
    assert_invalid(call(f"{head}.{tampered_payload}.{signature}"), "signature")


@pytest.mark.django_db
def test_a_key_of_the_wrong_type_for_the_alg_is_not_used(ec_key, jwks):
    # signed with the EC key but labelled RS256 and pointing at the EC kid
    signing_input, _ = handmade_token({"alg": "RS256", "kid": "ec-1"}, claims())
    assert_invalid(call(f"{signing_input}.{b64(b'x' * 256)}"), "kid")


@pytest.mark.django_db
@pytest.mark.parametrize("token", [
    "abc.def", "abc", "a.b.c", "!!!.@@@.###", "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln",
    b64(b'{"alg":"RS256","kid":"rsa-1"}') + ".bm90IGpzb24.c2ln", "x" * 20000,
])
def test_malformed_tokens_are_refused(token):
    assert_invalid(call(token))


@pytest.mark.django_db
def test_an_unknown_kid_refreshes_once_then_fails(rsa_key, other_rsa_key, jwks):
    assert call(make_token(rsa_key)).status_code == 200
    assert jwks.hits == 1
    assert_invalid(call(make_token(other_rsa_key, kid="nobody-knows")), "kid")
    assert jwks.hits == 2  # exactly one refresh
    # a flood of made-up kids does not reach the provider again within the interval
    for n in range(5):
        assert_invalid(call(make_token(other_rsa_key, kid=f"random-{n}")), "kid")
    assert jwks.hits == 2
    assert call(make_token(rsa_key)).status_code == 200


@pytest.mark.django_db
def test_key_rotation_is_picked_up_by_a_refresh(rsa_key, other_rsa_key, jwks):
    assert call(make_token(rsa_key)).status_code == 200
    jwks.keys = [rsa_jwk(other_rsa_key, "rsa-2"), rsa_jwk(rsa_key, "rsa-1")]
    response = call(make_token(other_rsa_key, kid="rsa-2", sub="rotated-user"))
    assert response.status_code == 200, response.content
    assert jwks.hits == 2


@pytest.mark.django_db
def test_expired_cached_keys_are_refetched_and_kept_if_the_provider_fails(rsa_key, jwks, settings):
    settings.OIDC_JWKS_CACHE_TTL = 0.0
    assert call(make_token(rsa_key)).status_code == 200
    assert call(make_token(rsa_key)).status_code == 200
    assert jwks.hits == 2  # stale: refreshed
    jwks.status = 500
    assert call(make_token(rsa_key)).status_code == 200  # stale-if-error
    assert jwks.hits == 3


# -- the provider down or slow ----------------------------------------------------------------
def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/certs"


def _assert_unavailable(response) -> None:
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "auth_provider_unavailable"


@pytest.mark.django_db
def test_a_jwks_endpoint_that_is_down_answers_503_fast(rsa_key, settings):
    settings.OIDC_JWKS_URL = _closed_port_url()
    started = time.monotonic()
    _assert_unavailable(call(make_token(rsa_key)))
    assert time.monotonic() - started < 1.0


@pytest.mark.django_db
def test_a_jwks_endpoint_answering_an_error_answers_503(rsa_key, jwks):
    jwks.status = 502
    _assert_unavailable(call(make_token(rsa_key)))
    # and callers fail fast during the back-off instead of queueing on the provider
    _assert_unavailable(call(make_token(rsa_key)))
    assert jwks.hits == 1


@pytest.mark.django_db
def test_a_slow_jwks_endpoint_answers_within_the_timeout(rsa_key, jwks, settings):
    settings.OIDC_TIMEOUT = 1.0
    jwks.delay = 5.0
    started = time.monotonic()
    _assert_unavailable(call(make_token(rsa_key)))
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.0, elapsed


@pytest.mark.django_db
def test_a_trickling_jwks_endpoint_cannot_hold_a_worker_past_the_timeout(rsa_key, jwks, settings):
    settings.OIDC_TIMEOUT = 1.0
    jwks.trickle = True
    started = time.monotonic()
    _assert_unavailable(call(make_token(rsa_key)))
    assert time.monotonic() - started < 1.5


def test_concurrent_first_requests_fetch_the_key_set_once(rsa_key, jwks):
    jwks.delay = 0.3
    token = make_token(rsa_key)
    results: list = []

    def verify():
        try:
            results.append(oidc.verify_token(token)["sub"])
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            results.append(exc)

    threads = [threading.Thread(target=verify) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [claims()["sub"]] * 8
    assert jwks.hits == 1


# -- living with API keys and sessions ---------------------------------------------------------
@pytest.mark.django_db
def test_api_keys_still_work_with_oidc_enabled(alice, jwks):
    assert alice.client.get("/api/test/whoami").json()["user"] == "alice"
    assert APIClient().get("/api/test/whoami", HTTP_X_API_KEY=alice.key).json()["user"] == "alice"
    response = APIClient().get("/api/test/whoami", HTTP_AUTHORIZATION="Bearer msk_deadbeef_notarealsecret")
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    assert jwks.hits == 0


@pytest.mark.django_db
def test_with_oidc_disabled_a_jwt_is_not_accepted(rsa_key, settings, jwks):
    settings.OIDC_ENABLED = False
    response = call(make_token(rsa_key))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert jwks.hits == 0


@pytest.mark.django_db
def test_no_credentials_is_still_401(jwks):
    response = APIClient().get("/api/test/whoami")
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.django_db
def test_the_admin_login_backend_maps_to_the_same_accounts(settings, rsa_key, monkeypatch):
    settings.OIDC_RP_CLIENT_ID = "mediastore-admin"
    settings.OIDC_RP_CLIENT_SECRET = "s3cret"
    settings.OIDC_OP_TOKEN_ENDPOINT = "http://127.0.0.1:9/token"
    settings.OIDC_OP_USER_ENDPOINT = "http://127.0.0.1:9/userinfo"
    settings.OIDC_RP_SIGN_ALGO = "RS256"
    bearer_user = call(make_token(rsa_key)).json()["user"]
    backend = oidc.OIDCAdminBackend()
    monkeypatch.setattr(backend, "get_userinfo", lambda *args: claims(email="renamed@example.test"))
    user = backend.get_or_create_user("access", "id", {})
    assert user.username == bearer_user and user.email == "renamed@example.test"
    monkeypatch.setattr(backend, "get_userinfo", lambda *args: claims(sub="fresh-admin-user"))
    created = backend.get_or_create_user("access", "id", {})
    assert created.username == "oidc:fresh-admin-user"
    assert Membership.objects.filter(user=created, organization__kind="individual").exists()


# -- settings from the environment -------------------------------------------------------------
def _start(code: str, **overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OIDC_", "AUTH_", "MEDIA_", "DATABASE_", "R2_")) and k != "ACCOUNT"}
    env.update(overrides)
    return subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("overrides,variable", [
    ({"OIDC_ISSUER": ISSUER, "OIDC_AUDIENCE": "x"}, "OIDC_JWKS_URL"),
    ({"OIDC_ISSUER": ISSUER, "OIDC_AUDIENCE": "x", "OIDC_JWKS_URL": "file:///etc/jwks.json"}, "OIDC_JWKS_URL"),
    ({"AUTH_ENABLED": "true", "AUTH_JWKS_URL": "http://127.0.0.1:9/c", "ACCOUNT": "x"}, "OIDC_ISSUER"),
    ({"AUTH_ISSUER": ISSUER, "AUTH_JWKS_URL": "http://127.0.0.1:9/c"}, "OIDC_AUDIENCE"),
    ({"OIDC_ALGORITHMS": "RS256,HS256"}, "OIDC_ALGORITHMS"),
    ({"OIDC_ALGORITHMS": "none"}, "OIDC_ALGORITHMS"),
    ({"OIDC_TIMEOUT": "soon"}, "OIDC_TIMEOUT"),
    ({"OIDC_ENABLED": "perhaps"}, "OIDC_ENABLED"),
    ({"OIDC_RP_CLIENT_ID": "admin"}, "OIDC_RP_CLIENT_SECRET"),
])
def test_bad_oidc_settings_stop_start_up_naming_the_variable(overrides, variable):
    result = _start("", **overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and variable in result.stderr


def test_oidc_settings_and_aliases_are_read():
    code = ("from django.conf import settings as s; from django.urls import reverse; "
            "print(s.OIDC_ENABLED, s.OIDC_ISSUER, s.OIDC_JWKS_URL, s.OIDC_AUDIENCE, s.OIDC_ALGORITHMS, "
            "s.OIDC_LEEWAY, s.OIDC_TIMEOUT, 'mozilla_django_oidc' in s.INSTALLED_APPS, "
            "s.AUTHENTICATION_BACKENDS[-1], s.OIDC_OP_JWKS_ENDPOINT == s.OIDC_JWKS_URL, "
            "reverse('oidc_authentication_init'))")
    result = _start(code, AUTH_ISSUER=ISSUER, AUTH_JWKS_URL="http://127.0.0.1:9/certs", ACCOUNT="account,web",
                    OIDC_ALGORITHMS="rs256,eddsa", OIDC_LEEWAY="1m", OIDC_TIMEOUT="2s",
                    OIDC_RP_CLIENT_ID="admin", OIDC_RP_CLIENT_SECRET="s",
                    OIDC_OP_AUTHORIZATION_ENDPOINT="http://127.0.0.1:9/auth",
                    OIDC_OP_TOKEN_ENDPOINT="http://127.0.0.1:9/token", OIDC_OP_USER_ENDPOINT="http://127.0.0.1:9/me")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "True", ISSUER, "http://127.0.0.1:9/certs", "['account',", "'web']", "['RS256',", "'EdDSA']",
        "60.0", "2.0", "True", "accounts.oidc.OIDCAdminBackend", "True", "/oidc/authenticate/"]


def test_by_default_oidc_is_off_and_the_oidc_urls_are_absent():
    code = ("from django.conf import settings as s; from django.urls import NoReverseMatch, reverse\n"
            "try: reverse('oidc_authentication_init'); print('routed')\n"
            "except NoReverseMatch: print(s.OIDC_ENABLED, s.OIDC_LOGIN_ENABLED, 'mozilla_django_oidc' in s.INSTALLED_APPS)")
    result = _start(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "False"]


@pytest.mark.django_db
def test_sub_values_are_opaque_strings(rsa_key):
    # sub values are opaque strings: a UUID, an e-mail-like value, unicode all work
    for sub in (str(uuid.uuid4()), "auth0|5f7c8ec7c33c6c004bbafe82", "ユーザー"):
        assert call(make_token(rsa_key, sub=sub)).json()["user"] == f"oidc:{sub}"
