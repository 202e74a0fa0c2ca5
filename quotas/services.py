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

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Organization
from config.errors import QuotaExceeded
from config.prebuilt import Prebuilt
from quotas.models import Quota


@dataclass(frozen=True)
class QuotaDrift:
    organization_id: int
    before: dict[str, int]
    after: dict[str, int]

    @property
    def changed(self) -> bool:
        return self.before != self.after


# The counters move by these statements, written once: built through the ORM (F() expressions,
# Coalesce, Greatest), each cost more CPU to compile on every upload than the database spent running
# it (docs/benchmarks.md, row 12). The same SQL runs on PostgreSQL and SQLite. Byte counts are cast
# to bigint: with server-side binding (config/settings.py) a parameter the database types as int4
# would not hold more than 2 GiB. The table's name is double-quoted, as both databases quote names.
_TABLE = f'"{Quota._meta.db_table}"'
_RESERVE = (f"UPDATE {_TABLE} SET reserved_bytes = reserved_bytes + CAST(%s AS BIGINT) "
            "WHERE organization_id = %s "
            "AND used_bytes <= COALESCE(limit_override_bytes, CAST(%s AS BIGINT)) - reserved_bytes - CAST(%s AS BIGINT)")
_CHARGE = (f"UPDATE {_TABLE} SET reserved_bytes = CASE WHEN reserved_bytes > CAST(%s AS BIGINT) "
           "THEN reserved_bytes - CAST(%s AS BIGINT) ELSE 0 END, "
           "used_bytes = used_bytes + CAST(%s AS BIGINT), file_count = file_count + 1 "
           "WHERE organization_id = %s AND used_bytes <= COALESCE(limit_override_bytes, CAST(%s AS BIGINT)) "
           "- reserved_bytes + CAST(%s AS BIGINT) - CAST(%s AS BIGINT)")
_RELEASE_RESERVATION = (f"UPDATE {_TABLE} SET reserved_bytes = CASE WHEN reserved_bytes > CAST(%s AS BIGINT) "
                        "THEN reserved_bytes - CAST(%s AS BIGINT) ELSE 0 END WHERE organization_id = %s")
_RELEASE = (f"UPDATE {_TABLE} SET used_bytes = CASE WHEN used_bytes > CAST(%s AS BIGINT) "
            "THEN used_bytes - CAST(%s AS BIGINT) ELSE 0 END, "
            "file_count = CASE WHEN file_count > %s THEN file_count - %s ELSE 0 END WHERE organization_id = %s")


def _run(sql: str, params: list[int]) -> int:
    """Run one counter statement; the number of quota rows it changed (0 or 1)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def quota_limit(*, organization: Organization, quota: Quota | None = None) -> int:
    quota = quota or quota_get(organization=organization)
    if quota.limit_override_bytes is not None:
        return quota.limit_override_bytes
    return organization.plan.storage_limit_bytes


# Read before every upload (`quota_available`): built once, like the counters' statements.
_QUOTA_OF = Prebuilt(Quota, lambda variant, organization_id: Quota.objects.filter(organization_id=organization_id))


def quota_get(*, organization: Organization) -> Quota:
    quota = _QUOTA_OF.first(organization.pk)
    if quota is None:
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
    return bool(_run(_RESERVE, [n, organization.pk, organization.plan.storage_limit_bytes, n]))


def quota_charge(*, organization: Organization, reserved: int, size: int) -> None:
    """Turn a reservation of `reserved` bytes into `size` used bytes and one more file."""
    limit = organization.plan.storage_limit_bytes
    if not _run(_CHARGE, [reserved, reserved, size, organization.pk, limit, reserved, size]):
        raise QuotaExceeded(param="file")


def quota_release_reservation(*, organization: Organization, reserved: int) -> None:
    """Give back a reservation (failed, refused or abandoned upload)."""
    if reserved:
        _run(_RELEASE_RESERVATION, [reserved, reserved, organization.pk])


def quota_release(*, organization: Organization, size: int, files: int = 1) -> None:
    """Give back what an active file used (delete, expiry). Never goes below zero."""
    _run(_RELEASE, [size, size, files, files, organization.pk])


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
