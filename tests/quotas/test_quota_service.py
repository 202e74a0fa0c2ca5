import io
import threading

import pytest
from django.db import connection

from config.errors import QuotaExceeded
from media_app.models import MediaFile
from media_app.services import FileOptions, media_quota_recalculate, media_store_stream
from quotas.models import Quota
from quotas.services import (
    quota_charge, quota_limit, quota_release, quota_release_reservation, quota_reserve,
)
from tests.factories import png_bytes


def counters(org):
    quota = Quota.objects.get(organization=org)
    return quota.used_bytes, quota.reserved_bytes, quota.file_count


def test_reserve_charge_release_move_the_counters(acme):
    quota_reserve(organization=acme, n=100)
    assert counters(acme) == (0, 100, 0)
    quota_charge(organization=acme, reserved=100, size=80)
    assert counters(acme) == (80, 0, 1)
    quota_release(organization=acme, size=80)
    assert counters(acme) == (0, 0, 0)


def test_reserving_past_the_limit_is_refused(acme):
    Quota.objects.filter(organization=acme).update(limit_override_bytes=100)
    quota_reserve(organization=acme, n=60)
    with pytest.raises(QuotaExceeded):
        quota_reserve(organization=acme, n=41)
    quota_reserve(organization=acme, n=40)
    assert counters(acme) == (0, 100, 0)


def test_a_charge_larger_than_its_reservation_cannot_pass_the_limit(acme):
    Quota.objects.filter(organization=acme).update(limit_override_bytes=100)
    quota_reserve(organization=acme, n=50)
    with pytest.raises(QuotaExceeded):
        quota_charge(organization=acme, reserved=50, size=101)
    assert counters(acme) == (0, 50, 0)


def test_usage_never_goes_negative(acme):
    quota_release(organization=acme, size=10**9, files=5)
    quota_release_reservation(organization=acme, reserved=10**9)
    assert counters(acme) == (0, 0, 0)


def test_the_limit_is_the_override_or_the_plans(acme):
    assert quota_limit(organization=acme) == acme.plan.storage_limit_bytes
    Quota.objects.filter(organization=acme).update(limit_override_bytes=123)
    assert quota_limit(organization=acme) == 123


def test_recalculate_restores_corrupted_counters_and_reports_drift(alice):
    media_store_stream(organization=alice.organization, owner=alice.user, source=io.BytesIO(png_bytes(noise=8)),
                       options=FileOptions(original_name="a.png"))
    Quota.objects.filter(organization=alice.organization).update(used_bytes=5, reserved_bytes=77, file_count=9)
    drift = media_quota_recalculate(organization=alice.organization)
    assert drift.changed and drift.before == {"used_bytes": 5, "reserved_bytes": 77, "file_count": 9}
    size = MediaFile.objects.get().bytes
    assert counters(alice.organization) == (size, 0, 1)
    assert not media_quota_recalculate(organization=alice.organization).changed


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_uploads_where_ten_fit_store_at_most_ten(requires_postgres, alice, store_keys):
    """Real threads, real PostgreSQL connections, real storage: the quota holds."""
    images = [png_bytes(32, 32, noise=1000) for _ in range(50)]
    size = len(images[0])
    Quota.objects.filter(organization=alice.organization).update(limit_override_bytes=size * 10 + size // 2)
    outcomes: list[str] = []
    barrier = threading.Barrier(50)

    def upload(data: bytes) -> None:
        try:
            barrier.wait()
            media_store_stream(organization=alice.organization, owner=alice.user, source=io.BytesIO(data),
                               declared_size=len(data), options=FileOptions(original_name="race.png"))
            outcomes.append("stored")
        except QuotaExceeded:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=upload, args=(data,)) for data in images]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = MediaFile.objects.filter(status="active")
    assert outcomes.count("stored") == stored.count() <= 10
    assert outcomes.count("stored") + outcomes.count("refused") == 50
    used, reserved, files = counters(alice.organization)
    assert used == sum(stored.values_list("bytes", flat=True)) <= size * 10 + size // 2
    assert reserved == 0 and files == stored.count()
    assert len(store_keys("organizations/")) == stored.count()


def test_the_seeded_plans_allow_files_the_size_of_video(db):
    from quotas.models import Plan
    from quotas.services import plans_ensure_seeded

    plans_ensure_seeded()
    limits = dict(Plan.objects.values_list("slug", "max_file_bytes"))
    assert (limits["individual"], limits["organization"]) == (2 * 1024**3, 10 * 1024**3)
