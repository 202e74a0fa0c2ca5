"""Reading media: get, presign, content, resolve, list, patch, delete; and who may."""
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from media_app.models import MediaFile
from quotas.models import Quota
from tests.factories import png_bytes, unique_png
from tests.media_app.conftest import body_of, error_of

ENDPOINTS = [
    ("get", "/v1/media/{id}"), ("get", "/v1/media/{id}/presign"), ("get", "/v1/media/{id}/content"),
    ("patch", "/v1/media/{id}"), ("delete", "/v1/media/{id}"), ("put", "/v1/media/{id}"),
]


# -- who may ------------------------------------------------------------------------------
def test_the_owner_reads_everything(alice, alices_media):
    body = alice.client.get(f"/v1/media/{alices_media['id']}").json()
    assert body["id"] == alices_media["id"] and body["presigned_url"] and body["expires_at"]
    assert body["user"] == "alice"


@pytest.mark.parametrize("who", ["alice", "acme_service"])
def test_the_detail_of_a_file_is_one_query_once_the_key_is_known(request, who, alice, alices_media, monkeypatch,
                                                                   django_assert_num_queries):
    monkeypatch.setattr("accounts.keycache._now", lambda: 1000.0)  # no time passes: the key stays cached
    actor = request.getfixturevalue(who)
    actor.client.get(f"/v1/media/{alices_media['id']}")  # authenticates the key (and records its use)
    with django_assert_num_queries(1):
        body = actor.client.get(f"/v1/media/{alices_media['id']}").json()
    assert body["id"] == alices_media["id"] and body["user"] == "alice" and body["user_id"] == alice.user.pk


@pytest.mark.parametrize("method,path", ENDPOINTS)
@pytest.mark.parametrize("who", ["bob", "charlie"])
def test_another_member_or_organization_gets_404_everywhere(request, alices_media, method, path, who):
    actor = request.getfixturevalue(who)
    response = getattr(actor.client, method)(path.format(id=alices_media["id"]), {}, format="json")
    assert error_of(response, 404) == {"message": "No such media file.", "type": "not_found_error",
                                       "code": "media_not_found"}
    assert MediaFile.objects.get(pk=alices_media["id"]).status == "active"


@pytest.mark.parametrize("method,path", [e for e in ENDPOINTS if "content" not in e[1]])
def test_no_credentials_is_401(anon, alices_media, method, path):
    response = getattr(anon, method)(path.format(id=alices_media["id"]), {}, format="json")
    assert error_of(response, 401)["code"] == "not_authenticated"


def test_admins_and_service_keys_read_members_files(carol, acme_service, alices_media):
    for actor in (carol, acme_service):
        assert actor.client.get(f"/v1/media/{alices_media['id']}").status_code == 200


def test_a_private_files_content_is_404_without_credentials(anon, alices_media):
    assert error_of(anon.get(f"/v1/media/{alices_media['id']}/content"), 404)["code"] == "media_not_found"


def test_a_public_files_content_needs_no_credentials(anon, alice, post_file, settings):
    settings.MEDIA_PROXY_DOWNLOAD = True
    data = unique_png()
    media = post_file(alice, data, visibility="public").json()
    response = anon.get(f"/v1/media/{media['id']}/content")
    assert response.status_code == 200 and body_of(response) == data
    assert response["Cache-Control"].startswith("public")


def test_unknown_ids_are_404(alice, db):
    assert alice.client.get("/v1/media/med_01hqr8v9k2x3f4g5h6j7k8m9n0").status_code == 404
    assert alice.client.get("/v1/media/not-an-id").status_code == 404


# -- presign and content ------------------------------------------------------------------
def test_presign_caps_the_ttl(alice, alices_media, settings):
    settings.MEDIA_S3_PRESIGN_TTL = 3600
    ok = alice.client.get(f"/v1/media/{alices_media['id']}/presign?ttl=60").json()
    assert ok["expires_in"] == 60 and ok["url"]
    assert alice.client.get(f"/v1/media/{alices_media['id']}/presign").json()["expires_in"] == 3600
    for bad in ("0", "-1", "3601", "x"):
        assert error_of(alice.client.get(f"/v1/media/{alices_media['id']}/presign?ttl={bad}"), 400)["param"] == "ttl"


def fetch(client, response) -> bytes:
    if response.status_code == 302:
        location = response["Location"]
        if location.startswith("http://testserver"):
            return body_of(client.get(location.removeprefix("http://testserver")))
        return requests.get(location, timeout=10).content
    return body_of(response)


def test_content_streams_with_range_etag_and_nosniff(alice, post_file, settings):
    settings.MEDIA_PROXY_DOWNLOAD = True
    data = png_bytes(20, 20, noise=5000)
    media = post_file(alice, data).json()
    url = f"/v1/media/{media['id']}/content"
    full = alice.client.get(url)
    assert full.status_code == 200 and body_of(full) == data
    assert full["ETag"] == f'"{media["sha256"]}"' and full["X-Content-Type-Options"] == "nosniff"
    assert full["Content-Type"] == "image/png" and full["Content-Length"] == str(len(data))
    part = alice.client.get(url, HTTP_RANGE="bytes=10-19")
    assert part.status_code == 206 and body_of(part) == data[10:20]
    assert part["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert alice.client.get(url, HTTP_IF_NONE_MATCH=full["ETag"]).status_code == 304
    assert alice.client.get(url, HTTP_RANGE=f"bytes={len(data)}-").status_code == 416


@pytest.mark.parametrize(("backend", "proxied", "status"), [
    ("local", False, 200),   # the local backend has no URL of its own to send the client to
    ("s3", False, 302),      # S3 serves a presigned URL itself
    ("s3", True, 200),
], indirect=["backend"])
def test_content_redirects_to_a_signed_url_unless_proxied(backend, proxied, status, alice, alices_media, settings,
                                                          client):
    settings.MEDIA_PROXY_DOWNLOAD = proxied
    response = alice.client.get(f"/v1/media/{alices_media['id']}/content")
    assert response.status_code == status
    if status == 302:
        assert response["Location"].startswith(settings.MEDIA_S3_ENDPOINT) and "Signature=" in response["Location"]
    assert len(fetch(client, response)) == alices_media["bytes"]


def test_svg_is_served_as_a_sandboxed_attachment(alice, post_file, settings):
    settings.MEDIA_PROXY_DOWNLOAD = True
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>'
    media = post_file(alice, svg, name="x.svg").json()
    response = alice.client.get(f"/v1/media/{media['id']}/content")
    assert response["Content-Type"] == "image/svg+xml"
    assert response["Content-Disposition"].startswith("attachment")
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"


# -- resolve ------------------------------------------------------------------------------
def test_resolve_answers_in_order_with_not_found(alice, charlie, post_file, django_assert_num_queries):
    mine = [post_file(alice).json()["id"] for _ in range(3)]
    theirs = post_file(charlie).json()["id"]
    ids = [mine[2], "med_01hqr8v9k2x3f4g5h6j7k8m9n0", mine[0], theirs, mine[1]]
    body = alice.client.post("/v1/media/resolve", {"ids": ids}, format="json").json()
    assert [m["id"] for m in body["media"]] == [mine[2], mine[0], mine[1]]
    assert body["not_found"] == ["med_01hqr8v9k2x3f4g5h6j7k8m9n0", theirs]
    assert all(m["presigned_url"] and m["expires_at"] for m in body["media"])


def test_resolve_is_one_query_for_a_hundred_ids(alice, post_file, django_assert_num_queries):
    from accounts.principal import Principal
    from media_app.selectors import media_resolve

    ids = [post_file(alice).json()["id"] for _ in range(5)] + [f"med_{i:026d}" for i in range(95)]
    principal = Principal(user=alice.user, organization=alice.organization, role="owner", is_service=False)
    with django_assert_num_queries(1):
        found, missing = media_resolve(principal, ids)
    assert len(found) == 5 and len(missing) == 95


@pytest.mark.parametrize("payload", [{"ids": []}, {"ids": [f"med_{i}" for i in range(101)]}, {"ids": [1, 2]},
                                     {"ids": "med_x"}, {}])
def test_bad_resolve_input_is_400(alice, payload):
    assert error_of(alice.client.post("/v1/media/resolve", payload, format="json"), 400)["param"] == "ids"


def test_resolve_needs_credentials(anon, db):
    assert anon.post("/v1/media/resolve", {"ids": ["x"]}, format="json").status_code == 401


# -- listing ------------------------------------------------------------------------------
@pytest.fixture
def gallery(alice, bob, post_file):
    rows = [
        dict(model="stability/sdxl:1.0", provider="stability", prompt="A beautiful sunset over the ocean"),
        dict(model="stability/sdxl:1.1", provider="stability", prompt="a cat sleeping in the sun"),
        dict(model="openai/dall-e-3", provider="openai", prompt="sunset over mountains", visibility="public"),
        dict(model="openai/dall-e-3", provider="openai", prompt="a dog on a skateboard"),
    ]
    ids = [post_file(alice, **fields).json()["id"] for fields in rows]
    post_file(bob, prompt="bob's sunset")
    return ids


def listed(actor, query=""):
    response = actor.client.get(f"/v1/media?{query}")
    assert response.status_code == 200, response.content
    return response.json()


def test_list_shape_and_newest_first(alice, gallery):
    body = listed(alice)
    assert body["object"] == "list" and body["has_more"] is False and body["next_cursor"] is None
    assert [m["id"] for m in body["data"]] == gallery[::-1]
    assert [m["id"] for m in listed(alice, "sort=oldest")["data"]] == gallery


@pytest.mark.parametrize("query,expected", [
    ("model=stability/sdxl", [0, 1]), ("model=stability/sdxl:1.1", [1]), ("provider=openai", [2, 3]),
    ("visibility=public", [2]), ("media=image", [0, 1, 2, 3]), ("media=video", []),
    ("search=sunset", [0, 2]), ("category=general", [0, 1, 2, 3]), ("user=me&provider=stability", [0, 1]),
])
def test_list_filters(alice, gallery, query, expected):
    assert sorted(m["id"] for m in listed(alice, query)["data"]) == sorted(gallery[i] for i in expected)


def test_the_stored_prompt_vector_follows_a_changed_prompt_on_postgres(requires_postgres, alice, alices_media):
    from django.db import connection

    response = alice.client.patch(f"/v1/media/{alices_media['id']}", {"prompt": "a green dragon"}, format="json")
    assert response.status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT prompt_tsv::text FROM media_app_mediafile WHERE id = %s", [alices_media["id"]])
        assert cursor.fetchone()[0] == "'dragon':3 'green':2"
    assert [m["id"] for m in listed(alice, "search=dragon")["data"]] == [alices_media["id"]]
    assert listed(alice, "search=square")["data"] == []


def test_a_page_reads_only_the_columns_its_answer_uses(alice, gallery):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        body = listed(alice, "limit=3")
    page_sql = next(q["sql"] for q in captured.captured_queries if 'FROM "media_app_mediafile"' in q["sql"])
    assert '"auth_user"."password"' not in page_sql and '"auth_user"."email"' not in page_sql
    assert '"media_app_mediafile"."storage_error"' not in page_sql
    assert [m["user"] for m in body["data"]] == ["alice"] * 3


def test_cursor_pagination_walks_every_row_once(alice, gallery):
    seen, cursor = [], None
    while True:
        body = listed(alice, "limit=3" + (f"&cursor={cursor}" if cursor else ""))
        seen += [m["id"] for m in body["data"]]
        if not body["has_more"]:
            break
        cursor = body["next_cursor"]
    assert seen == gallery[::-1]


def test_members_cannot_list_others_and_admins_can(alice, bob, carol, acme_service, gallery):
    assert error_of(bob.client.get("/v1/media?user=alice"), 403)["param"] == "user"
    assert len(listed(carol, "user=alice")["data"]) == 4
    assert len(listed(acme_service, "user=alice")["data"]) == 4
    assert len(listed(carol, "user=*")["data"]) == 5


def test_other_organizations_list_nothing_of_ours(charlie, gallery):
    assert listed(charlie)["data"] == []
    assert charlie.client.get("/v1/media?user=alice").status_code == 404  # no such member in globex


def test_listing_an_unknown_user_names_the_user_parameter(carol):
    error = error_of(carol.client.get("/v1/media?user=nobody"), 404)
    assert (error["code"], error["param"]) == ("user_not_found", "user")


@pytest.mark.parametrize("query,param", [
    ("cursor=!!!", "cursor"), ("cursor=bm9wZQ", "cursor"), ("limit=0", "limit"), ("limit=1000", "limit"),
    ("sort=random", "sort"), ("media=hologram", "media"),
])
def test_bad_list_queries_are_400_with_param(alice, query, param):
    assert error_of(alice.client.get(f"/v1/media?{query}"), 400)["param"] == param


def test_list_queries_do_not_grow_with_the_page(alice, post_file, django_assert_max_num_queries):
    for _ in range(3):
        post_file(alice)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        listed(alice, "limit=3")
    for _ in range(12):
        post_file(alice)
    with CaptureQueriesContext(connection) as large:
        listed(alice, "limit=15")
    assert len(large) == len(small)


def test_list_needs_credentials(anon, db):
    assert anon.get("/v1/media").status_code == 401


# -- patch and delete ---------------------------------------------------------------------
def test_patch_changes_visibility_and_provenance(alice, alices_media):
    body = alice.client.patch(f"/v1/media/{alices_media['id']}", {"visibility": "public", "prompt": "new",
                                                                  "generation": {"steps": 30}}, format="json").json()
    assert (body["visibility"], body["prompt"], body["generation"]) == ("public", "new", {"steps": 30})


def test_patch_extends_retention_within_the_plan(alice, alices_media):
    media = MediaFile.objects.get(pk=alices_media["id"])
    later = media.created_at + timedelta(days=200)
    ok = alice.client.patch(f"/v1/media/{media.pk}", {"retain_until": later.isoformat()}, format="json")
    assert ok.status_code == 200
    forever = alice.client.patch(f"/v1/media/{media.pk}", {"retain_until": None}, format="json")
    assert forever.status_code == 200 and forever.json()["retain_until"] is None  # the organization plan allows it


def test_patch_refuses_retention_past_the_plan(db, post_file):
    from tests.conftest import _actor
    from accounts.services import organization_create

    solo = _actor("solo", organization_create(name="Solo", plan_slug="individual"), "owner")
    media = post_file(solo).json()
    too_late = timezone.now() + timedelta(days=400)
    for value in (too_late.isoformat(), None, (timezone.now() - timedelta(days=1)).isoformat()):
        response = solo.client.patch(f"/v1/media/{media['id']}", {"retain_until": value}, format="json")
        assert error_of(response, 400)["param"] == "retain_until"


def test_bad_patch_values_are_400(alice, alices_media):
    response = alice.client.patch(f"/v1/media/{alices_media['id']}", {"visibility": "secret"}, format="json")
    assert error_of(response, 400)["param"] == "visibility"


def test_delete_hides_at_once_and_releases_the_quota(alice, alices_media):
    assert alice.client.delete(f"/v1/media/{alices_media['id']}").json()["deleted"] is True
    assert alice.client.get(f"/v1/media/{alices_media['id']}").status_code == 404
    assert listed(alice)["data"] == []
    assert alice.client.post("/v1/media/resolve", {"ids": [alices_media["id"]]},
                             format="json").json()["not_found"] == [alices_media["id"]]
    quota = Quota.objects.get(organization=alice.organization)
    assert (quota.used_bytes, quota.file_count) == (0, 0)
    assert MediaFile.objects.get(pk=alices_media["id"]).status == "deleted"
