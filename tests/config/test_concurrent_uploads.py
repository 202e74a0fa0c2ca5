"""At most N uploads in progress at once per organization (authenticated routes) and per client
address (signed-URL routes): 429 `too_many_concurrent_uploads` with Retry-After past it."""
import threading
import uuid

import pytest
from django.test import Client

from config import concurrency
from config.concurrency import LocalSlots, RedisSlots, slots
from tests.factories import unique_png, upload


@pytest.fixture
def one_upload_at_a_time(settings):
    settings.MEDIA_CONCURRENT_UPLOADS_PER_ORG = 1
    settings.MEDIA_CONCURRENT_UPLOADS_PER_IP = 1


@pytest.fixture
def busy():
    """Holds the one slot of a scope, as an upload in progress elsewhere would."""
    held = []

    def hold(scope: str) -> None:
        token = slots().acquire(scope, 1)
        assert token is not None
        held.append((scope, token))

    yield hold
    for scope, token in held:
        slots().release(scope, token)


def media_upload(actor):
    return actor.client.post("/v1/media/upload", {"file": upload("a.png", unique_png())}, format="multipart")


def storage_upload(actor):
    return actor.client.post("/api/v1/storage/upload", {"file": upload("a.png", unique_png())}, format="multipart")


def image_save(actor):
    return actor.client.post("/api/v1/storage/images/gen/a.png", {"file": upload("a.png", unique_png())},
                             format="multipart")


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


@pytest.mark.parametrize("send", [media_upload, storage_upload, image_save])
def test_an_upload_past_the_organizations_limit_answers_429_with_retry_after(
        acme_service, one_upload_at_a_time, busy, send):
    busy(f"org:{acme_service.organization.pk}")
    response = send(acme_service)
    assert error_of(response, 429)["code"] == "too_many_concurrent_uploads"
    assert response["Retry-After"] == "5"


def test_another_organizations_uploads_are_not_counted(alice, charlie, one_upload_at_a_time, busy):
    busy(f"org:{alice.organization.pk}")
    assert media_upload(charlie).status_code == 201


def test_a_finished_upload_gives_its_slot_back(alice, one_upload_at_a_time):
    assert media_upload(alice).status_code == 201
    assert media_upload(alice).status_code == 201


def test_requests_without_a_body_take_no_slot(alice, one_upload_at_a_time, busy, alices_media):
    busy(f"org:{alice.organization.pk}")
    assert alice.client.get(f"/v1/media/{alices_media['id']}").status_code == 200


def test_a_signed_put_past_the_addresss_limit_answers_429(alice, one_upload_at_a_time, busy):
    image = unique_png()
    prepared = alice.client.post("/v1/media/prepare-upload", {"content_type": "image/png", "bytes": len(image)},
                                 format="json").json()
    url = prepared["presigned_url"].removeprefix("http://testserver")
    busy("ip:127.0.0.1")
    refused = Client().put(url, data=image, content_type="image/png")
    assert error_of(refused, 429)["code"] == "too_many_concurrent_uploads"
    assert refused["Retry-After"] == "5"
    assert Client(REMOTE_ADDR="10.0.0.7").put(url, data=image, content_type="image/png").status_code == 204


def test_a_limit_of_0_turns_the_limit_off(alice, settings, busy):
    settings.MEDIA_CONCURRENT_UPLOADS_PER_ORG = 0
    busy(f"org:{alice.organization.pk}")
    assert media_upload(alice).status_code == 201


def test_local_slots_never_hand_out_more_than_the_limit_across_threads():
    local, taken = LocalSlots(), []
    threads = [threading.Thread(target=lambda: taken.append(local.acquire("org:1", 3))) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([token for token in taken if token is not None]) == 3


@pytest.mark.redis
def test_redis_slots_are_shared_and_released(redis_url):
    first, second = RedisSlots(redis_url), RedisSlots(redis_url)  # two workers
    scope = f"test:{uuid.uuid4().hex}"
    token = first.acquire(scope, 1)
    assert token is not None and second.acquire(scope, 1) is None
    first.release(scope, token)
    again = second.acquire(scope, 1)
    assert again is not None
    second.release(scope, again)


def test_an_unreachable_redis_lets_uploads_through():
    unreachable = RedisSlots("redis://127.0.0.1:1/0")
    token = unreachable.acquire("org:1", 1)
    assert token is not None
    unreachable.release("org:1", token)


def test_settings_choose_redis_when_redis_url_is_set(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert isinstance(concurrency.slots(), RedisSlots)
    settings.REDIS_URL = ""
    assert isinstance(concurrency.slots(), LocalSlots)
