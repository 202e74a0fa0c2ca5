"""The quota service every path that stores bytes goes through.

Each change is one conditional UPDATE, so two uploads racing for the last bytes of an
organization's quota cannot both win, on PostgreSQL and on SQLite alike:

    reserve  used + reserved + n <= limit      -> reserved += n
    charge   used + reserved - r + size <= limit -> reserved -= r, used += size, files += 1
    release  used -= size, files -= 1 (never below zero)

Every reservation is backed by a `pending` MediaFile row (its `reserved_bytes`), so
`quota_recalculate` can rebuild all three counters from rows.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import BigIntegerField, F, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.models import Organization
from config.errors import QuotaExceeded
from quotas.models import Quota


@dataclass(frozen=True)
class QuotaDrift:
    organization_id: int
    before: dict[str, int]
    after: dict[str, int]

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _bytes(n: int) -> Value:
    """A byte count as a bigint parameter. A bare int in an expression is an `IntegerField` Value, which
    Django passes as an int4 parameter; with server-side binding (config/settings.py) psycopg would send
    anything over 2 GiB as a wrong int4 instead of failing."""
    return Value(n, output_field=BigIntegerField())


def _limit_expression(organization: Organization):  # noqa: ANN202
    # The override lives on the quota row itself, so it is read in the same statement.
    return Coalesce(F("limit_override_bytes"), _bytes(organization.plan.storage_limit_bytes))


def quota_limit(*, organization: Organization, quota: Quota | None = None) -> int:
    quota = quota or quota_get(organization=organization)
    if quota.limit_override_bytes is not None:
        return quota.limit_override_bytes
    return organization.plan.storage_limit_bytes


def quota_get(*, organization: Organization) -> Quota:
    quota, _ = Quota.objects.get_or_create(organization=organization)
    return quota


def quota_available(*, organization: Organization) -> int:
    quota = quota_get(organization=organization)
    return max(quota_limit(organization=organization, quota=quota) - quota.used_bytes - quota.reserved_bytes, 0)


def quota_reserve(*, organization: Organization, n: int) -> None:
    """Hold `n` bytes for an upload in progress, or raise `QuotaExceeded`."""
    if n < 0:
        raise ValueError("cannot reserve a negative number of bytes")
    if not _reserve(organization, n):
        # No row updated: the quota is full, or the organization has no quota row yet (made here, then
        # tried again). Reading the row first on every upload cost a query inside the locking transaction.
        if not Quota.objects.filter(organization=organization).exists():
            quota_get(organization=organization)
            if _reserve(organization, n):
                return
        raise QuotaExceeded(param="file")


def _reserve(organization: Organization, n: int) -> bool:
    return bool(Quota.objects
                .filter(organization=organization)
                .filter(Q(used_bytes__lte=_limit_expression(organization) - F("reserved_bytes") - _bytes(n)))
                .update(reserved_bytes=F("reserved_bytes") + _bytes(n)))


def quota_charge(*, organization: Organization, reserved: int, size: int) -> None:
    """Turn a reservation of `reserved` bytes into `size` used bytes and one more file."""
    updated = (Quota.objects
               .filter(organization=organization)
               .filter(Q(used_bytes__lte=_limit_expression(organization) - F("reserved_bytes") + _bytes(reserved)
                         - _bytes(size)))
               .update(reserved_bytes=Greatest(F("reserved_bytes") - _bytes(reserved), _bytes(0)),
                       used_bytes=F("used_bytes") + _bytes(size), file_count=F("file_count") + 1))
    if not updated:
        raise QuotaExceeded(param="file")


def quota_release_reservation(*, organization: Organization, reserved: int) -> None:
    """Give back a reservation (failed, refused or abandoned upload)."""
    if reserved:
        Quota.objects.filter(organization=organization).update(
            reserved_bytes=Greatest(F("reserved_bytes") - _bytes(reserved), _bytes(0)))


def quota_release(*, organization: Organization, size: int, files: int = 1) -> None:
    """Give back what an active file used (delete, expiry). Never goes below zero."""
    Quota.objects.filter(organization=organization).update(
        used_bytes=Greatest(F("used_bytes") - _bytes(size), _bytes(0)),
        file_count=Greatest(F("file_count") - files, Value(0)))


def quota_recalculate(*, organization: Organization, recount: Callable[[], dict[str, int]],
                      dry_run: bool = False) -> QuotaDrift:
    """Set the counters to what `recount` finds (the files' layer counts its rows), and report the drift.

    `recount` runs while the quota row is locked, so no reservation or charge slips in between."""
    quota_get(organization=organization)
    with transaction.atomic():
        quota = Quota.objects.select_for_update().get(organization=organization)
        before = {"used_bytes": quota.used_bytes, "reserved_bytes": quota.reserved_bytes,
                  "file_count": quota.file_count}
        after = recount()
        if not dry_run:
            Quota.objects.filter(pk=quota.pk).update(**after, recalculated_at=timezone.now())
    return QuotaDrift(organization_id=organization.pk, before=before, after=after)


def plans_ensure_seeded() -> None:
    """Create the two seeded plans if they are missing (a flushed test database, a restore)."""
    from importlib import import_module

    from django.apps import apps

    import_module("quotas.migrations.0002_seed_plans").seed(apps, None)
    import_module("quotas.migrations.0004_video_file_limits").raise_limits(apps, None)
