"""config.prebuilt: a queryset compiled once answers what the queryset itself answers."""
import pytest
from django.db.models import QuerySet

from config.prebuilt import Prebuilt
from media_app.models import MediaFile


def _rows(variant: str, organization_id: int, media_id: str) -> QuerySet[MediaFile]:
    rows = MediaFile.objects.filter(organization_id=organization_id, pk=media_id).order_by()
    return rows.select_related("owner", "duplicate_of") if variant == "with owner" else rows


def _fields(media: MediaFile) -> dict:
    return {f.attname: getattr(media, f.attname) for f in MediaFile._meta.concrete_fields}


@pytest.mark.parametrize("variant", ["with owner", "alone"])
def test_a_prebuilt_query_answers_the_same_instance_as_the_orm(alice, alices_media, variant):
    prebuilt = Prebuilt(MediaFile, _rows)
    for _ in range(2):  # compiled on the first call, reused on the second
        media = prebuilt.first(alice.organization.pk, alices_media["id"], variant=variant)
        expected = _rows(variant, alice.organization.pk, alices_media["id"]).get()
        assert _fields(media) == _fields(expected) and media._state.db == expected._state.db
        assert not media._state.adding
        if variant == "with owner":
            assert "owner" in media._state.fields_cache and media.owner.username == "alice"
            assert media._state.fields_cache["duplicate_of"] is None


def test_a_prebuilt_query_runs_with_each_calls_values(alice, alices_media, charlie):
    prebuilt = Prebuilt(MediaFile, _rows)
    assert prebuilt.first(alice.organization.pk, alices_media["id"], variant="alone").pk == alices_media["id"]
    assert prebuilt.first(charlie.organization.pk, alices_media["id"], variant="alone") is None
    assert prebuilt.first(alice.organization.pk, "med_unknown", variant="alone") is None


def test_a_value_the_orm_does_not_pass_as_a_parameter_is_refused(db):
    prebuilt = Prebuilt(MediaFile, lambda variant, media_id: MediaFile.objects.filter(pk__startswith=media_id))
    with pytest.raises(ValueError, match="do not appear as parameters"):
        prebuilt.first("med_")


def test_a_field_that_cannot_hold_the_stand_in_is_refused_not_run_wrong(alice, alices_media):
    prebuilt = Prebuilt(MediaFile, lambda variant, media_id, width: MediaFile.objects.filter(pk=media_id, width__gte=width))
    with pytest.raises(ValueError, match="do not appear as parameters"):
        prebuilt.first(alices_media["id"], 1)


def test_all_answers_every_row_the_queryset_answers_in_its_order(alice, alices_media, post_file):
    second = post_file(alice, name="second.png").json()
    prebuilt = Prebuilt(MediaFile, lambda variant, organization_id: MediaFile.objects.filter(
        organization_id=organization_id).order_by("-created_at", "-id"))
    expected = list(MediaFile.objects.filter(organization_id=alice.organization.pk).order_by("-created_at", "-id"))
    for _ in range(2):
        found = prebuilt.all(alice.organization.pk)
        assert [m.pk for m in found] == [m.pk for m in expected] and len(found) == 2
        assert [_fields(m) for m in found] == [_fields(m) for m in expected]
    assert second["id"] in [m.pk for m in found]
    assert prebuilt.all(alice.organization.pk + 1000) == []


def test_a_list_page_is_planned_with_its_values_while_a_detail_lookup_is_prepared(requires_postgres, alice,
                                                                                  alices_media):
    """psycopg prepares a statement after its fifth run, and PostgreSQL may then use a generic plan: fine
    for the detail's point lookup, many times slower for a filtered, searched list page (row 7)."""
    from django.db import connection

    if not connection.settings_dict["OPTIONS"].get("prepare_threshold"):
        pytest.skip("server-side binding is off (DATABASE_SERVER_SIDE_BINDING=false)")
    for _ in range(8):
        assert alice.client.get("/v1/media?provider=stability&search=red").json()["data"][0]["id"] == alices_media["id"]
        assert alice.client.get(f"/v1/media/{alices_media['id']}").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any('FROM "media_app_mediafile"' in sql and '"media_app_mediafile"."id" = $' in sql for sql in prepared)
    assert not any("prompt_tsv" in sql for sql in prepared)
