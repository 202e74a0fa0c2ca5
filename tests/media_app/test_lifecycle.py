"""The lifecycle jobs (media_app.lifecycle): retention, purge, source cleanup, abandoned uploads,
quota recalculation and reconciliation, their faults, and two workers running them at once."""
from __future__ import annotations

import io
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from config.errors import StorageUnavailable
from media_app import lifecycle
from media_app.models import MediaFile, SourceCleanup
from media_app.services import media_delete, retention_until
from quotas.models import Quota
from media_app.selectors import media_quota_totals
from storage_app.backends import get_store
from storage_app.keys import upload_staging_key
from tests.conftest import TEST_BACKEND
from tests.factories import leave_partial_upload, partial_uploads, unique_png, upload

# A live file's content: the local backend streams it, S3 redirects to a presigned URL.
CONTENT_OK = 302 if TEST_BACKEND == "s3" else 200

DAY = timedelta(days=1)


# -- making files through the API ----------------------------------------------------------
def stored(actor, data: bytes | None = None) -> MediaFile:
    """A file uploaded directly (multipart)."""
    response = actor.client.post("/v1/media/upload", {"file": upload("cat.png", data or unique_png())},
                                 format="multipart")
    assert response.status_code in (200, 201), response.content  # 200: an upload deduplicated to a file
    return MediaFile.objects.get(pk=response.json()["id"])


def prepared(actor, size: int = 1000) -> MediaFile:
    """A presigned upload left pending: its quota is reserved, no object yet."""
    response = actor.client.post("/v1/media/prepare-upload", {"content_type": "image/png", "bytes": size},
                                 format="json")
    assert response.status_code == 200, response.content
    return MediaFile.objects.get(pk=response.json()["id"])


def uploaded(media: MediaFile, data: bytes) -> None:
    """The client's PUT to the presigned URL: the bytes land under the upload's staging key."""
    get_store().save_stream(staging_key(media), io.BytesIO(data), max_bytes=10**6)


def arrive(media: MediaFile, data: bytes) -> None:
    """Bytes under the file's own key (a completion that crashed after moving them, a backup restored)."""
    get_store().save_stream(media.storage_key, io.BytesIO(data), max_bytes=10**6)


def staging_key(media: MediaFile) -> str:
    return upload_staging_key(media.organization_id, media.pk)


def completed(actor, media: MediaFile):  # noqa: ANN201
    return actor.client.put(f"/v1/media/{media.pk}")


def alias_of(actor, data: bytes) -> MediaFile:
    """A presigned upload of content the owner already has: an alias (`duplicate_of`)."""
    media = prepared(actor, len(data))
    uploaded(media, data)
    assert completed(actor, media).status_code == 200
    media.refresh_from_db()
    assert media.duplicate_of_id is not None
    return media


def deleted(actor, media: MediaFile) -> MediaFile:
    assert actor.client.delete(f"/v1/media/{media.pk}").status_code == 200
    media.refresh_from_db()
    return media


def fresh(media: MediaFile) -> MediaFile:
    media.refresh_from_db()
    return media


def object_keys() -> set[str]:
    return {info.key for info in get_store().list("organizations/")}


def counters(org) -> dict[str, int]:
    quota = Quota.objects.get(organization=org)
    return {"used_bytes": quota.used_bytes, "reserved_bytes": quota.reserved_bytes, "file_count": quota.file_count}


def assert_usage_is_a_recount(*orgs) -> None:
    for org in orgs:
        assert counters(org) == media_quota_totals(organization=org), org.slug


def assert_storage_matches_live_rows() -> None:
    """The invariant: objects under organizations/, less those of pending uploads, are exactly
    the objects active rows read (`object_key`: an alias reads its original's)."""
    pending = {key for media in MediaFile.objects.filter(status="pending") for key in (media.storage_key,
                                                                                     staging_key(media))}
    active = {media.object_key for media in MediaFile.objects.filter(status="active").select_related("duplicate_of")}
    assert object_keys() - pending == active


class FailingDeletes:
    """store.delete raising for chosen keys, counting every call."""

    def __init__(self, monkeypatch, *failing: str) -> None:
        self.failing = set(failing)
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()
        store = get_store()
        self.real = store.delete
        monkeypatch.setattr(store, "delete", self)

    def __call__(self, key: str) -> None:
        with self.lock:
            self.calls[key] += 1
        if key in self.failing:
            raise StorageUnavailable("The storage backend answered SlowDown.")
        self.real(key)


# -- 1. retention -------------------------------------------------------------------------
def test_retain_until_comes_from_the_organization_then_its_plan_then_the_setting(alice, settings):
    org, now = alice.organization, timezone.now()
    settings.MEDIA_RETENTION_DAYS = 30
    assert retention_until(organization=org, now=now) == now + 30 * DAY
    org.plan.retention_days = 7
    assert retention_until(organization=org, now=now) == now + 7 * DAY
    org.retention_days = 3
    assert retention_until(organization=org, now=now) == now + 3 * DAY
    org.save()
    org.plan.save()
    media = stored(alice)
    assert abs(media.retain_until - (media.completed_at + 3 * DAY)) < timedelta(seconds=1)


def test_files_past_retain_until_are_deleted_and_their_quota_released(alice, charlie):
    old, kept, other = stored(alice), stored(alice), stored(charlie)
    MediaFile.objects.filter(pk__in=[old.pk, other.pk]).update(retain_until=timezone.now() - DAY)
    result = lifecycle.expire_media()
    assert (result.expired, result.bytes_released, result.organizations) == (2, old.bytes + other.bytes, 2)
    assert fresh(old).status == "deleted" and fresh(old).deleted_at and fresh(kept).status == "active"
    assert counters(alice.organization) == {"used_bytes": kept.bytes, "reserved_bytes": 0, "file_count": 1}
    assert alice.client.get(f"/v1/media/{old.pk}").status_code == 404
    assert_usage_is_a_recount(alice.organization, charlie.organization)
    assert lifecycle.expire_media().expired == 0  # idempotent


def test_a_file_kept_forever_never_expires_and_patch_can_extend(alice):
    forever, extended = stored(alice), stored(alice)
    assert alice.client.patch(f"/v1/media/{forever.pk}", {"retain_until": None}, format="json").status_code == 200
    later = (timezone.now() + 400 * DAY).isoformat()
    assert alice.client.patch(f"/v1/media/{extended.pk}", {"retain_until": later}, format="json").status_code == 200
    assert lifecycle.expire_media(now=timezone.now() + 100 * DAY).expired == 0
    assert lifecycle.expire_media(now=timezone.now() + 401 * DAY).expired == 1
    assert fresh(forever).status == "active" and fresh(extended).status == "deleted"


def test_expire_media_dry_run_and_one_organization(alice, charlie):
    mine, theirs = stored(alice), stored(charlie)
    later = timezone.now() + 60 * DAY
    report = lifecycle.expire_media(dry_run=True, now=later)
    assert (report.expired, report.organizations) == (2, 2) and "would expire 2 files" in report.summary()
    assert fresh(mine).status == "active" and counters(alice.organization)["file_count"] == 1
    assert lifecycle.expire_media(organization=charlie.organization, now=later).expired == 1
    assert fresh(mine).status == "active" and fresh(theirs).status == "deleted"


# -- 2. purge -----------------------------------------------------------------------------
def test_purge_removes_the_object_and_marks_the_row_purged(alice):
    media = deleted(alice, stored(alice))
    assert media.storage_key in object_keys()
    result = lifecycle.purge_media()
    assert result.purged == 1 and result.keys == [media.storage_key]
    assert fresh(media).status == "purged" and fresh(media).purged_at is not None
    assert object_keys() == set()
    assert lifecycle.purge_media().purged == 0


def test_purge_waits_for_the_grace_period(alice, settings):
    settings.MEDIA_PURGE_GRACE = 3600
    media = deleted(alice, stored(alice))
    assert lifecycle.purge_media().purged == 0
    assert lifecycle.purge_media(now=timezone.now() + timedelta(hours=2)).purged == 1
    assert fresh(media).status == "purged"


def test_purge_dry_run_changes_nothing(alice):
    media = deleted(alice, stored(alice))
    report = lifecycle.purge_media(dry_run=True)
    assert report.purged == 1 and report.details() == [f"would purge {media.storage_key}"]
    assert fresh(media).status == "deleted" and media.storage_key in object_keys()


def test_a_failed_delete_keeps_that_row_deleted_with_the_error_and_the_others_are_purged(alice, monkeypatch):
    files = [deleted(alice, stored(alice)) for _ in range(4)]
    bad = files[1]
    deletes = FailingDeletes(monkeypatch, bad.storage_key)
    result = lifecycle.purge_media(batch_size=2)
    assert (result.purged, result.failed) == (3, 1) and bad.pk in result.errors[0]
    assert [fresh(m).status for m in files] == ["purged", "deleted", "purged", "purged"]
    assert "SlowDown" in fresh(bad).storage_error and fresh(bad).attempts == 1
    assert object_keys() == {bad.storage_key}
    deletes.failing.clear()  # the storage recovers: the next run retries it
    assert lifecycle.purge_media().purged == 1
    assert fresh(bad).status == "purged" and fresh(bad).storage_error == "" and fresh(bad).attempts == 2
    assert object_keys() == set()


def test_a_deleted_alias_leaves_the_object_its_original_uses(alice):
    data = unique_png()
    original = stored(alice, data)
    alias = deleted(alice, alias_of(alice, data))
    assert lifecycle.purge_media().purged == 1
    assert fresh(alias).status == "purged" and object_keys() == {original.storage_key}
    assert alice.client.get(f"/v1/media/{original.pk}/content").status_code == CONTENT_OK
    assert_storage_matches_live_rows()


def test_a_deleted_original_keeps_its_object_while_an_alias_lives_and_goes_with_the_last_live_id(alice):
    data = unique_png()
    original = stored(alice, data)
    alias = alias_of(alice, data)
    deleted(alice, original)
    result = lifecycle.purge_media()
    assert (result.purged, result.kept_shared) == (0, 1)
    assert fresh(original).status == "deleted" and object_keys() == {original.storage_key}
    assert alice.client.get(f"/v1/media/{alias.pk}/content").status_code == CONTENT_OK
    assert_storage_matches_live_rows()
    deleted(alice, alias)  # the last live id
    assert lifecycle.purge_media().purged == 2
    assert object_keys() == set() and {fresh(original).status, fresh(alias).status} == {"purged"}


def test_an_upload_of_the_same_content_during_a_purge_gets_its_own_object(alice, monkeypatch):
    """A deleted original is never an alias target (`_find_duplicate` takes active rows only), so
    content that arrives while its old object is being purged is stored and kept on its own."""
    data = unique_png()
    original = deleted(alice, stored(alice, data))
    newcomer = prepared(alice, len(data))
    uploaded(newcomer, data)
    store, real_delete = get_store(), get_store().delete

    def delete_while_completing(key: str) -> None:
        if key == original.storage_key:
            assert completed(alice, newcomer).status_code == 200  # "concurrently", before the object goes
        real_delete(key)

    monkeypatch.setattr(store, "delete", delete_while_completing)
    assert lifecycle.purge_media().purged == 1
    newcomer = fresh(newcomer)
    assert newcomer.status == "active" and newcomer.duplicate_of_id is None
    assert object_keys() == {newcomer.storage_key}
    assert_storage_matches_live_rows()


def test_an_original_purged_between_finding_it_and_aliasing_it_is_not_aliased(alice, monkeypatch):
    from media_app import services

    data = unique_png()
    original = stored(alice, data)
    newcomer = prepared(alice, len(data))
    uploaded(newcomer, data)
    real_find = services.find_duplicate

    def find_then_lose_the_race(**kwargs):  # noqa: ANN003, ANN202
        found = real_find(**kwargs)
        media_delete(media=original)  # another request deletes the original...
        lifecycle.purge_media()  # ...and the purge runs, before the completion commits
        return found

    monkeypatch.setattr(services, "find_duplicate", find_then_lose_the_race)
    completed(alice, newcomer)
    assert_storage_matches_live_rows()


# -- 3. deferred source cleanup -----------------------------------------------------------
def compute_object(path: str, data: bytes | None = None) -> str:
    key = f"compute/{path}"
    get_store().save_stream(key, io.BytesIO(data or unique_png()), max_bytes=10**6)
    return key


def cleanup_for(key: str, *, due_in: timedelta = -timedelta(seconds=1)) -> SourceCleanup:
    return SourceCleanup.objects.create(storage_key=key, delete_after=timezone.now() + due_in)


def compute_keys() -> set[str]:
    return {info.key for info in get_store().list("compute/")}


def test_sources_are_deleted_once_their_delay_has_passed(db):
    due, later = cleanup_for(compute_object("gen/a.png")), cleanup_for(compute_object("gen/b.png"), due_in=DAY)
    report = lifecycle.cleanup_sources(dry_run=True)
    assert report.deleted == 1 and compute_keys() == {"compute/gen/a.png", "compute/gen/b.png"}
    result = lifecycle.cleanup_sources()
    assert result.deleted == 1 and result.keys == ["compute/gen/a.png"]
    assert compute_keys() == {"compute/gen/b.png"}
    due.refresh_from_db()
    later.refresh_from_db()
    assert due.done_at is not None and later.done_at is None
    assert lifecycle.cleanup_sources().deleted == 0


def test_a_failed_source_delete_is_recorded_and_retried_with_backoff(db, monkeypatch):
    row = cleanup_for(compute_object("gen/a.png"))
    deletes = FailingDeletes(monkeypatch, row.storage_key)
    delays = []
    for attempt in (1, 2, 3):
        start = timezone.now()
        result = lifecycle.cleanup_sources(now=timezone.now() + timedelta(days=2))  # whenever it is due
        row.refresh_from_db()
        assert result.failed == 1 and row.attempts == attempt and "SlowDown" in row.last_error
        delays.append(round((row.delete_after - start).total_seconds() / 60))
    assert delays == [1, 2, 4]  # minutes: exponential backoff
    assert lifecycle.cleanup_sources().deleted == 0  # not due yet
    deletes.failing.clear()
    assert lifecycle.cleanup_sources(now=timezone.now() + timedelta(days=2)).deleted == 1
    row.refresh_from_db()
    assert row.done_at is not None and row.last_error == "" and compute_keys() == set()


def test_cleanup_never_deletes_a_key_outside_compute(alice):
    media = stored(alice)
    row = cleanup_for(media.storage_key)
    result = lifecycle.cleanup_sources()
    row.refresh_from_db()
    assert result.failed == 1 and "not under compute/" in row.last_error and row.done_at is None
    assert media.storage_key in object_keys()


# -- 4. abandoned uploads -----------------------------------------------------------------
def test_abandoned_uploads_release_their_reservation_and_lose_their_partial_object(alice):
    with_bytes, without, open_ = prepared(alice, 500), prepared(alice, 300), prepared(alice, 200)
    uploaded(with_bytes, b"\x89PNG partial")
    MediaFile.objects.filter(pk__in=[with_bytes.pk, without.pk]).update(upload_expires_at=timezone.now())
    assert counters(alice.organization)["reserved_bytes"] == 1000
    report = lifecycle.expire_uploads(dry_run=True)
    assert (report.expired, report.reserved_released) == (2, 800) and fresh(with_bytes).status == "pending"
    result = lifecycle.expire_uploads()
    assert (result.expired, result.reserved_released, result.failed) == (2, 800, 0)
    assert fresh(with_bytes).status == "purged" and fresh(without).status == "purged"
    assert fresh(open_).status == "pending" and object_keys() == set()
    assert counters(alice.organization) == {"used_bytes": 0, "reserved_bytes": 200, "file_count": 0}
    uploaded(with_bytes, unique_png())  # a PUT that finishes too late
    assert completed(alice, with_bytes).status_code == 404
    assert_usage_is_a_recount(alice.organization)
    assert lifecycle.reconcile_storage(grace=0, fix=True).stray_keys == [staging_key(with_bytes)]


def test_a_small_upload_killed_before_activation_is_swept_without_touching_the_quota(alice, post_file, monkeypatch):
    """A small body reserves nothing (media_app.services.UNRESERVED_MAX_BYTES): a worker killed after
    storing it, before activation, leaves a pending row with nothing reserved and its object; the
    abandoned-uploads job removes both and the counters stay a recount."""
    from media_app import services

    def killed(*args, **kwargs):  # the process dies here: no undo runs
        raise SystemExit("killed")

    monkeypatch.setattr(services, "_activate_saved", killed)
    with pytest.raises(SystemExit):
        post_file(alice, unique_png())
    pending = MediaFile.objects.get()
    assert pending.status == "pending" and pending.reserved_bytes == 0 and object_keys() == {pending.storage_key}
    assert counters(alice.organization) == {"used_bytes": 0, "reserved_bytes": 0, "file_count": 0}
    MediaFile.objects.filter(pk=pending.pk).update(upload_expires_at=timezone.now())
    result = lifecycle.expire_uploads()
    assert (result.expired, result.reserved_released, result.failed) == (1, 0, 0)
    assert fresh(pending).status == "purged" and object_keys() == set()
    assert counters(alice.organization) == {"used_bytes": 0, "reserved_bytes": 0, "file_count": 0}
    assert_usage_is_a_recount(alice.organization)


def test_an_abandoned_upload_whose_object_cannot_be_deleted_is_left_to_the_purge(alice, monkeypatch):
    media = prepared(alice, 500)
    arrive(media, unique_png())
    MediaFile.objects.filter(pk=media.pk).update(upload_expires_at=timezone.now())
    deletes = FailingDeletes(monkeypatch, media.storage_key)
    result = lifecycle.expire_uploads()
    assert (result.expired, result.failed) == (1, 1)
    assert fresh(media).status == "deleted" and "SlowDown" in fresh(media).storage_error
    assert counters(alice.organization)["reserved_bytes"] == 0
    deletes.failing.clear()
    assert lifecycle.purge_media().purged == 1 and object_keys() == set()


# -- 5. quotas ----------------------------------------------------------------------------
def test_corrupted_quota_counters_are_restored_and_the_drift_reported(alice, charlie):
    kept, gone = stored(alice), stored(alice)
    deleted(alice, gone)
    prepared(alice, 700)
    stored(charlie)
    truth = counters(alice.organization)
    Quota.objects.filter(organization=alice.organization).update(used_bytes=12345, reserved_bytes=0, file_count=9)
    report = lifecycle.recalculate_quotas(dry_run=True)
    assert report.changed == 1 and counters(alice.organization)["file_count"] == 9
    result = lifecycle.recalculate_quotas()
    assert (result.checked, result.changed) == (2, 1)
    assert result.drifts[0]["organization"] == "acme" and result.drifts[0]["after"] == truth
    assert result.details() == [f"acme: used_bytes 12345 -> {kept.bytes}, reserved_bytes 0 -> 700, file_count 9 -> 1"]
    assert counters(alice.organization) == truth == {"used_bytes": kept.bytes, "reserved_bytes": 700, "file_count": 1}
    assert lifecycle.recalculate_quotas().changed == 0


# -- 6. reconciliation --------------------------------------------------------------------
def stray_object(org_id: int, name: str = "crash") -> str:
    """An object written by a process that crashed before its row committed."""
    key = f"organizations/{org_id}/files/1/{name}_20250101_000000_deadbeef.png"
    get_store().save_stream(key, io.BytesIO(unique_png()), max_bytes=10**6)
    return key


def test_a_stray_object_is_reported_and_deleted_only_with_fix(alice):
    media = stored(alice)
    key = stray_object(alice.organization.pk)
    assert lifecycle.reconcile_storage().stray == 0  # younger than MEDIA_RECONCILE_GRACE
    report = lifecycle.reconcile_storage(grace=0)
    assert (report.objects, report.stray, report.stray_keys, report.stray_deleted) == (2, 1, [key], 0)
    assert key in object_keys()
    assert lifecycle.reconcile_storage(grace=0, fix=True, dry_run=True).stray_deleted == 0 and key in object_keys()
    result = lifecycle.reconcile_storage(grace=0, fix=True)
    assert (result.stray, result.stray_deleted) == (1, 1)
    assert object_keys() == {media.storage_key}


def test_objects_of_pending_and_not_yet_purged_rows_are_not_stray(alice):
    waiting = prepared(alice, 500)
    uploaded(waiting, unique_png())
    to_purge = deleted(alice, stored(alice))
    result = lifecycle.reconcile_storage(grace=0, fix=True)
    assert (result.objects, result.stray) == (2, 0)
    assert object_keys() == {staging_key(waiting), to_purge.storage_key}


def test_an_aliases_own_leftover_object_is_stray(alice):
    data = unique_png()
    original = stored(alice, data)
    alias = alias_of(alice, data)
    arrive(alias, data)  # its own object came back (a failed delete at completion)
    result = lifecycle.reconcile_storage(grace=0, fix=True)
    assert result.stray_keys == [alias.storage_key]
    assert object_keys() == {original.storage_key}
    assert_storage_matches_live_rows()


def test_rows_whose_object_is_missing_are_reported_and_marked(alice):
    data = unique_png()
    original = stored(alice, data)
    alias = alias_of(alice, data)
    other = stored(alice)
    get_store().delete(original.storage_key)
    assert lifecycle.reconcile_storage(dry_run=True).missing == 2 and fresh(original).object_missing_at is None
    result = lifecycle.reconcile_storage()
    assert (result.missing, result.marked) == (2, 2) and set(result.missing_ids) == {original.pk, alias.pk}
    assert fresh(original).object_missing_at and fresh(alias).object_missing_at
    assert fresh(other).object_missing_at is None
    assert lifecycle.reconcile_storage().marked == 0  # already marked
    arrive(original, data)  # restored from a backup
    assert lifecycle.reconcile_storage().recovered == 2 and fresh(original).object_missing_at is None


def test_an_organization_with_rows_and_no_objects_at_all_is_checked(alice):
    media = stored(alice)
    get_store().delete(media.storage_key)
    assert lifecycle.reconcile_storage(organization=alice.organization).missing_ids == [media.pk]


def test_one_organizations_reconcile_never_touches_a_longer_prefix(alice):
    """`organizations/1/` must not match `organizations/10/`."""
    media = stored(alice)
    neighbour = stray_object(int(f"{alice.organization.pk}0"))
    mine = stray_object(alice.organization.pk)
    result = lifecycle.reconcile_storage(organization=alice.organization, grace=0, fix=True)
    assert (result.objects, result.stray_keys) == (2, [mine])
    assert object_keys() == {media.storage_key, neighbour}
    assert lifecycle.reconcile_storage(grace=0, fix=True).stray_keys == [neighbour]


def test_objects_outside_any_known_organization_are_stray(db):
    key = "organizations/not-a-number/files/1/x_20250101_000000_deadbeef.png"
    get_store().save_stream(key, io.BytesIO(b"x" * 10), max_bytes=100)
    assert lifecycle.reconcile_storage(grace=0, fix=True).stray_keys == [key]
    assert object_keys() == set()


# -- 7. two workers at once (PostgreSQL) --------------------------------------------------
def run_twice_at_once(job, **kwargs) -> list:  # noqa: ANN001
    """Run `job` in two threads started together; each thread has its own connection."""
    barrier, results, errors = threading.Barrier(2), [], []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(job(**kwargs))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


REAL_BATCHES = lifecycle._batches


def in_lockstep(monkeypatch) -> None:  # noqa: ANN001
    """Both runs read the same batch of candidates before either claims it: the widest race."""
    barrier, batches = threading.Barrier(2), REAL_BATCHES

    def lockstep_batches(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        for batch in batches(*args, **kwargs):
            try:
                barrier.wait(timeout=5)
            except threading.BrokenBarrierError:
                pass  # the other run has finished
            yield batch
        barrier.abort()

    monkeypatch.setattr(lifecycle, "_batches", lockstep_batches)


class SlowDeletes(FailingDeletes):
    """Deletes that take a while, so the two runs overlap."""

    def __call__(self, key: str) -> None:
        import time

        time.sleep(0.02)
        super().__call__(key)


@pytest.mark.django_db(transaction=True)
def test_the_same_purge_twice_at_once_deletes_each_object_once(requires_postgres, alice, monkeypatch):
    files = [deleted(alice, stored(alice)) for _ in range(12)]
    deletes = SlowDeletes(monkeypatch)
    in_lockstep(monkeypatch)
    results = run_twice_at_once(lifecycle.purge_media, batch_size=3)
    assert sum(result.purged for result in results) == 12 and not any(result.failed for result in results)
    assert deletes.calls == Counter({media.storage_key: 1 for media in files})
    assert {fresh(media).status for media in files} == {"purged"} and object_keys() == set()


@pytest.mark.django_db(transaction=True)
def test_two_expiries_at_once_release_each_file_once(requires_postgres, alice, monkeypatch):
    files = [stored(alice) for _ in range(10)]
    uploads = [prepared(alice, 100) for _ in range(10)]
    later = timezone.now() + 400 * DAY
    in_lockstep(monkeypatch)
    media_results = run_twice_at_once(lifecycle.expire_media, batch_size=3, now=later)
    in_lockstep(monkeypatch)
    upload_results = run_twice_at_once(lifecycle.expire_uploads, batch_size=3, now=later)
    assert sum(result.expired for result in media_results) == 10
    assert sum(result.expired for result in upload_results) == 10
    assert {fresh(media).status for media in files} == {"deleted"}
    assert {fresh(media).status for media in uploads} == {"purged"}
    assert counters(alice.organization) == {"used_bytes": 0, "reserved_bytes": 0, "file_count": 0}
    assert_usage_is_a_recount(alice.organization)


@pytest.mark.django_db(transaction=True)
def test_two_source_cleanups_at_once_delete_each_source_once(requires_postgres, monkeypatch):
    keys = [compute_object(f"gen/{n}.png") for n in range(10)]
    for key in keys:
        cleanup_for(key)
    deletes = SlowDeletes(monkeypatch)
    in_lockstep(monkeypatch)
    results = run_twice_at_once(lifecycle.cleanup_sources, batch_size=3)
    assert sum(result.deleted for result in results) == 10
    assert deletes.calls == Counter({key: 1 for key in keys}) and compute_keys() == set()


def test_one_bad_row_does_not_stop_a_run(alice, monkeypatch):
    files = [stored(alice) for _ in range(4)]
    MediaFile.objects.filter(pk=files[1].pk).update(storage_key="organizations/../escape.png")  # invalid key
    MediaFile.objects.filter(pk=files[2].pk).update(storage_key="compute/not-a-user-file.png")
    for media in files:
        media_delete(media=media)
    store, real_delete = get_store(), get_store().delete

    def delete(key: str) -> None:
        if key == files[3].storage_key:
            raise RuntimeError("an unexpected backend error")
        real_delete(key)

    monkeypatch.setattr(store, "delete", delete)
    result = lifecycle.purge_media()
    assert (result.purged, result.failed) == (1, 3)
    assert "InvalidPath" in fresh(files[1]).storage_error
    assert "not under organizations/" in fresh(files[2]).storage_error
    assert "RuntimeError" in fresh(files[3]).storage_error
    assert [fresh(media).status for media in files] == ["purged", "deleted", "deleted", "deleted"]


# -- the whole story ----------------------------------------------------------------------
def test_after_a_mixed_sequence_and_one_run_of_every_job_storage_and_usage_match_the_rows(
        alice, bob, charlie, settings, monkeypatch):
    from django.core.management import call_command

    from media_app.ingest import media_ingest, source_object_key
    from media_app.services import FileOptions

    settings.MEDIA_SOURCE_DELETE_DELAY = 0
    store = get_store()
    shared, alices = unique_png(), unique_png()
    # Uploads, a duplicate upload (answers the same id) and presigned duplicates (aliases).
    original = stored(alice, shared)
    assert stored(alice, shared).pk == original.pk
    alias_kept, alias_gone = alias_of(alice, shared), alias_of(alice, shared)
    plain = [stored(alice, alices), stored(bob), stored(charlie)]
    # Presigned uploads left pending: still open, abandoned with bytes, abandoned without.
    still_open, abandoned_full, abandoned_empty = prepared(bob, 400), prepared(alice, 400), prepared(charlie, 400)
    uploaded(still_open, unique_png())
    uploaded(abandoned_full, unique_png())
    # Deletes: the original (its alias lives on), an alias, a plain file, a pending upload.
    deleted(alice, original)
    deleted(alice, alias_gone)
    deleted(bob, plain[1])
    deleted(charlie, prepared(charlie, 400))
    # Ingests: relocated (its source goes), kept in place, and one of content Alice already has.
    for path, data in (("gen/a.png", None), ("gen/b.png", None), ("gen/c.png", alices)):
        compute_object(source_object_key(f"compute/{path}", organization=alice.organization).removeprefix(
            "compute/"), data)
    ingested = media_ingest(organization=alice.organization, owner=alice.user, storage_key="compute/gen/a.png",
                            options=FileOptions()).media
    media_ingest(organization=alice.organization, owner=alice.user, storage_key="compute/gen/b.png",
                 relocate=False, options=FileOptions())
    assert media_ingest(organization=alice.organization, owner=alice.user, storage_key="compute/gen/c.png",
                        options=FileOptions()).media.pk == plain[0].pk
    # Failures: a refused upload, a write that fails midway, a rejected completion whose cleanup
    # fails (its pending row stays for expire_uploads), a crash before a row, quota drift.
    assert alice.client.post("/v1/media/upload", {"file": upload("x.exe", b"\x7fELF\x02\x01\x01\x00" + b"\0" * 64)},
                             format="multipart").status_code == 415
    real_write = store._write
    monkeypatch.setattr(store, "_write", lambda *a, **k: (_ for _ in ()).throw(StorageUnavailable()))
    assert alice.client.post("/v1/media/upload", {"file": upload("y.png", unique_png())},
                             format="multipart").status_code == 503
    monkeypatch.setattr(store, "_write", real_write)
    rejected = prepared(bob, 400)
    get_store().save_stream(rejected.storage_key, io.BytesIO(b"\x7fELF\x02\x01\x01\x00" + b"\0" * 64), max_bytes=999)
    deletes = FailingDeletes(monkeypatch, rejected.storage_key)
    assert completed(bob, rejected).status_code == 415 and fresh(rejected).status == "pending"
    deletes.failing.clear()
    crashed = stray_object(charlie.organization.pk)
    Quota.objects.filter(organization=bob.organization).update(used_bytes=1, file_count=40)
    # Time passes: windows close, one file reaches its retain_until.
    MediaFile.objects.filter(pk__in=[abandoned_full.pk, abandoned_empty.pk, rejected.pk]).update(
        upload_expires_at=timezone.now() - timedelta(seconds=1))
    MediaFile.objects.filter(pk=plain[2].pk).update(retain_until=timezone.now() - timedelta(seconds=1))

    out = io.StringIO()
    for command, *args in (("expire_uploads",), ("expire_media",), ("purge_media",), ("cleanup_sources",),
                           ("recalculate_quotas",), ("reconcile_storage", "--fix", "--grace", "0")):
        call_command(command, *args, stdout=out)

    assert_storage_matches_live_rows()
    assert_usage_is_a_recount(alice.organization, charlie.organization)
    assert counters(bob.organization) == media_quota_totals(organization=bob.organization)
    assert crashed not in object_keys() and original.storage_key in object_keys()
    assert compute_keys() == {source_object_key("compute/gen/b.png", organization=alice.organization)}
    assert set(MediaFile.objects.filter(status="pending").values_list("pk", flat=True)) == {still_open.pk}
    assert not MediaFile.objects.filter(status="deleted").exclude(pk=original.pk).exists()
    assert fresh(alias_kept).status == "active" and fresh(ingested).status == "active"
    assert not MediaFile.objects.exclude(storage_error="").exists()
    assert "would" not in out.getvalue() and out.getvalue().count("\n") >= 6


def test_a_source_written_again_after_its_ingest_is_kept(db):
    row = cleanup_for(compute_object("gen/again.png"))
    SourceCleanup.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(hours=2))
    compute_object("gen/again.png")  # the compute server reuses the path with new content
    result = lifecycle.cleanup_sources(now=timezone.now() + timedelta(days=2))
    row.refresh_from_db()
    assert result.deleted == 0 and row.done_at is not None and "written again" in row.last_error
    assert "compute/gen/again.png" in compute_keys()


# -- 6b. leftovers of writes that never finished ---------------------------------------------
def test_a_crashed_writes_leftovers_older_than_the_grace_are_removed(alice):
    leave_partial_upload(f"organizations/{alice.organization.pk}/files/1/crashed.png")
    assert lifecycle.reconcile_storage(grace=0, dry_run=True).partial == 1 and partial_uploads() == ["crashed.png"]
    result = lifecycle.reconcile_storage(grace=0)
    assert result.partial == 1 and "crashed.png" in result.partial_items[0]
    assert partial_uploads() == []
    assert "removed 1 partial upload" in result.summary()


def test_a_local_temp_file_still_being_written_is_kept(alice, settings, tmp_path):
    import os
    import time

    from tests.conftest import use_local

    use_local(settings, tmp_path)
    leave_partial_upload("old.png")
    leave_partial_upload("young.png")
    old = time.time() - 7200
    os.utime(get_store().root / ".tmp" / "old.png.part", (old, old))
    assert lifecycle.reconcile_storage(grace=3600).partial_items == [".tmp/old.png.part"]
    assert partial_uploads() == ["young.png"]


def test_s3_multipart_uploads_outside_the_reconciled_prefix_are_kept(alice, settings, moto_endpoint):
    from tests.conftest import use_s3

    use_s3(settings, moto_endpoint)
    leave_partial_upload(f"organizations/{alice.organization.pk}/files/1/mine.png")
    leave_partial_upload("compute/gen/theirs.png")
    leave_partial_upload(f"organizations/{alice.organization.pk}0/files/1/neighbour.png")
    assert lifecycle.reconcile_storage(organization=alice.organization, grace=0).partial == 1
    assert partial_uploads() == ["neighbour.png", "theirs.png"]
