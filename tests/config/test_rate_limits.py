"""Requests per minute per API key and per organization (from the plan), per client address for
anonymous and signed-URL requests: 429 `rate_limited` with Retry-After and the RateLimit headers."""
import uuid

import pytest
from django.test import Client
from prometheus_client import REGISTRY

from config import ratelimit
from config.ratelimit import LocalWindows, RedisWindows, check
from tests.factories import unique_png, upload


@pytest.fixture
def plan_allows(acme):
    """Sets the per-key and per-organization limits of acme's plan."""
    def allow(*, per_key: int = 1000, per_organization: int = 1000) -> None:
        plan = acme.plan
        plan.requests_per_minute, plan.organization_requests_per_minute = per_key, per_organization
        plan.save()

    return allow


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def listing(actor):
    return actor.client.get("/v1/media")


def test_a_key_past_its_plans_requests_per_minute_answers_429_with_retry_after(alice, plan_allows):
    plan_allows(per_key=2)
    counted = REGISTRY.get_sample_value("mediastore_rate_limited_total", {"scope": "key"}) or 0
    first, second, third = listing(alice), listing(alice), listing(alice)
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first["RateLimit-Limit"], first["RateLimit-Remaining"], second["RateLimit-Remaining"]) == ("2", "1", "0")
    assert error_of(third, 429)["code"] == "rate_limited"
    assert 1 <= int(third["Retry-After"]) <= 60 and third["Retry-After"] == third["RateLimit-Reset"]
    assert third["RateLimit-Remaining"] == "0" and third["RateLimit-Policy"] == "2;w=60"
    assert REGISTRY.get_sample_value("mediastore_rate_limited_total", {"scope": "key"}) == counted + 1


def test_another_key_of_the_organization_has_its_own_count(alice, bob, plan_allows):
    plan_allows(per_key=1)
    assert listing(alice).status_code == 200
    assert error_of(listing(alice), 429)["code"] == "rate_limited"
    assert listing(bob).status_code == 200


def test_the_organizations_limit_counts_every_key_and_no_other_organization(alice, bob, carol, charlie,
                                                                              plan_allows):
    plan_allows(per_organization=3)  # acme and globex are both on the organization plan
    assert [listing(actor).status_code for actor in (alice, bob, carol)] == [200, 200, 200]
    assert error_of(listing(bob), 429)["code"] == "rate_limited"
    assert listing(charlie).status_code == 200


def test_an_upload_past_the_limit_is_refused_before_its_body_is_read(alice, plan_allows):
    plan_allows(per_key=1)
    assert listing(alice).status_code == 200
    response = alice.client.post("/v1/media/upload", {"file": upload("a.png", unique_png())}, format="multipart")
    assert error_of(response, 429)["code"] == "rate_limited"


def test_anonymous_requests_are_limited_per_address(db, settings):
    settings.RATE_LIMIT_ANONYMOUS_PER_MINUTE = 2
    anonymous = Client()
    assert [anonymous.get("/v1/media").status_code for _ in range(2)] == [401, 401]
    refused = anonymous.get("/v1/media")
    assert error_of(refused, 429)["code"] == "rate_limited" and refused["Retry-After"]
    assert Client(REMOTE_ADDR="10.0.0.7").get("/v1/media").status_code == 401


def test_signed_url_downloads_are_limited_per_address(alice, alices_media, settings):
    settings.RATE_LIMIT_ANONYMOUS_PER_MINUTE = 1
    url = alice.client.get(f"/v1/media/{alices_media['id']}").json()["presigned_url"]
    path = url.removeprefix("http://testserver")
    assert path.startswith("/files/")
    assert Client().get(path).status_code == 200
    refused = Client().get(path)
    assert error_of(refused, 429)["code"] == "rate_limited"
    assert refused["RateLimit-Limit"] == "1"


def test_health_checks_are_never_limited(db, settings):
    settings.RATE_LIMIT_ANONYMOUS_PER_MINUTE = 1
    assert [Client().get("/healthz").status_code for _ in range(3)] == [200, 200, 200]


def test_a_limit_of_0_and_rate_limits_off_let_everything_through(alice, plan_allows, settings):
    plan_allows(per_key=0, per_organization=0)
    assert [listing(alice).status_code for _ in range(3)] == [200, 200, 200]
    plan_allows(per_key=1)
    settings.RATE_LIMITS_ENABLED = False
    responses = [listing(alice) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200] and "RateLimit-Limit" not in responses[0]


def test_a_new_window_starts_every_minute():
    scope = f"test:{uuid.uuid4().hex}"
    assert check(scope, 1, now=120.0).allowed
    assert not check(scope, 1, now=150.0).allowed
    assert check(scope, 1, now=180.0).allowed and check(scope, 1, now=180.0).reset == 60


@pytest.mark.redis
def test_redis_counts_are_shared_by_every_worker(redis_url):
    first, second = RedisWindows(redis_url), RedisWindows(redis_url)
    key = f"mediastore:test:rate:{uuid.uuid4().hex}:1"
    assert (first.count(key, 61), second.count(key, 61), first.count(key, 61)) == (1, 2, 3)


def test_an_unreachable_redis_lets_requests_through():
    assert RedisWindows("redis://127.0.0.1:1/0").count("mediastore:test:rate:x:1", 61) is None


def test_settings_choose_redis_when_redis_url_is_set(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert isinstance(ratelimit.windows(), RedisWindows)
    settings.REDIS_URL = ""
    assert isinstance(ratelimit.windows(), LocalWindows)
