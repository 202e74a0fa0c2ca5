"""Ingest: a compute/ object becomes a media file of a user, copied, measured, deduplicated, charged.

Clients name sources `compute/<path>`; the object is `compute/<org id>/<path>` in the store.
Tests write and read the store at that real key (`object_key`) and call the API with `compute/<path>`.
"""
import hashlib
import io
from datetime import timedelta

import pytest
from django.urls import path
from django.utils import timezone

import config.urls
from config.errors import InvalidPath, NotFound, QuotaExceeded, StorageUnavailable, TooLarge, UnsupportedMediaType
from media_app.ingest import IngestInProgress, media_ingest, source_cleanup_schedule
from api.media.views import IngestView
from media_app.models import MediaFile, SourceCleanup
from media_app.services import FileOptions, Provenance
from quotas.models import Quota
from storage_app import crypto
from storage_app.keys import compute_prefix
from tests.factories import pdf_bytes, unique_png, upload

# A test-local urlconf: the ingest route first, so /v1/media/<id> cannot shadow it.
urlpatterns = [path("v1/media/ingest", IngestView.as_view()), *config.urls.urlpatterns]
handler400, handler403 = config.urls.handler400, config.urls.handler403
handler404, handler500 = config.urls.handler404, config.urls.handler500

INGEST = "/v1/media/ingest"
ELF = b"\x7fELF\x02\x01\x01" + b"\0" * 200


@pytest.fixture(autouse=True)
def ingest_route(settings):
    settings.ROOT_URLCONF = __name__


def object_key(actor, path: str = "gen/a.png") -> str:
    """Where the source the client calls `compute/<path>` really is: the organization's namespace."""
    return compute_prefix(actor.organization.pk) + path


def put_source(actor, path: str = "gen/a.png", data: bytes | None = None) -> bytes:
    """Write a source as the compute server does, straight to the store at its real key."""
    from storage_app.backends import get_store

    data = data if data is not None else unique_png(24, 12)
    get_store().save_stream(object_key(actor, path), io.BytesIO(data), max_bytes=10**8)
    return data


def ingest(actor, key="compute/gen/a.png", **options):
    return media_ingest(organization=actor.organization, owner=actor.user, storage_key=key,
                        options=FileOptions(**options))


def quota_of(org) -> tuple[int, int, int]:
    quota = Quota.objects.get(organization=org)
    return quota.used_bytes, quota.reserved_bytes, quota.file_count


def error_of(response, status):
    assert response.status_code == status, response.content[:500]
    return response.json()["error"]


# -- the service, on both backends --------------------------------------------------------------
def test_it_copies_the_source_to_a_canonical_key_and_schedules_the_source_for_deletion(alice, backend, store,
                                                                                      settings):
    settings.MEDIA_SOURCE_DELETE_DELAY = 600.0
    data = put_source(alice)
    before = timezone.now()
    result = ingest(alice, category="general", visibility="public",
                    provenance=Provenance(model="flux-1", provider="bfl", prompt="a cat", generation={"seed": 7}))
    media = result.media
    assert not result.deduped and not result.ingested_before
    assert media.status == MediaFile.Status.ACTIVE and media.owner == alice.user
    assert media.storage_key.startswith(f"organizations/{alice.organization.pk}/files/{alice.user.pk}/a_")
    assert media.storage_key.endswith(".png")
    assert (media.bytes, media.sha256, media.mime) == (len(data), hashlib.sha256(data).hexdigest(), "image/png")
    assert (media.width, media.height, media.media_kind) == (24, 12, "image")
    assert (media.source, media.source_key, media.original_name) == ("ingested", "compute/gen/a.png", "a.png")
    assert (media.model, media.provider, media.prompt, media.generation) == ("flux-1", "bfl", "a cat", {"seed": 7})
    assert media.visibility == "public"
    assert store.read_bytes(media.storage_key) == data
    assert store.read_bytes(object_key(alice)) == data  # deleted later, by the cleanup job
    cleanup = SourceCleanup.objects.get(storage_key=object_key(alice))
    assert cleanup.media_file == media and cleanup.done_at is None
    assert before + timedelta(seconds=600) <= cleanup.delete_after <= timezone.now() + timedelta(seconds=600)
    assert quota_of(alice.organization) == (len(data), 0, 1)


def test_ingesting_the_same_source_twice_answers_the_same_file(alice, backend, store_keys):
    data = put_source(alice)
    first = ingest(alice).media
    again = ingest(alice)
    assert again.media.pk == first.pk and again.deduped and again.ingested_before
    assert MediaFile.objects.count() == 1 and SourceCleanup.objects.count() == 1
    assert quota_of(alice.organization) == (len(data), 0, 1)
    assert len(store_keys("organizations/")) == 1


def test_it_stays_idempotent_after_the_source_was_deleted(alice, store):
    put_source(alice)
    first = ingest(alice).media
    store.delete(object_key(alice))  # what the cleanup job does after the delay
    assert ingest(alice).media.pk == first.pk


def test_the_copy_is_the_stores_own_server_side_copy(alice, backend, store, monkeypatch):
    copied = []
    real_copy = type(store).copy

    def spy(self, source, destination):
        copied.append((source, destination))
        real_copy(self, source, destination)

    monkeypatch.setattr(type(store), "copy", spy)
    put_source(alice)
    media = ingest(alice).media
    assert copied == [(object_key(alice), media.storage_key)]


def test_without_relocate_the_source_is_kept_until_a_later_ingest_asks(alice):
    put_source(alice)
    media = media_ingest(organization=alice.organization, owner=alice.user, storage_key="compute/gen/a.png",
                         relocate=False, options=FileOptions()).media
    assert not SourceCleanup.objects.exists()
    ingest(alice)  # relocate defaults to true
    assert SourceCleanup.objects.get().media_file == media


def test_known_content_answers_the_owners_existing_file_and_keeps_no_copy(alice, backend, store_keys):
    data = unique_png()
    uploaded = alice.client.post("/api/v1/storage/upload", {"file": upload("cat.png", data)}, format="multipart")
    assert uploaded.status_code == 201
    put_source(alice, data=data)
    result = ingest(alice)
    assert result.deduped and not result.ingested_before
    assert result.media.storage_key == uploaded.json()["object_name"]
    assert MediaFile.objects.count() == 1
    assert store_keys("organizations/") == [result.media.storage_key]
    assert quota_of(alice.organization) == (len(data), 0, 1)
    assert SourceCleanup.objects.get().media_file == result.media  # the source still goes
    assert ingest(alice).media.pk == result.media.pk


def test_another_owner_gets_a_file_of_their_own(alice, bob):
    put_source(alice)
    first = ingest(alice).media
    second = ingest(bob).media
    assert second.pk != first.pk and second.owner == bob.user


# -- refusals leave nothing behind and never touch the source ------------------------------------
def test_an_ingest_past_the_quota_is_refused_and_the_source_is_untouched(alice, backend, store, store_keys):
    data = put_source(alice)
    Quota.objects.filter(organization=alice.organization).update(limit_override_bytes=len(data) - 1)
    with pytest.raises(QuotaExceeded):
        ingest(alice)
    assert not MediaFile.objects.exists() and not SourceCleanup.objects.exists()
    assert quota_of(alice.organization) == (0, 0, 0)
    assert store.read_bytes(object_key(alice)) == data
    assert store_keys("organizations/") == []


def test_a_missing_source_is_a_404(alice, backend):
    with pytest.raises(NotFound) as caught:
        ingest(alice, key="compute/gen/none.png")
    assert caught.value.code == "source_not_found"
    assert not MediaFile.objects.exists()


@pytest.mark.parametrize("key", ["organizations/1/files/1/a.png", "gen/a.png", "compute/", "compute",
                                 "/compute/gen/a.png", "compute/../organizations/1/files/1/a.png",
                                 "compute//a.png", "compute/a%2e%2e.png", "compute/" + "a" * 2000])
def test_a_key_outside_compute_is_a_400_before_any_storage_call(alice, key, monkeypatch):
    from media_app import ingest as ingest_module

    monkeypatch.setattr(ingest_module, "get_store", lambda: pytest.fail("storage was touched"))
    with pytest.raises(InvalidPath) as caught:
        ingest(alice, key=key)
    assert caught.value.code == "invalid_path" and caught.value.param == "storage_key"


@pytest.mark.parametrize("data,category", [(ELF, "general"), (pdf_bytes(), "profile_image")])
def test_content_the_category_refuses_is_a_415_and_leaves_nothing(alice, store, store_keys, data, category):
    put_source(alice, data=data)
    with pytest.raises(UnsupportedMediaType):
        ingest(alice, category=category)
    assert not MediaFile.objects.exists() and store_keys("organizations/") == []
    assert store.exists(object_key(alice))


def test_a_source_over_the_file_limit_is_a_413(alice, settings, store_keys):
    put_source(alice, data=unique_png() + b"\0" * 5000)
    settings.MEDIA_MAX_BYTES = 1000
    with pytest.raises(TooLarge) as caught:
        ingest(alice)
    assert caught.value.code == "max_size_exceeded"
    assert not MediaFile.objects.exists() and store_keys("organizations/") == []


def test_a_failing_copy_leaves_no_row_no_reservation_and_the_source(alice, backend, store, monkeypatch):
    def broken(self, src, dst):
        raise StorageUnavailable()

    monkeypatch.setattr(type(store), "copy", broken)
    data = put_source(alice)
    with pytest.raises(StorageUnavailable):
        ingest(alice)
    assert not MediaFile.objects.exists() and not SourceCleanup.objects.exists()
    assert quota_of(alice.organization) == (0, 0, 0)
    assert store.read_bytes(object_key(alice)) == data


def test_a_source_being_ingested_right_now_is_a_409(alice):
    put_source(alice)
    MediaFile.objects.create(id="med_pending", organization=alice.organization, owner=alice.user,
                             status=MediaFile.Status.PENDING, storage_key="organizations/x/pending.png",
                             source="ingested", source_key="compute/gen/a.png",
                             upload_expires_at=timezone.now() + timedelta(minutes=5))
    with pytest.raises(IngestInProgress) as caught:
        ingest(alice)
    assert caught.value.status == 409


def test_a_pending_row_left_by_a_crash_does_not_block_forever(alice):
    put_source(alice)
    MediaFile.objects.create(id="med_stale", organization=alice.organization, owner=alice.user,
                             status=MediaFile.Status.PENDING, storage_key="organizations/x/stale.png",
                             source="ingested", source_key="compute/gen/a.png",
                             upload_expires_at=timezone.now() - timedelta(minutes=1))
    assert ingest(alice).media.status == MediaFile.Status.ACTIVE


def test_a_reused_path_is_scheduled_for_deletion_again(alice):
    put_source(alice)
    media = ingest(alice).media
    SourceCleanup.objects.update(done_at=timezone.now(), attempts=2)
    cleanup = source_cleanup_schedule(storage_key=object_key(alice), media=media)
    assert cleanup.done_at is None and cleanup.attempts == 0


# -- encryption at rest --------------------------------------------------------------------------
@pytest.fixture
def app_encryption(settings):
    settings.MEDIA_ENCRYPTION = "app"
    settings.MEDIA_MASTER_KEYS = crypto.generate_key_string("k1")


def test_a_plaintext_source_is_encrypted_on_its_way_in(alice, backend, app_encryption, settings):
    from storage_app.backends import get_store

    settings.MEDIA_ENCRYPTION = "none"
    data = put_source(alice)  # written by the compute server, not through the app
    settings.MEDIA_ENCRYPTION = "app"
    store = get_store()
    media = ingest(alice).media
    assert media.encryption == "app" and media.encryption_key_id == "k1"
    assert store.looks_encrypted(media.storage_key)
    assert media.sha256 == hashlib.sha256(data).hexdigest() and (media.width, media.height) == (24, 12)
    assert store.read_bytes(media.storage_key, encrypted=True) == data


def test_an_encrypted_source_is_copied_as_is_and_measured_in_plaintext(alice, backend, app_encryption):
    from storage_app.backends import get_store

    data = put_source(alice)
    store = get_store()
    assert store.looks_encrypted(object_key(alice))
    media = ingest(alice).media
    assert media.encryption == "app" and media.bytes == len(data)
    assert media.sha256 == hashlib.sha256(data).hexdigest() and (media.width, media.height) == (24, 12)
    assert store.read_bytes(media.storage_key, encrypted=True) == data


# -- the endpoint -----------------------------------------------------------------------------------
def test_a_service_key_ingests_for_a_member_of_its_organization(acme_service, bob, backend):
    data = put_source(acme_service)
    response = acme_service.client.post(INGEST, {"storage_key": "compute/gen/a.png", "user_id": "bob",
                                                 "model": "flux-1", "prompt": "a cat"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"].startswith("med_") and body["user"] == "bob"
    assert (body["mime"], body["bytes"], body["width"], body["height"]) == ("image/png", len(data), 24, 12)
    assert body["deduped"] is False and body["ingested_before"] is False
    assert body["source_key"] == "compute/gen/a.png" and body["model"] == "flux-1"
    again = acme_service.client.post(INGEST, {"storage_key": "compute/gen/a.png", "user_id": bob.user.pk},
                                     format="json")
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert again.json()["deduped"] is True and again.json()["ingested_before"] is True


def test_without_user_id_the_file_is_the_service_keys_own(acme_service):
    put_source(acme_service)
    response = acme_service.client.post(INGEST, {"storage_key": "compute/gen/a.png"}, format="json")
    assert response.status_code == 201 and response.json()["user"] == "acme-bot"


@pytest.mark.parametrize("who", ["alice", "bob", "charlie"])
def test_user_keys_may_not_ingest(db, request, who, monkeypatch):
    from media_app import ingest as ingest_module

    monkeypatch.setattr(ingest_module, "media_ingest", lambda **kw: pytest.fail("the service was called"))
    actor = request.getfixturevalue(who)
    response = actor.client.post(INGEST, {"storage_key": "compute/gen/a.png"}, format="json")
    assert error_of(response, 403)["code"] == "service_key_required"


def test_no_credentials_is_a_401(anon, db):
    assert error_of(anon.post(INGEST, {"storage_key": "compute/gen/a.png"}, format="json"), 401)["code"] == \
        "not_authenticated"


@pytest.mark.parametrize("user_id", ["nobody", "charlie", "999999"])
def test_a_user_outside_the_organization_is_a_404(acme_service, charlie, user_id):
    put_source(acme_service)
    response = acme_service.client.post(INGEST, {"storage_key": "compute/gen/a.png", "user_id": user_id},
                                        format="json")
    assert error_of(response, 404)["code"] == "user_not_found"
    assert not MediaFile.objects.exists()


@pytest.mark.parametrize("key", ["organizations/1/files/1/a.png", "../x.png", "/etc/passwd", "compute/a//b.png",
                                 "compute/a/./b.png", "compute/a\\b.png", "compute/%2e%2e/x", "compute/a\x00.png",
                                 "compute/a\x01.png",
                                 "compute/" + "a" * 2000, "compute/" + "a" * 9000])
def test_a_bad_storage_key_is_a_400_invalid_path(acme_service, key):
    response = acme_service.client.post(INGEST, {"storage_key": key}, format="json")
    error = error_of(response, 400)
    assert error["code"] == "invalid_path" and error["param"] == "storage_key"


def test_a_missing_source_is_a_404_over_the_api(acme_service):
    response = acme_service.client.post(INGEST, {"storage_key": "compute/gen/none.png"}, format="json")
    assert error_of(response, 404)["code"] == "source_not_found"


def test_over_the_quota_is_a_413_with_no_file_and_the_source_untouched(acme_service, store_keys):
    from storage_app.backends import get_store

    data = put_source(acme_service)
    Quota.objects.update_or_create(organization=acme_service.organization, defaults={"limit_override_bytes": 10})
    response = acme_service.client.post(INGEST, {"storage_key": "compute/gen/a.png", "user_id": "alice"},
                                        format="json")
    assert error_of(response, 413)["code"] == "quota_exceeded"
    assert not MediaFile.objects.exists() and not SourceCleanup.objects.exists()
    assert get_store().read_bytes(object_key(acme_service)) == data
    assert store_keys("organizations/") == []


@pytest.mark.parametrize("payload,param", [
    ({}, "storage_key"),
    ({"storage_key": "compute/gen/a.png", "visibility": "secret"}, "visibility"),
    ({"storage_key": "compute/gen/a.png", "relocate": "maybe"}, "relocate"),
    ({"storage_key": "compute/gen/a.png", "generation": [1, 2]}, "generation"),
    ({"storage_key": "compute/gen/a.png", "category": "selfies"}, "category"),
])
def test_bad_input_is_a_400_naming_the_field(acme_service, payload, param):
    put_source(acme_service)
    assert error_of(acme_service.client.post(INGEST, payload, format="json"), 400)["param"] == param
    assert not MediaFile.objects.exists()


def test_the_image_endpoints_and_ingest_work_together(acme_service, backend):
    data = unique_png()
    images = "/api/v1/storage/images"
    assert acme_service.client.post(f"{images}/gen/b.png", {"file": upload("b.png", data)},
                                    format="multipart").status_code == 201
    media = acme_service.client.post(INGEST, {"storage_key": "compute/gen/b.png", "user_id": "alice"},
                                     format="json").json()
    assert media["sha256"] == hashlib.sha256(data).hexdigest()
    assert acme_service.client.head(f"{images}/gen/b.png").status_code == 200  # until the cleanup job runs


# -- one organization's namespace ------------------------------------------------------------------
def test_the_source_key_is_client_facing_and_every_storage_call_uses_the_real_key(alice, store, monkeypatch):
    touched = []
    for cls in (type(store),):
        for name in ("exists", "size", "plain_size", "looks_encrypted", "open_range", "copy", "delete"):
            real = getattr(cls, name)

            def spy(self, key, *args, _real=real, **kwargs):
                touched.append(key)
                return _real(self, key, *args, **kwargs)

            monkeypatch.setattr(cls, name, spy)
    put_source(alice)
    media = ingest(alice).media
    sources = [key for key in touched if key.startswith("compute/")]
    assert sources and set(sources) == {object_key(alice)}
    assert media.source_key == "compute/gen/a.png"
    assert SourceCleanup.objects.get().storage_key == f"compute/{alice.organization.pk}/gen/a.png"


def test_each_organization_ingests_its_own_object_at_the_same_path(acme_service, globex_service, backend):
    acmes, globexs = put_source(acme_service), put_source(globex_service)
    for actor, data in ((acme_service, acmes), (globex_service, globexs)):
        response = actor.client.post(INGEST, {"storage_key": "compute/gen/a.png"}, format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["sha256"] == hashlib.sha256(data).hexdigest() and body["source_key"] == "compute/gen/a.png"
    assert set(SourceCleanup.objects.values_list("storage_key", flat=True)) == {
        object_key(acme_service), object_key(globex_service)}


@pytest.mark.parametrize("literal", [False, True], ids=["same-path", "other-namespace-literally"])
def test_another_organizations_service_key_cannot_ingest_its_objects(acme_service, globex_service, store,
                                                                    store_keys, literal):
    data = put_source(acme_service)
    key = f"compute/{acme_service.organization.pk}/gen/a.png" if literal else "compute/gen/a.png"
    response = globex_service.client.post(INGEST, {"storage_key": key, "user_id": "charlie"}, format="json")
    assert error_of(response, 404)["code"] == "source_not_found"
    assert not MediaFile.objects.exists() and not SourceCleanup.objects.exists()
    assert store.read_bytes(object_key(acme_service)) == data
    assert store_keys("organizations/") == []


def test_another_organizations_namespace_sent_literally_resolves_inside_the_callers(acme_service,
                                                                                   globex_service):
    acme_id = acme_service.organization.pk
    put_source(acme_service, "gen/a.png")
    globexs = put_source(globex_service, f"{acme_id}/gen/a.png")  # globex's own object, at that relative path
    response = globex_service.client.post(INGEST, {"storage_key": f"compute/{acme_id}/gen/a.png"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["sha256"] == hashlib.sha256(globexs).hexdigest()
    assert response.json()["source_key"] == f"compute/{acme_id}/gen/a.png"
    assert SourceCleanup.objects.get().storage_key == f"compute/{globex_service.organization.pk}/{acme_id}/gen/a.png"
