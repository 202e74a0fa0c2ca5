import io
import threading

import pytest
from django.db import connection

from config.errors import QuotaExceeded
from media_app.models import MediaFile
from media_app.services import FileOptions, media_quota_recalculate, media_store_stream
from quotas.models import Quota
from quotas.models import Plan
from quotas.services import (
    QuotaDrift, plans_ensure_seeded, quota_available, quota_charge, quota_get, quota_limit, quota_recalculate,
    quota_release, quota_release_reservation, quota_reserve,
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


def test_a_refusal_over_a_full_quota_costs_two_queries_and_makes_no_row(acme, django_assert_num_queries):
    Quota.objects.filter(organization=acme).update(limit_override_bytes=100)
    with django_assert_num_queries(2):  # the conditional update, then whether the row exists
        with pytest.raises(QuotaExceeded):
            quota_reserve(organization=acme, n=101)
    assert Quota.objects.filter(organization=acme).count() == 1


def test_a_charge_larger_than_its_reservation_cannot_pass_the_limit(acme):
    Quota.objects.filter(organization=acme).update(limit_override_bytes=100)
    quota_reserve(organization=acme, n=50)
    with pytest.raises(QuotaExceeded):
        quota_charge(organization=acme, reserved=50, size=101)
    assert counters(acme) == (0, 50, 0)


def limit(org, n: int) -> None:
    Quota.objects.filter(organization=org).update(limit_override_bytes=n)


def refusal(exc: pytest.ExceptionInfo) -> tuple[int, str, str | None]:
    return exc.value.status, exc.value.code, exc.value.param


def test_a_reservation_may_fill_the_quota_to_the_last_byte_and_not_one_more(acme):
    quota_get(organization=acme)
    limit(acme, 100)
    quota_reserve(organization=acme, n=100)
    with pytest.raises(QuotaExceeded) as caught:
        quota_reserve(organization=acme, n=1)
    assert refusal(caught) == (413, "quota_exceeded", "file")
    assert counters(acme) == (0, 100, 0)


def test_reserving_counts_what_is_used_as_well_as_what_is_reserved(acme):
    quota_get(organization=acme)
    Quota.objects.filter(organization=acme).update(limit_override_bytes=100, used_bytes=30, reserved_bytes=30)
    with pytest.raises(QuotaExceeded):
        quota_reserve(organization=acme, n=41)
    quota_reserve(organization=acme, n=40)
    assert counters(acme) == (30, 70, 0)


def test_reserving_nothing_is_allowed_and_a_negative_reservation_is_a_bug(acme):
    quota_reserve(organization=acme, n=0)
    assert counters(acme) == (0, 0, 0)
    with pytest.raises(ValueError, match="^cannot reserve a negative number of bytes$"):
        quota_reserve(organization=acme, n=-1)


def test_the_first_reservation_creates_the_quota_row(acme):
    Quota.objects.filter(organization=acme).delete()
    quota_reserve(organization=acme, n=5)
    assert counters(acme) == (0, 5, 0)


def test_a_charge_may_use_the_quota_to_the_last_byte_and_not_one_more(acme):
    quota_get(organization=acme)
    limit(acme, 100)
    quota_reserve(organization=acme, n=60)
    quota_reserve(organization=acme, n=30)
    quota_charge(organization=acme, reserved=60, size=70)     # 70 used + 30 still reserved = 100
    assert counters(acme) == (70, 30, 1)
    with pytest.raises(QuotaExceeded) as caught:
        quota_charge(organization=acme, reserved=30, size=31)
    assert refusal(caught) == (413, "quota_exceeded", "file")
    assert counters(acme) == (70, 30, 1)


def test_a_charge_never_leaves_a_negative_reservation(acme):
    quota_reserve(organization=acme, n=10)
    quota_charge(organization=acme, reserved=50, size=5)
    assert counters(acme) == (5, 0, 1)


def test_releasing_a_reservation_gives_back_exactly_that_many_bytes(acme):
    quota_reserve(organization=acme, n=100)
    quota_release_reservation(organization=acme, reserved=40)
    assert counters(acme) == (0, 60, 0)
    quota_release_reservation(organization=acme, reserved=0)
    assert counters(acme) == (0, 60, 0)


def test_releasing_files_gives_back_their_bytes_and_count(acme):
    quota_get(organization=acme)
    Quota.objects.filter(organization=acme).update(used_bytes=100, file_count=5)
    quota_release(organization=acme, size=30)
    assert counters(acme) == (70, 0, 4)
    quota_release(organization=acme, size=20, files=3)
    assert counters(acme) == (50, 0, 1)


def test_the_bytes_available_are_the_limit_less_used_and_reserved_and_never_negative(acme):
    quota_get(organization=acme)
    Quota.objects.filter(organization=acme).update(limit_override_bytes=100, used_bytes=30, reserved_bytes=20)
    assert quota_available(organization=acme) == 50
    Quota.objects.filter(organization=acme).update(used_bytes=300)
    assert quota_available(organization=acme) == 0


def test_without_an_override_the_plans_limit_is_available_from_one_read_of_the_quota(
        acme, django_assert_num_queries):
    quota_get(organization=acme)
    Quota.objects.filter(organization=acme).update(used_bytes=30, reserved_bytes=20)
    with django_assert_num_queries(1):
        assert quota_available(organization=acme) == acme.plan.storage_limit_bytes - 50


def test_an_override_of_zero_is_a_limit_of_zero_not_the_plans(acme):
    quota_get(organization=acme)
    limit(acme, 0)
    assert quota_limit(organization=acme) == 0
    with pytest.raises(QuotaExceeded):
        quota_reserve(organization=acme, n=1)


def test_recalculate_sets_the_counters_to_the_recount_and_stamps_the_time(acme):
    quota_get(organization=acme)
    Quota.objects.filter(organization=acme).update(used_bytes=5, reserved_bytes=6, file_count=7)
    recount = {"used_bytes": 1, "reserved_bytes": 2, "file_count": 3}
    drift = quota_recalculate(organization=acme, recount=lambda: recount)
    assert drift == QuotaDrift(organization_id=acme.pk, before={"used_bytes": 5, "reserved_bytes": 6, "file_count": 7},
                               after=recount)
    assert counters(acme) == (1, 2, 3)
    assert Quota.objects.get(organization=acme).recalculated_at is not None


def test_a_dry_run_recalculation_reports_the_drift_and_changes_nothing(acme):
    quota_get(organization=acme)
    Quota.objects.filter(organization=acme).update(used_bytes=5, reserved_bytes=6, file_count=7)
    drift = quota_recalculate(organization=acme, recount=lambda: {"used_bytes": 1, "reserved_bytes": 2,
                                                                  "file_count": 3}, dry_run=True)
    assert drift.changed
    assert counters(acme) == (5, 6, 7)
    assert Quota.objects.get(organization=acme).recalculated_at is None


def test_drift_is_a_change_only_when_before_and_after_differ():
    same = {"used_bytes": 1, "reserved_bytes": 0, "file_count": 1}
    assert not QuotaDrift(organization_id=1, before=same, after=dict(same)).changed
    assert QuotaDrift(organization_id=1, before=same, after={**same, "file_count": 2}).changed


def test_seeding_restores_the_two_plans_after_a_flush(db):
    Plan.objects.all().delete()
    plans_ensure_seeded()
    assert sorted(Plan.objects.values_list("slug", flat=True)) == ["individual", "organization"]


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
@pytest.mark.parametrize("reserved_first", [False, True], ids=["charged-at-activation", "reserved-first"])
def test_fifty_concurrent_uploads_where_ten_fit_store_at_most_ten(requires_postgres, alice, store_keys, monkeypatch,
                                                                  reserved_first):
    """Real threads, real PostgreSQL connections, real storage: the quota holds, for small bodies (charged
    at activation only) and for bodies that reserve before their bytes arrive."""
    if reserved_first:
        from media_app import services

        monkeypatch.setattr(services, "UNRESERVED_MAX_BYTES", 0)
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


def test_byte_counts_past_four_gibibytes_move_the_counters_exactly(acme):
    """Sizes are bigint parameters: with server-side binding an int4 one would wrap silently."""
    big, limit = 5 * 2**30 + 7, 3 * 2**40
    Quota.objects.filter(organization=acme).update(limit_override_bytes=limit)
    quota_reserve(organization=acme, n=big)
    assert counters(acme) == (0, big, 0)
    quota_charge(organization=acme, reserved=big, size=big - 1)
    assert counters(acme) == (big - 1, 0, 1)
    quota_reserve(organization=acme, n=big)
    quota_release_reservation(organization=acme, reserved=big)
    quota_release(organization=acme, size=big - 1)
    assert counters(acme) == (0, 0, 0)
    Quota.objects.filter(organization=acme).update(limit_override_bytes=None)
    Plan.objects.filter(pk=acme.plan_id).update(storage_limit_bytes=limit)
    acme.plan.refresh_from_db()
    quota_reserve(organization=acme, n=big)
    with pytest.raises(QuotaExceeded):
        quota_reserve(organization=acme, n=limit)
