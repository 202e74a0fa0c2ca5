"""The upload-grant rules (`media_app.grants`) on rows made directly, on the local backend."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone as tz

import pytest

from media_app import grants
from media_app.grants import media_object_live, media_upload_claim, media_upload_release
from media_app.models import MediaFile
from storage_app.backends import get_store
from storage_app.keys import upload_staging_key

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=tz.utc)


@pytest.fixture(autouse=True)
def local_frozen(settings, tmp_path, monkeypatch):
    from tests.conftest import use_local

    use_local(settings, tmp_path)
    monkeypatch.setattr(grants.timezone, "now", lambda: NOW)


def pending(actor, media_id: str = "med_up", *, expires_in: timedelta = timedelta(minutes=5), **fields) -> str:
    key = upload_staging_key(actor.organization.pk, media_id)
    MediaFile.objects.create(id=media_id, organization=actor.organization, owner=actor.user, storage_key=key,
                             status=fields.pop("status", "pending"), upload_expires_at=NOW + expires_in, **fields)
    return key


def arrived(key: str) -> None:
    path = get_store().path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"bytes")


def refusal(key: str) -> tuple[int, str, str]:
    with pytest.raises(Exception) as caught:  # each rule raises its own class; the tuple names it
        media_upload_claim(key=key)
    return caught.value.status, caught.value.code, caught.value.message


def claimed_at(media_id: str = "med_up"):
    return MediaFile.objects.get(pk=media_id).upload_claimed_at


def test_the_first_write_takes_the_claim_and_learns_its_media_id(alice):
    key = pending(alice)
    assert media_upload_claim(key=key) == "med_up"
    assert claimed_at() == NOW


def test_a_second_write_while_the_first_is_running_is_in_progress(alice):
    key = pending(alice)
    media_upload_claim(key=key)
    assert refusal(key) == (409, "upload_in_progress", "Another request is uploading these bytes now.")


def test_a_second_write_after_the_first_stored_its_bytes_is_already_received(alice):
    key = pending(alice)
    media_upload_claim(key=key)
    arrived(key)
    assert refusal(key) == (409, "upload_already_received", "The bytes of this upload have already been received.")


def test_bytes_that_arrived_another_way_are_never_replaced(alice):
    key = pending(alice)
    arrived(key)
    assert refusal(key)[1] == "upload_already_received"


@pytest.mark.parametrize("status", ["active", "deleted", "purged"])
def test_a_finished_upload_takes_no_more_writes(alice, status):
    key = pending(alice, status=status)
    assert refusal(key) == (409, "upload_not_pending", "This upload was completed, cancelled or has expired.")
    assert claimed_at() is None


@pytest.mark.parametrize(("expires_in", "allowed"), [
    (timedelta(seconds=1), True), (timedelta(0), False), (timedelta(seconds=-1), False),
])
def test_the_upload_window_ends_at_its_expiry(alice, expires_in, allowed):
    key = pending(alice, expires_in=expires_in)
    if allowed:
        assert media_upload_claim(key=key) == "med_up"
    else:
        assert refusal(key)[1] == "upload_not_pending"


def test_a_staging_key_naming_another_organization_takes_no_write(alice, charlie):
    pending(alice)
    assert refusal(upload_staging_key(charlie.organization.pk, "med_up"))[1] == "upload_not_pending"


@pytest.mark.parametrize("key", ["organizations/1/files/2/a.png", "compute/1/a.png", "organizations/1/uploads/a/b"])
def test_only_a_staging_key_can_be_written(alice, key):
    assert refusal(key) == (403, "upload_not_allowed", "Nothing can be uploaded to this key.")


def test_a_failed_write_gives_its_claim_back_so_the_client_can_retry(alice):
    key = pending(alice)
    media_upload_claim(key=key)
    media_upload_release(key=key)
    assert claimed_at() is None
    assert media_upload_claim(key=key) == "med_up"


def test_releasing_touches_only_pending_uploads_and_only_staging_keys(alice):
    key = pending(alice, status="active", upload_claimed_at=NOW)
    media_upload_release(key=key)
    assert claimed_at() == NOW
    media_upload_release(key="organizations/1/files/2/med_up")   # not a staging key: nothing to release
    assert claimed_at() == NOW


def live_row(actor, media_id: str, status: str, **fields) -> MediaFile:
    return MediaFile.objects.create(id=media_id, organization=actor.organization, owner=actor.user, status=status,
                                    storage_key=f"organizations/1/files/1/{media_id}.png", **fields)


@pytest.mark.parametrize(("status", "live"), [("active", True), ("pending", False), ("deleted", False),
                                              ("purged", False)])
def test_an_objects_bytes_are_live_while_its_file_is_active(alice, status, live):
    media = live_row(alice, "med_a", status)
    assert media_object_live(key=media.storage_key) is live


def test_a_deleted_files_bytes_stay_live_while_an_active_alias_reads_them(alice):
    original = live_row(alice, "med_o", "deleted")
    live_row(alice, "med_dead", "deleted", duplicate_of=original)
    assert media_object_live(key=original.storage_key) is False
    live_row(alice, "med_alias", "active", duplicate_of=original)
    assert media_object_live(key=original.storage_key) is True


def test_an_alias_of_another_file_does_not_keep_this_one_live(alice):
    dead = live_row(alice, "med_dead", "deleted")
    other = live_row(alice, "med_other", "active")
    live_row(alice, "med_alias", "active", duplicate_of=other)
    assert media_object_live(key=dead.storage_key) is False


def test_a_key_no_file_has_is_not_live(db):
    assert media_object_live(key="organizations/1/files/1/nothing.png") is False


def test_claiming_and_releasing_one_upload_leaves_the_others_of_the_organization_alone(alice):
    first, second = pending(alice, "med_one"), pending(alice, "med_two")
    media_upload_claim(key=first)
    assert (claimed_at("med_one"), claimed_at("med_two")) == (NOW, None)
    media_upload_claim(key=second)
    media_upload_release(key=first)
    assert (claimed_at("med_one"), claimed_at("med_two")) == (None, NOW)
