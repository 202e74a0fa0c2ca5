import io

import pytest
from django.core.management import call_command
from django.urls import path
from rest_framework.decorators import api_view
from rest_framework.response import Response
from rest_framework.test import APIClient

from accounts.models import ApiKey, Organization
from accounts.principal import principal_for
from accounts.services import api_key_revoke


@api_view(["GET"])
def whoami(request):
    principal = principal_for(request)
    return Response({"user": request.user.username, "org": principal.organization.slug,
                     "service": principal.is_service, "role": principal.role})


urlpatterns = [path("api/test/whoami", whoami)]


@pytest.fixture(autouse=True)
def urls(settings):
    settings.ROOT_URLCONF = __name__


def test_a_bearer_key_acts_as_its_user(alice):
    response = alice.client.get("/api/test/whoami")
    assert response.status_code == 200
    assert response.json() == {"user": "alice", "org": "acme", "service": False, "role": "owner"}


def test_x_api_key_works_too(alice):
    response = APIClient().get("/api/test/whoami", HTTP_X_API_KEY=alice.key)
    assert response.json()["user"] == "alice"


def test_a_service_key_is_marked_as_service(acme_service):
    assert acme_service.client.get("/api/test/whoami").json()["service"] is True


def _assert_401(response, code):
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_rejects_no_credentials(anon, db):
    _assert_401(anon.get("/api/test/whoami"), "not_authenticated")


def test_it_rejects_an_unknown_key(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer msk_deadbeef_notarealsecretatall")
    _assert_401(client.get("/api/test/whoami"), "invalid_api_key")


def test_it_rejects_a_right_prefix_with_a_wrong_secret(alice):
    prefix = alice.key.rsplit("_", 1)[0]
    _assert_401(APIClient().get("/api/test/whoami", HTTP_X_API_KEY=f"{prefix}_wrong"), "invalid_api_key")


def test_it_rejects_a_revoked_key(alice):
    api_key_revoke(api_key=ApiKey.objects.get(user=alice.user))
    _assert_401(alice.client.get("/api/test/whoami"), "revoked_api_key")


@pytest.mark.parametrize("header", ["Basic YWxpY2U6cHc=", "Bearer", "Bearer a b", "msk_x"])
def test_it_rejects_malformed_headers(header, db):
    _assert_401(APIClient().get("/api/test/whoami", HTTP_AUTHORIZATION=header), "malformed_credentials")


def test_keys_are_stored_as_hashes_only(alice):
    stored = ApiKey.objects.get(user=alice.user)
    assert alice.key.startswith(stored.prefix)
    assert alice.key not in (stored.secret_hash, stored.prefix)
    assert len(stored.secret_hash) == 64


def test_use_is_recorded(alice):
    alice.client.get("/api/test/whoami")
    assert ApiKey.objects.get(user=alice.user).last_used_at is not None


@pytest.mark.django_db
def test_create_api_key_creates_what_is_missing_and_prints_only_the_key():
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "--org", "initech", "--user", "peter", "--plan", "individual",
                 stdout=out, stderr=err)
    secret = out.getvalue().strip()
    assert "\n" not in secret and secret.startswith("msk_")
    org = Organization.objects.get(slug="initech")
    assert org.plan.slug == "individual" and org.kind == "individual"
    assert org.quota.used_bytes == 0
    response = APIClient().get("/api/test/whoami", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.json() == {"user": "peter", "org": "initech", "service": False, "role": "owner"}


@pytest.mark.django_db
def test_create_api_key_reuses_existing_rows_and_makes_service_keys(alice):
    out = io.StringIO()
    call_command("create_api_key", "--org", "acme", "--user", "alice", "--service", stdout=out,
                 stderr=io.StringIO())
    assert Organization.objects.filter(slug="acme").count() == 1
    response = APIClient().get("/api/test/whoami", HTTP_X_API_KEY=out.getvalue().strip())
    assert response.json()["service"] is True and response.json()["role"] == "owner"


@pytest.mark.django_db
def test_create_api_key_wants_a_slug_so_reruns_find_the_same_organization():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="acme-corp"):
        call_command("create_api_key", "--org", "Acme Corp", "--user", "x", stdout=io.StringIO(),
                     stderr=io.StringIO())
    assert not Organization.objects.exists()


# -- the parts of authentication one request cannot show ----------------------------------
def _request(**headers):
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    return Request(APIRequestFactory().get("/", **headers))


def _refusal(**headers):
    from accounts.authentication import ApiKeyAuthentication
    from config.errors import NotAuthenticated

    with pytest.raises(NotAuthenticated) as caught:
        ApiKeyAuthentication().authenticate(_request(**headers))
    return caught.value.status, caught.value.code, caught.value.message


@pytest.mark.parametrize(("headers", "expected"), [
    ({"HTTP_AUTHORIZATION": "bearer  msk_abc "}, ("bearer", "msk_abc")),
    ({"HTTP_AUTHORIZATION": "BEARER msk_abc"}, ("bearer", "msk_abc")),
    ({"HTTP_X_API_KEY": "  msk_abc  "}, ("x-api-key", "msk_abc")),
    ({"HTTP_AUTHORIZATION": "Bearer msk_a", "HTTP_X_API_KEY": "msk_b"}, ("bearer", "msk_a")),
    ({"HTTP_X_API_KEY": "   "}, None),
    ({}, None),
])
def test_credentials_come_from_the_authorization_header_first_then_x_api_key(headers, expected):
    from accounts.authentication import credentials_from

    assert credentials_from(_request(**headers)) == expected


def test_a_malformed_authorization_header_says_how_to_write_it():
    assert _refusal(HTTP_AUTHORIZATION="Token msk_abc") == (
        401, "malformed_credentials", "Malformed Authorization header; use 'Bearer <key>'.")


def test_a_bearer_token_that_is_not_an_api_key_is_left_to_the_next_authenticator(db):
    from accounts.authentication import ApiKeyAuthentication

    assert ApiKeyAuthentication().authenticate(_request(HTTP_AUTHORIZATION="Bearer eyJhbGciOi.x.y")) is None
    assert ApiKeyAuthentication().authenticate(_request()) is None


def test_an_x_api_key_that_is_not_an_api_key_is_refused_not_passed_on(db):
    assert _refusal(HTTP_X_API_KEY="eyJhbGciOi.x.y") == (401, "invalid_api_key", "Unknown API key.")


def test_each_refusal_says_why(alice):
    assert _refusal(HTTP_X_API_KEY=alice.key + "x") == (401, "invalid_api_key", "Unknown API key.")
    api_key_revoke(api_key=ApiKey.objects.get(user=alice.user))
    assert _refusal(HTTP_X_API_KEY=alice.key) == (401, "revoked_api_key", "This API key has been revoked.")


def test_a_disabled_users_key_is_refused(alice):
    type(alice.user).objects.filter(pk=alice.user.pk).update(is_active=False)
    assert _refusal(HTTP_X_API_KEY=alice.key) == (401, "invalid_api_key", "This API key's user is disabled.")
    response = APIClient().get("/api/test/whoami", HTTP_X_API_KEY=alice.key)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_api_key")


def test_a_401_names_the_bearer_scheme_and_realm(db):
    response = APIClient().get("/api/test/whoami")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_authentication_returns_the_keys_user_and_the_key(alice):
    from accounts.authentication import ApiKeyAuthentication

    user, key = ApiKeyAuthentication().authenticate(_request(HTTP_AUTHORIZATION=f"Bearer {alice.key}"))
    assert (user.pk, key.pk) == (alice.user.pk, ApiKey.objects.get(user=alice.user).pk)
    assert key.last_used_at is not None


def test_the_one_query_lookup_loads_each_row_as_the_orm_would(alice):
    from django.forms.models import model_to_dict

    from accounts.authentication import _key_with_role

    key = _key_with_role(alice.key)
    orm = ApiKey.objects.select_related("organization__plan", "user").get(user=alice.user)
    for fetched, loaded in [(key, orm), (key.organization, orm.organization),
                            (key.organization.plan, orm.organization.plan), (key.user, orm.user)]:
        assert type(fetched) is type(loaded)
        assert [getattr(fetched, f.attname) for f in type(fetched)._meta.concrete_fields] == [
            getattr(loaded, f.attname) for f in type(loaded)._meta.concrete_fields], model_to_dict(loaded)
        assert fetched._state.adding is False and fetched._state.db == "default"
    assert key.member_role == "owner"


def test_a_fresh_query_builds_the_same_statement_and_rows(alice, bob):
    # The module's query caches its SQL on first use; a new one builds it again from the models.
    from django.db import connection

    from accounts.authentication import _KEY_QUERY, _instances, _KeyQuery

    fresh = _KeyQuery()
    prefix = ApiKey.objects.get(user=bob.user).prefix
    assert fresh.sql(connection) == _KEY_QUERY.sql(connection)
    assert fresh.sql(connection) is fresh.sql(connection)
    key = _instances(fresh.fetch(prefix))  # the fetched row, as the key cache keeps it
    assert (key.prefix, key.organization.slug, key.organization.plan.slug, key.user.username, key.member_role) == (
        prefix, "acme", "organization", "bob", "member")
    assert fresh.fetch("msk_00000000") is None


def test_the_authentication_challenge_names_the_bearer_scheme_and_realm():
    from accounts.authentication import ApiKeyAuthentication

    assert ApiKeyAuthentication().authenticate_header(_request()) == 'Bearer realm="api"'


def test_the_lookup_carries_the_users_role_or_none_once_they_left(bob):
    from accounts.authentication import _key_with_role
    from accounts.models import Membership

    assert _key_with_role(bob.key).member_role == "member"
    Membership.objects.filter(user=bob.user).delete()
    assert _key_with_role(bob.key).member_role is None


@pytest.mark.parametrize("secret", ["", "msk_", "msk_1a2b3c4d", "msk_1a2b3c4d_", "msk_1a2b3c4dXsecret",
                                    "xsk_1a2b3c4d_secret", "msk_00000000_secret"])
def test_the_lookup_finds_nothing_for_a_malformed_or_unknown_secret(alice, secret):
    from accounts.authentication import _key_with_role
    from accounts.services import api_key_lookup

    assert _key_with_role(secret) is None
    assert api_key_lookup(secret) is None


def test_the_prefix_is_the_first_twelve_characters_of_a_well_formed_secret():
    from accounts.services import key_prefix

    assert key_prefix("msk_1a2b3c4d_s") == "msk_1a2b3c4d"
    assert key_prefix("msk_1a2b3c4d_") is None
    assert key_prefix("msk_1a2b3c4d-secret") is None
    assert key_prefix("MSK_1a2b3c4d_secret") is None


def test_secrets_are_hashed_with_sha256():
    import hashlib

    from accounts.services import hash_secret

    assert hash_secret("msk_x") == hashlib.sha256(b"msk_x").hexdigest()


def test_the_orm_lookup_finds_the_key_only_with_its_whole_secret(alice, django_assert_num_queries):
    from accounts.services import api_key_lookup

    with django_assert_num_queries(1):
        key = api_key_lookup(alice.key)
        assert (key.organization.slug, key.organization.plan.slug, key.user.username) == (
            "acme", "organization", "alice")
    assert key.pk == ApiKey.objects.get(user=alice.user).pk
    assert api_key_lookup(alice.key[:-1] + ("A" if alice.key[-1] != "A" else "B")) is None


def _last_used_after_a_request(alice, monkeypatch, seconds_ago: int):
    from datetime import datetime, timedelta, timezone as tz

    from accounts import authentication

    now = datetime(2030, 1, 1, 12, 0, tzinfo=tz.utc)
    ApiKey.objects.filter(user=alice.user).update(last_used_at=now - timedelta(seconds=seconds_ago))
    monkeypatch.setattr(authentication.timezone, "now", lambda: now)
    authentication.ApiKeyAuthentication().authenticate(_request(HTTP_X_API_KEY=alice.key))
    return now - ApiKey.objects.get(user=alice.user).last_used_at


def test_use_is_recorded_at_most_once_a_minute(alice, monkeypatch, settings):
    from datetime import timedelta

    settings.API_KEY_LAST_USED_RESOLUTION = 60
    settings.API_KEY_CACHE_SECONDS = 0  # each request reads the key row, as after the cache's few seconds
    assert _last_used_after_a_request(alice, monkeypatch, 60) == timedelta(seconds=60)
    assert _last_used_after_a_request(alice, monkeypatch, 61) == timedelta(0)


# -- the per-process cache of authenticated keys (accounts/keycache.py) ------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    from accounts import keycache

    fake = Clock()
    monkeypatch.setattr(keycache, "_now", fake)
    return fake


def _revoke_elsewhere(key: ApiKey) -> None:
    """What another process's `api_key_revoke` commits: the key's row, then the shared version."""
    from django.db.models import F
    from django.utils import timezone

    from accounts.models import AuthVersion

    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    AuthVersion.objects.filter(pk=1).update(version=F("version") + 1)


def test_a_recently_authenticated_key_is_not_read_again(alice, clock, django_assert_num_queries):
    assert alice.client.get("/api/test/whoami").status_code == 200
    clock.now += 0.1
    with django_assert_num_queries(0):
        response = alice.client.get("/api/test/whoami")
    assert response.json() == {"user": "alice", "org": "acme", "service": False, "role": "owner"}


def test_a_cached_key_is_read_again_after_its_lifetime(alice, clock, settings, django_assert_num_queries):
    settings.API_KEY_CACHE_SECONDS, settings.REDIS_URL = 5, ""
    alice.client.get("/api/test/whoami")
    clock.now += 5.1
    with django_assert_num_queries(2):  # the shared version, then the key
        assert alice.client.get("/api/test/whoami").status_code == 200


def test_a_key_revoked_by_another_process_stops_working_within_a_second(alice, clock, settings):
    settings.REDIS_URL = ""  # the version row in the database
    assert alice.client.get("/api/test/whoami").status_code == 200
    _revoke_elsewhere(ApiKey.objects.get(user=alice.user))
    clock.now += 1.0
    _assert_401(alice.client.get("/api/test/whoami"), "revoked_api_key")


def test_a_key_revoked_by_another_process_through_redis_stops_working_within_a_second(alice, clock, settings,
                                                                                    redis_url):
    from config.concurrency import redis_client, redis_key

    settings.REDIS_URL = redis_url
    assert alice.client.get("/api/test/whoami").status_code == 200
    ApiKey.objects.filter(user=alice.user).update(revoked_at="2026-01-01T00:00:00Z")
    redis_client(redis_url).incr(redis_key("auth-version", "all"))
    clock.now += 1.0
    _assert_401(alice.client.get("/api/test/whoami"), "revoked_api_key")


def test_a_key_revoked_in_this_process_stops_working_at_once(alice, clock):
    assert alice.client.get("/api/test/whoami").status_code == 200
    api_key_revoke(api_key=ApiKey.objects.get(user=alice.user))
    _assert_401(alice.client.get("/api/test/whoami"), "revoked_api_key")


def test_a_cached_key_of_a_disabled_user_stops_working_at_once(alice, clock):
    assert alice.client.get("/api/test/whoami").status_code == 200
    alice.user.is_active = False
    alice.user.save()
    _assert_401(alice.client.get("/api/test/whoami"), "invalid_api_key")


def test_a_cached_key_answers_with_the_new_role_at_once(bob, clock):
    from accounts.models import Membership

    assert bob.client.get("/api/test/whoami").json()["role"] == "member"
    membership = Membership.objects.get(user=bob.user, organization=bob.organization)
    membership.role = Membership.Role.ADMIN
    membership.save()
    assert bob.client.get("/api/test/whoami").json()["role"] == "admin"


def test_keys_are_read_from_the_database_while_redis_is_unreachable(alice, clock, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    assert alice.client.get("/api/test/whoami").status_code == 200
    ApiKey.objects.filter(user=alice.user).update(revoked_at="2026-01-01T00:00:00Z")  # no version bump reaches anyone
    _assert_401(alice.client.get("/api/test/whoami"), "revoked_api_key")
