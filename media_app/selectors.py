"""Reads of MediaFile rows, always scoped to what the caller may see."""
from __future__ import annotations

import base64
import binascii
from datetime import datetime

from django.db import connections
from django.db.models import BooleanField, Count, ExpressionWrapper, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

from accounts.models import Organization
from accounts.principal import Principal
from config.errors import NotFound
from config.prebuilt import Prebuilt, planned_with_values
from media_app.models import MediaFile, MediaVariant

LIVE = (MediaFile.Status.ACTIVE,)


def media_visible_to(principal: Principal, *, statuses=LIVE) -> QuerySet[MediaFile]:  # noqa: ANN001
    """The caller's files; admins, owners and service keys see their whole organization."""
    rows = MediaFile.objects.filter(organization=principal.organization, status__in=statuses)
    if not principal.sees_whole_organization:
        rows = rows.filter(owner=principal.user)
    return rows


def _one_visible(variant: tuple[bool, tuple[str, ...]], organization_id: int, media_id: str,
                 owner_id: int | None = None) -> QuerySet[MediaFile]:
    whole_organization, statuses = variant
    rows = MediaFile.objects.filter(organization_id=organization_id, status__in=statuses, pk=media_id)
    if whole_organization:
        return rows.select_related("owner", "duplicate_of").order_by()
    return rows.filter(owner_id=owner_id).select_related("duplicate_of").order_by()


# Compiled once per database: building this select through the ORM cost more than the database's answer.
_ONE_VISIBLE = Prebuilt(MediaFile, _one_visible)


def media_get(principal: Principal, media_id: str, *, statuses=LIVE) -> MediaFile:  # noqa: ANN001
    """One file by id; another owner's or organization's is as absent as a missing one (404).

    The organization (with its plan) is the principal's, already loaded by authentication, and so is
    the owner when the caller only sees its own files: neither is read again. The statement is
    `media_visible_to(principal).filter(pk=media_id)`, built once (config/prebuilt.py; docs/benchmarks.md, row 8)."""
    whole = principal.sees_whole_organization
    values = (principal.organization.pk, str(media_id)) + (() if whole else (principal.user.pk,))
    media = _ONE_VISIBLE.first(*values, variant=(whole, tuple(statuses)))
    if media is None:
        raise NotFound("No such media file.", code="media_not_found")
    media.organization = principal.organization
    if not whole:
        media.owner = principal.user  # the filter kept only the caller's own files
    return media


def media_get_by_key(principal: Principal, key: str) -> MediaFile:
    media = (media_visible_to(principal).select_related("organization", "owner", "duplicate_of")
             .filter(storage_key=key).first())
    if media is None:
        raise NotFound("No such object.", code="object_not_found")
    return media


def media_resolve(principal: Principal, ids: list[str]) -> tuple[list[MediaFile], list[str]]:
    """Found files in the order asked and the ids that are unknown or not the caller's: one query."""
    wanted = list(dict.fromkeys(ids))
    found = {m.pk: m for m in media_visible_to(principal).select_related("duplicate_of").filter(pk__in=wanted)}
    return [found[i] for i in wanted if i in found], [i for i in wanted if i not in found]


def _where(sql: str, params: list) -> ExpressionWrapper:
    """A condition written in SQL, for `QuerySet.filter`."""
    return ExpressionWrapper(RawSQL(sql, params), output_field=BooleanField())


def media_search_filter(rows: QuerySet[MediaFile], text: str) -> QuerySet[MediaFile]:
    """Prompt search: PostgreSQL full-text on the stored `prompt_tsv` column (GIN index `media_prompt_tsv`,
    migration 0006); a contains elsewhere."""
    if connections[rows.db].vendor != "postgresql":
        return rows.filter(prompt__icontains=text)
    # The column PostgreSQL keeps current from `prompt` (no per-row to_tsvector while the scan walks).
    return rows.filter(_where("\"media_app_mediafile\".\"prompt_tsv\" @@ websearch_to_tsquery('english', %s)", [text]))


def media_list(principal: Principal, query: dict) -> tuple[list[MediaFile], bool]:
    """One page of the caller's files (or a named member's), newest first by default."""
    from accounts.services import user_get_in_organization
    from config.errors import PermissionDenied

    rows = MediaFile.objects.filter(organization=principal.organization, status=MediaFile.Status.ACTIVE)
    user = query.get("user", "me")
    if user in ("me", str(principal.user.pk), principal.user.username):
        rows = rows.filter(owner=principal.user)
    elif not principal.sees_whole_organization:
        raise PermissionDenied("Only organization admins and service keys may list another user's files.",
                               param="user")
    elif user != "*":
        rows = rows.filter(owner=user_get_in_organization(organization=principal.organization, user_id=user,
                                                                param="user"))
    for name in ("media_kind", "provider", "category", "visibility"):
        value = query.get("media" if name == "media_kind" else name)
        if value:
            rows = rows.filter(**{name: value})
    if query.get("model"):
        rows = rows.filter(Q(model=query["model"]) | Q(model__startswith=query["model"] + ":"))
    if query.get("search"):
        rows = media_search_filter(rows, query["search"])
    newest = query.get("sort", "newest") == "newest"
    if query.get("cursor"):
        rows = _after_cursor(rows, *query["cursor"], newest=newest)
    order = ("-created_at", "-id") if newest else ("created_at", "id")
    limit = query.get("limit", 20)
    rows = rows.select_related("owner", "duplicate_of").only(*LISTED).order_by(*order)[: limit + 1]
    with planned_with_values(rows.db):  # a generic plan of a filtered page can be many times slower
        page = list(rows)
    return page[:limit], len(page) > limit


def _after_cursor(rows: QuerySet[MediaFile], created: datetime, media_id: str, *, newest: bool) -> QuerySet[MediaFile]:
    """The rows after the cursor's (created_at, id) in the page's order, as one row-value comparison:
    PostgreSQL seeks to it in `media_list_idx` (organization, owner, status, created_at, id) instead of
    walking every row of the earlier pages through a filter (6 ms at page 2 of a million rows, more
    with each page). SQLite compares row values too (3.15 and later)."""
    ops = connections[rows.db].ops
    table = ops.quote_name(MediaFile._meta.db_table)
    return rows.filter(_where(f'({table}."created_at", {table}."id") {"<" if newest else ">"} (%s, %s)',
                              [ops.adapt_datetimefield_value(created), media_id]))


# What a listed file's answer reads (api/media/serializers.MediaOutput, media_app/links.py): a page
# built from every column of three tables cost more in Python than the query (docs/benchmarks.md, row 7).
LISTED = ("id", "organization_id", "owner_id", "status", "storage_key", "original_name", "mime", "bytes", "sha256",
          "media_kind", "category", "visibility", "source", "model", "provider", "prompt", "generation", "width",
          "height", "encryption", "encryption_key_id", "duplicate_of_id", "created_at", "completed_at", "retain_until",
          "owner__id", "owner__username", "duplicate_of__id", "duplicate_of__owner_id", "duplicate_of__storage_key")


def media_usage_by_category(*, organization: Organization) -> dict[str, dict[str, int]]:
    """Bytes and files of the organization's live files, per category that has any."""
    rows = (MediaFile.objects.filter(organization=organization, status=MediaFile.Status.ACTIVE)
            .values("category").annotate(bytes=Sum("bytes"), files=Count("id")))
    return {row["category"]: {"bytes": row["bytes"] or 0, "files": row["files"]} for row in rows}


def media_quota_totals(*, organization: Organization) -> dict[str, int]:
    """What the quota counters should say, counted from the rows: active bytes and files, pending reservations."""
    totals = MediaFile.objects.filter(organization=organization).aggregate(
        used=Coalesce(Sum("bytes", filter=Q(status=MediaFile.Status.ACTIVE)), 0),
        files=Count("id", filter=Q(status=MediaFile.Status.ACTIVE)),
        reserved=Coalesce(Sum("reserved_bytes", filter=Q(status=MediaFile.Status.PENDING)), 0),
    )
    return {"used_bytes": totals["used"], "reserved_bytes": totals["reserved"], "file_count": totals["files"]}


def media_variant_usage(*, organization: Organization) -> dict[str, int]:
    """Bytes and count of an organization's stored variants: reported apart from its files."""
    totals = MediaVariant.objects.filter(organization=organization, status=MediaVariant.Status.READY).aggregate(
        bytes=Sum("bytes"), count=Count("id"))
    return {"variant_bytes": totals["bytes"] or 0, "variant_count": totals["count"]}


def media_get_public(media_id: str) -> MediaFile:
    """A live public file, for anyone; a private or unknown one is the same 404."""
    media = (MediaFile.objects.select_related("duplicate_of")
             .filter(pk=media_id, status=MediaFile.Status.ACTIVE, visibility=MediaFile.Visibility.PUBLIC).first())
    if media is None:
        raise NotFound("No such media file.", code="media_not_found")
    return media


def media_cursor_encode(media: MediaFile) -> str:
    """The keyset cursor after `media` in a newest-first list: its creation time and id, opaque to clients."""
    raw = f"{media.created_at.isoformat()}|{media.pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def media_cursor_decode(value: str) -> tuple[datetime, str]:
    """(created_at, id) of a cursor from `media_cursor_encode`; ValueError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        stamp, media_id = raw.split("|", 1)
        created = datetime.fromisoformat(stamp)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("The cursor is not valid.") from None
    if created.tzinfo is None or not media_id:
        raise ValueError("The cursor is not valid.")
    return created, media_id
