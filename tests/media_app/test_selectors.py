"""Who sees which MediaFile rows (`media_app.selectors`), on rows made directly, no upload path."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone as tz

import pytest

from accounts.principal import Principal
from config.errors import NotFound, PermissionDenied
from media_app.models import MediaFile, MediaVariant
from media_app.selectors import (
    media_cursor_decode, media_cursor_encode, media_get, media_get_by_key, media_get_public, media_list,
    media_quota_totals, media_resolve, media_search_filter, media_usage_by_category, media_variant_usage,
    media_visible_to,
)

T0 = datetime(2030, 1, 1, tzinfo=tz.utc)
_counter = iter(range(10**6))


def row(actor, *, status: str = "active", minutes: int = 0, **fields) -> MediaFile:
    n = next(_counter)
    media = MediaFile.objects.create(
        id=fields.pop("id", f"med_{n:06d}"), organization=actor.organization, owner=actor.user, status=status,
        storage_key=f"organizations/{actor.organization.pk}/files/{actor.user.pk}/f{n}.png", **fields)
    MediaFile.objects.filter(pk=media.pk).update(created_at=T0 + timedelta(minutes=minutes))
    return media


def principal(actor, role: str, *, service: bool = False) -> Principal:
    return Principal(user=actor.user, organization=actor.organization, role=role, is_service=service)


def ids(rows) -> list[str]:
    return [m.pk for m in rows]


@pytest.fixture
def cast(alice, bob, charlie):
    return {
        "alice": row(alice, minutes=1), "bob": row(bob, minutes=2), "charlie": row(charlie, minutes=3),
        "alice_deleted": row(alice, status="deleted", minutes=4), "alice_pending": row(alice, status="pending"),
    }


# -- visibility ---------------------------------------------------------------------------
def test_a_member_sees_only_their_own_live_files(alice, bob, cast):
    assert set(ids(media_visible_to(principal(bob, "member")))) == {cast["bob"].pk}


@pytest.mark.parametrize(("role", "service"), [("owner", False), ("admin", False), ("member", True)])
def test_owners_admins_and_service_keys_see_the_whole_organizations_live_files(alice, role, service, cast):
    assert set(ids(media_visible_to(principal(alice, role, service=service)))) == {cast["alice"].pk, cast["bob"].pk}


def test_other_statuses_are_seen_only_when_asked_for(alice, cast):
    seen = media_visible_to(principal(alice, "member"), statuses=("active", "deleted"))
    assert set(ids(seen)) == {cast["alice"].pk, cast["alice_deleted"].pk}


# -- one file -----------------------------------------------------------------------------
def test_a_file_is_found_with_its_organization_plan_owner_and_original_loaded(alice, cast,
                                                                             django_assert_num_queries):
    with django_assert_num_queries(1):
        media = media_get(principal(alice, "member"), cast["alice"].pk)
        assert (media.organization.plan.slug, media.owner.username, media.duplicate_of) == (
            "organization", "alice", None)


@pytest.mark.parametrize("which", ["bob", "charlie", "alice_deleted", "missing"])
def test_anothers_or_a_deleted_or_a_missing_file_is_the_same_404(alice, cast, which):
    media_id = cast[which].pk if which in cast else "med_missing"
    with pytest.raises(NotFound) as caught:
        media_get(principal(alice, "member"), media_id)
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        404, "media_not_found", "No such media file.")


def test_an_admin_gets_a_members_file_with_its_owner_in_the_same_query(alice, bob, cast, django_assert_num_queries):
    with django_assert_num_queries(1):
        media = media_get(principal(alice, "admin"), cast["bob"].pk)
        assert (media.pk, media.owner.username, media.organization.slug) == (cast["bob"].pk, "bob", "acme")


def test_an_alias_is_found_with_its_original_in_the_same_query(alice, django_assert_num_queries):
    original = row(alice)
    alias = row(alice, duplicate_of=original)
    caller = principal(alice, "member")
    with django_assert_num_queries(3):
        assert media_get(caller, alias.pk).duplicate_of.pk == original.pk
        assert media_get_by_key(caller, alias.storage_key).duplicate_of.pk == original.pk
        page = media_list(caller, query())[0]
        assert [m.duplicate_of.pk if m.duplicate_of else None for m in page] == [original.pk, None]
        assert [m.owner.username for m in page] == ["alice", "alice"]


def test_a_deleted_file_is_found_when_its_status_is_asked_for(alice, cast):
    assert media_get(principal(alice, "member"), cast["alice_deleted"].pk, statuses=("deleted",)).pk == \
        cast["alice_deleted"].pk


def test_a_file_by_key_is_found_only_among_what_the_caller_sees(alice, bob, cast, django_assert_num_queries):
    with django_assert_num_queries(1):
        media = media_get_by_key(principal(alice, "owner"), cast["bob"].storage_key)
        assert (media.pk, media.organization.slug, media.owner.username, media.duplicate_of) == (
            cast["bob"].pk, "acme", "bob", None)
    for key in (cast["alice"].storage_key, cast["charlie"].storage_key, "organizations/x"):
        with pytest.raises(NotFound) as caught:
            media_get_by_key(principal(bob, "member"), key)
        assert (caught.value.code, caught.value.message) == ("object_not_found", "No such object.")


def test_resolve_answers_in_the_order_asked_once_each_with_the_unknown_apart(alice, cast, django_assert_num_queries):
    original = row(alice)
    alias = row(alice, duplicate_of=original)
    wanted = [alias.pk, cast["charlie"].pk, cast["alice"].pk, "nope", alias.pk, "nope"]
    with django_assert_num_queries(1):
        found, missing = media_resolve(principal(alice, "member"), wanted)
        assert found[0].duplicate_of.pk == original.pk
    assert (ids(found), missing) == ([alias.pk, cast["alice"].pk], [cast["charlie"].pk, "nope"])


# -- search -------------------------------------------------------------------------------
def test_search_outside_postgresql_is_a_case_insensitive_contains(alice):
    red, _ = row(alice, prompt="A Red Square at dawn"), row(alice, prompt="blue circle")
    assert ids(media_search_filter(MediaFile.objects.all(), "red square")) == [red.pk]


def test_search_on_postgresql_reads_the_stored_full_text_column(alice, monkeypatch):
    from django.db import connection

    monkeypatch.setattr(connection, "vendor", "postgresql")
    sql = str(media_search_filter(MediaFile.objects.all(), "red square").query)
    assert sql.split(" WHERE ", 1)[1].split(" ORDER BY ")[0] == (
        """("media_app_mediafile"."prompt_tsv" @@ websearch_to_tsquery('english', red square))""")


# -- listing ------------------------------------------------------------------------------
def query(**kwargs) -> dict:
    return {"user": "me", "limit": 20, **kwargs}


@pytest.mark.parametrize("user", ["me", "bob", "BOB_PK"])
def test_anyone_may_list_their_own_files_by_me_id_or_name(alice, bob, cast, user):
    user = str(bob.user.pk) if user == "BOB_PK" else user
    page, more = media_list(principal(bob, "member"), query(user=user))
    assert (ids(page), more) == ([cast["bob"].pk], False)


def test_the_default_user_is_me(alice, bob, cast):
    assert ids(media_list(principal(bob, "member"), {"limit": 20})[0]) == [cast["bob"].pk]


@pytest.mark.parametrize("user", ["alice", "*"])
def test_a_member_may_not_list_another_users_files_or_everyones(alice, bob, cast, user):
    with pytest.raises(PermissionDenied) as caught:
        media_list(principal(bob, "member"), query(user=user))
    assert (caught.value.status, caught.value.code, caught.value.param, caught.value.message) == (
        403, "permission_denied", "user", "Only organization admins and service keys may list another user's files.")


@pytest.mark.parametrize(("role", "service"), [("admin", False), ("member", True)])
def test_admins_and_service_keys_list_a_member_or_everyone(alice, bob, cast, role, service):
    caller = principal(alice, role, service=service)
    assert ids(media_list(caller, query(user="bob"))[0]) == [cast["bob"].pk]
    assert ids(media_list(caller, query(user=str(bob.user.pk)))[0]) == [cast["bob"].pk]
    assert ids(media_list(caller, query(user="*"))[0]) == [cast["bob"].pk, cast["alice"].pk]


def test_listing_someone_outside_the_organization_names_the_user_parameter(alice, charlie, cast):
    with pytest.raises(NotFound) as caught:
        media_list(principal(alice, "owner"), query(user="charlie"))
    assert (caught.value.code, caught.value.param) == ("user_not_found", "user")


@pytest.mark.parametrize(("filters", "expected"), [
    ({"media": "image"}, ["image"]),
    ({"provider": "openai"}, ["openai"]),
    ({"category": "data_source"}, ["data"]),
    ({"visibility": "public"}, ["public"]),
    ({"model": "sdxl"}, ["sdxl", "sdxl:1.0"]),      # the model or any of its versions
    ({"model": "sdxl:1.0"}, ["sdxl:1.0"]),
    ({"search": "DAWN"}, ["dawn"]),
    ({"media": "", "provider": "", "model": "", "search": ""}, [
        "dawn", "sdxl", "sdxl:1.0", "public", "data", "openai", "image"]),
])
def test_list_filters_each_narrow_by_their_field(alice, filters, expected):
    made = {
        "image": row(alice, minutes=1, media_kind="image"), "openai": row(alice, minutes=2, provider="openai"),
        "data": row(alice, minutes=3, category="data_source"), "public": row(alice, minutes=4, visibility="public"),
        "sdxl:1.0": row(alice, minutes=5, model="sdxl:1.0"), "sdxl": row(alice, minutes=6, model="sdxl"),
        "dawn": row(alice, minutes=7, prompt="at dawn"), "sdxlturbo": row(alice, minutes=8, model="sdxlturbo",
                                                                          status="deleted"),
    }
    row(alice, minutes=9, model="sdxl-turbo")
    names = {m.pk: name for name, m in made.items()}
    page = [names.get(m.pk, m.model) for m in media_list(principal(alice, "member"), query(**filters))[0]]
    assert page == (expected if filters != {"media": "", "provider": "", "model": "", "search": ""}
                    else ["sdxl-turbo", *expected])


def test_a_page_is_newest_first_by_default_and_says_whether_more_follow(alice):
    made = [row(alice, minutes=m) for m in range(5)]
    page, more = media_list(principal(alice, "member"), query(limit=2))
    assert (ids(page), more) == ([made[4].pk, made[3].pk], True)
    page, more = media_list(principal(alice, "member"), query(limit=5))
    assert (len(page), more) == (5, False)


def test_the_default_page_is_twenty_files(alice):
    for m in range(21):
        row(alice, minutes=m)
    page, more = media_list(principal(alice, "member"), {"user": "me"})
    assert (len(page), more) == (20, True)


def test_oldest_first_on_request(alice):
    made = [row(alice, minutes=m) for m in range(3)]
    assert ids(media_list(principal(alice, "member"), query(sort="oldest"))[0]) == ids(made)


@pytest.mark.parametrize("sort", ["newest", "oldest"])
def test_a_cursor_continues_after_its_row_also_among_rows_created_together(alice, sort):
    # Pairs share a created_at, and newer rows have smaller ids: the id only breaks ties.
    made = [row(alice, minutes=m // 2, id=f"med_c{9 - m}") for m in range(6)]
    made = [made[1], made[0], made[3], made[2], made[5], made[4]]              # oldest first: (created, id)
    order = list(reversed(made)) if sort == "newest" else made
    cursor = MediaFile.objects.get(pk=order[2].pk)
    page, more = media_list(principal(alice, "member"),
                            query(sort=sort, limit=2, cursor=(cursor.created_at, cursor.pk)))
    assert (ids(page), more) == (ids(order[3:5]), True)


# -- counting -----------------------------------------------------------------------------
def test_usage_by_category_counts_only_live_files_of_the_organization(alice, charlie):
    row(alice, bytes=10), row(alice, bytes=5), row(alice, bytes=7, category="data_source")
    row(alice, bytes=0, category="profile_image")
    row(alice, bytes=100, status="deleted"), row(charlie, bytes=1000)
    assert media_usage_by_category(organization=alice.organization) == {
        "general": {"bytes": 15, "files": 2}, "data_source": {"bytes": 7, "files": 1},
        "profile_image": {"bytes": 0, "files": 1}}


def test_quota_totals_count_live_bytes_and_files_and_pending_reservations(alice, charlie):
    row(alice, bytes=10, reserved_bytes=99), row(alice, bytes=5)
    row(alice, status="pending", bytes=3, reserved_bytes=40), row(alice, status="pending", reserved_bytes=2)
    row(alice, status="deleted", bytes=100, reserved_bytes=7), row(charlie, bytes=1000, reserved_bytes=1000)
    assert media_quota_totals(organization=alice.organization) == {
        "used_bytes": 15, "reserved_bytes": 42, "file_count": 2}


def test_an_organization_without_files_totals_zero(alice):
    assert media_quota_totals(organization=alice.organization) == {"used_bytes": 0, "reserved_bytes": 0,
                                                                   "file_count": 0}


def variant(actor, *, n: int, bytes: int, status: str = "ready") -> MediaVariant:
    sha = f"{n:064x}"
    return MediaVariant.objects.create(
        organization=actor.organization, sha256=sha, transform="w256_h0_inside_q80_webp", bytes=bytes, status=status,
        storage_key=f"organizations/{actor.organization.pk}/variants/{sha}/w256_h0_inside_q80_webp.webp", claimed_at=T0)


def test_variant_usage_counts_only_the_organizations_ready_variants(alice, charlie):
    variant(alice, n=1, bytes=10), variant(alice, n=2, bytes=5), variant(alice, n=3, bytes=100, status="rendering")
    variant(charlie, n=4, bytes=1000)
    assert media_variant_usage(organization=alice.organization) == {"variant_bytes": 15, "variant_count": 2}


def test_an_organization_without_variants_has_zero_variant_usage(alice, charlie):
    variant(charlie, n=4, bytes=1000)
    assert media_variant_usage(organization=alice.organization) == {"variant_bytes": 0, "variant_count": 0}


# -- public files -------------------------------------------------------------------------
def test_a_live_public_file_is_found_by_anyone_with_its_original_in_one_query(alice, charlie,
                                                                           django_assert_num_queries):
    original = row(alice, visibility="public")
    alias = row(charlie, visibility="public", duplicate_of=original)
    with django_assert_num_queries(1):
        media = media_get_public(alias.pk)
        assert (media.pk, media.duplicate_of.pk) == (alias.pk, original.pk)
    assert media_get_public(original.pk).pk == original.pk


@pytest.mark.parametrize("which", ["private", "deleted", "pending", "missing"])
def test_a_private_or_not_live_or_missing_file_is_the_same_public_404(alice, which):
    row(alice, visibility="public")                    # a public file exists: it is not the one asked for
    media_id = {"private": lambda: row(alice).pk, "deleted": lambda: row(alice, status="deleted", visibility="public").pk,
                "pending": lambda: row(alice, status="pending", visibility="public").pk,
                "missing": lambda: "med_missing"}[which]()
    with pytest.raises(NotFound) as caught:
        media_get_public(media_id)
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        404, "media_not_found", "No such media file.")


# -- cursors ------------------------------------------------------------------------------
def unsaved(pk: str) -> MediaFile:
    return MediaFile(id=pk, created_at=T0)


@pytest.mark.parametrize(("pk", "cursor"), [
    ("med_W", "MjAzMC0wMS0wMVQwMDowMDowMCswMDowMHxtZWRfVw"),                 # two '=' of padding dropped
    ("med_aW", "MjAzMC0wMS0wMVQwMDowMDowMCswMDowMHxtZWRfYVc"),               # one '=' dropped
    ("med_aaW", "MjAzMC0wMS0wMVQwMDowMDowMCswMDowMHxtZWRfYWFX"),             # none to drop; ends in X
    ("med_aaaaaaa", "MjAzMC0wMS0wMVQwMDowMDowMCswMDowMHxtZWRfYWFhYWFhYQ"),
])
def test_a_cursor_is_the_creation_time_and_id_in_url_safe_base64_without_padding(pk, cursor):
    assert media_cursor_encode(unsaved(pk)) == cursor
    assert media_cursor_decode(cursor) == (T0, pk)


def test_everything_after_the_first_bar_is_the_id():
    assert media_cursor_decode(media_cursor_encode(unsaved("med|x|y"))) == (T0, "med|x|y")


def test_a_cursor_round_trips_a_stored_rows_time_and_id(alice):
    media = MediaFile.objects.get(pk=row(alice, minutes=7).pk)
    assert media_cursor_decode(media_cursor_encode(media)) == (media.created_at, media.pk)


@pytest.mark.parametrize("cursor", [
    "!!!",                                            # not base64
    "_w",                                             # not UTF-8
    "bm8gYmFyIGhlcmU",                                # no bar
    "bm90IGEgdGltZXxtZWRfMQ",                         # not a time: "not a time|med_1"
    "MjAzMC0wMS0wMVQwMDowMDowMHxtZWRfMQ",             # a time without a zone: "2030-01-01T00:00:00|med_1"
    "MjAzMC0wMS0wMVQwMDowMDowMCswMDowMHw",            # no id: "2030-01-01T00:00:00+00:00|"
])
def test_anything_but_an_encoded_cursor_is_refused(cursor):
    with pytest.raises(ValueError) as caught:
        media_cursor_decode(cursor)
    assert str(caught.value) == "The cursor is not valid."
