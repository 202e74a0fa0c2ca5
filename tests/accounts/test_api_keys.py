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
