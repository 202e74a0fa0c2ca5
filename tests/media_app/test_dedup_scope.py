"""MEDIA_DEDUP_SCOPE=organization: a member uploading content another member already has gets
a file of their own (an alias sharing the object) and learns nothing of the other file, on
every way in; the same owner uploading again is answered the existing file."""
import io
import json

import pytest
import requests
from django.urls import path

import config.urls
from media_app import lifecycle
from api.media.views import IngestView
from media_app.models import MediaFile
from quotas.models import Quota
from storage_app import crypto
from storage_app.backends import get_store
from storage_app.keys import compute_prefix
from tests.factories import unique_png, upload
from tests.media_app.conftest import body_of, data_url
from tests.media_app.test_media_remote import Handler, origin  # noqa: F401 - the fixture

# The ingest route first, as in test_ingest (/v1/media/<id> must not shadow it).
urlpatterns = [path("v1/media/ingest", IngestView.as_view()), *config.urls.urlpatterns]
handler400, handler403 = config.urls.handler400, config.urls.handler403
handler404, handler500 = config.urls.handler404, config.urls.handler500

SECRET_PROMPT = "alice's private prompt"
# A signed URL names the object it reads, and an alias reads the original's: see the report on
# issue 11 item 5 (the key holds the original's user id and file name).
URL_FIELDS = {"url", "presigned_url", "presigned_post", "result"}


@pytest.fixture(autouse=True)
def organization_scope(settings):
    settings.MEDIA_DEDUP_SCOPE = "organization"
    settings.ROOT_URLCONF = __name__
    settings.MEDIA_REMOTE_FETCH_ALLOW_NETWORKS = ["127.0.0.0/8"]


@pytest.fixture
def alices_private(alice):
    data = unique_png()
    response = alice.client.post("/v1/media/upload", {"file": upload("alice-diary.png", data), "prompt": SECRET_PROMPT},
                                 format="multipart")
    assert response.status_code == 201, response.content
    return data, MediaFile.objects.get(pk=response.json()["id"])


# -- the ways in: each stores `data` as `actor` (bob, or a service key for bob) -------------------
def by_multipart(actor, data, **_):
    return actor.client.post("/v1/media/upload", {"file": upload("mine.png", data)}, format="multipart")


def by_data_url(actor, data, **_):
    return actor.client.post("/v1/media", {"source": {"type": "data_url", "data_url": data_url(data)}}, format="json")


def by_remote_url(actor, data, origin_url, **_):
    Handler_bodies[f"/{id(data)}.png"] = data
    return actor.client.post("/v1/media", {"source": {"type": "remote_url", "url": f"{origin_url}/{id(data)}.png"}},
                             format="json")


def by_presigned(actor, data, **_):
    prepared = actor.client.post("/v1/media/prepare-upload", {"content_type": "image/png", "bytes": len(data)},
                                 format="json").json()
    get_store().save_stream(MediaFile.objects.get(pk=prepared["id"]).storage_key, io.BytesIO(data), max_bytes=10**6)
    return actor.client.put(f"/v1/media/{prepared['id']}")


def by_ingest(actor, data, service, **_):
    get_store().save_stream(compute_prefix(actor.organization.pk) + "gen/b.png", io.BytesIO(data), max_bytes=10**6)
    return service.client.post("/v1/media/ingest", {"storage_key": "compute/gen/b.png", "user_id": "bob"},
                               format="json")


def by_storage_api(actor, data, **_):
    return actor.client.post("/api/v1/storage/upload", {"file": upload("mine.png", data)}, format="multipart")


WAYS_IN = [by_multipart, by_data_url, by_remote_url, by_presigned, by_ingest, by_storage_api]
Handler_bodies: dict[str, bytes] = {}


@pytest.fixture(autouse=True)
def serve_registered_bodies(monkeypatch):
    original = Handler.do_GET

    def do_get(self):
        if self.path in Handler_bodies:
            return self._send(Handler_bodies[self.path], "image/png")
        return original(self)

    monkeypatch.setattr(Handler, "do_GET", do_get)


def id_of(response) -> str:
    body = response.json()
    return body.get("id") or body["result"]["id"]


@pytest.mark.parametrize("way_in", WAYS_IN, ids=lambda f: f.__name__)
def test_a_member_uploading_another_members_content_gets_a_file_of_their_own(
        way_in, alices_private, bob, acme_service, origin, store_keys):  # noqa: F811
    data, original = alices_private
    response = way_in(bob, data, service=acme_service, origin_url=origin)
    assert response.status_code in (200, 201), response.content
    fields = {name: value for name, value in response.json().items() if name not in URL_FIELDS}
    for secret in (original.pk, SECRET_PROMPT, "alice"):
        assert secret not in json.dumps(fields, default=str)
    assert fields.get("user_id", bob.user.pk) == bob.user.pk
    mine = MediaFile.objects.get(pk=id_of(response))
    assert mine.pk != original.pk and mine.owner == bob.user and mine.status == MediaFile.Status.ACTIVE
    assert mine.duplicate_of_id == original.pk and mine.prompt == ""
    assert response.json().get("deduped", False) is False and response.json().get("duplicate_of") is None
    assert [key for key in store_keys("organizations/")] == [original.storage_key]  # one shared object
    quota = Quota.objects.get(organization=bob.organization)
    assert (quota.used_bytes, quota.file_count) == (2 * len(data), 2)  # the alias is charged like any file


@pytest.mark.parametrize("way_in", [by_multipart, by_data_url, by_remote_url, by_storage_api],
                         ids=lambda f: f.__name__)
def test_the_same_owner_uploading_again_is_answered_the_existing_file(way_in, alice, bob, origin, post_file):  # noqa: F811
    data = unique_png()
    post_file(alice, data)  # another member's older copy never wins over the owner's own
    bobs = post_file(bob, data, name="first.png").json()
    response = way_in(bob, data, origin_url=origin)
    assert id_of(response) == bobs["id"] and MediaFile.objects.get(pk=bobs["id"]).owner == bob.user
    if "deduped" in response.json():
        assert response.status_code == 200 and response.json()["deduped"] is True


def test_the_same_owner_ingesting_known_content_is_answered_the_existing_file(alice, bob, acme_service, post_file):
    data = unique_png()
    post_file(alice, data)
    bobs = post_file(bob, data).json()
    response = by_ingest(bob, data, acme_service)
    assert (response.status_code, response.json()["id"], response.json()["deduped"]) == (200, bobs["id"], True)
    assert response.json()["user"] == "bob"


def test_a_member_reads_the_bytes_of_their_alias_and_nothing_of_the_original(alices_private, bob):
    data, original = alices_private
    mine = by_multipart(bob, data).json()
    content = bob.client.get(f"/v1/media/{mine['id']}/content")
    if content.status_code == 302:
        content = requests.get(content["Location"], timeout=10)
        assert content.content == data
    else:
        assert body_of(content) == data
    assert bob.client.get(f"/v1/media/{original.pk}").status_code == 404
    listed = bob.client.get("/v1/media").json()["data"]
    assert [m["id"] for m in listed] == [mine["id"]] and listed[0]["duplicate_of"] is None


def test_the_shared_object_is_purged_only_when_no_live_row_reads_it(alices_private, alice, bob):
    data, original = alices_private
    mine = by_multipart(bob, data).json()
    assert alice.client.delete(f"/v1/media/{original.pk}").status_code == 200
    result = lifecycle.purge_media(grace=0)
    assert (result.purged, result.kept_shared) == (0, 1)
    assert get_store().exists(original.storage_key)
    assert bob.client.get(f"/v1/media/{mine['id']}").status_code == 200
    assert bob.client.delete(f"/v1/media/{mine['id']}").status_code == 200
    assert lifecycle.purge_media(grace=0).purged == 2
    assert not get_store().exists(original.storage_key)
    quota = Quota.objects.get(organization=alice.organization)
    assert (quota.used_bytes, quota.file_count) == (0, 0)


def test_an_alias_is_read_as_its_original_was_stored(alices_private, bob, settings):
    """An original stored before MEDIA_ENCRYPTION=app: the alias must not try to decrypt it."""
    data, original = alices_private
    settings.MEDIA_ENCRYPTION = "app"
    settings.MEDIA_MASTER_KEYS = crypto.generate_key_string("k1")
    mine = MediaFile.objects.get(pk=by_multipart(bob, data).json()["id"])
    assert mine.owner == bob.user and mine.duplicate_of_id == original.pk
    assert (mine.encryption, mine.encryption_key_id) == (original.encryption, original.encryption_key_id)


def test_a_presigned_upload_of_content_the_owner_holds_as_an_alias_aliases_the_original(alices_private, bob,
                                                                                        store_keys):
    data, original = alices_private
    by_multipart(bob, data)
    second = MediaFile.objects.get(pk=id_of(by_presigned(bob, data)))
    assert second.owner == bob.user and second.duplicate_of_id == original.pk
    assert store_keys("organizations/") == [original.storage_key]
