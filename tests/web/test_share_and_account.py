"""The public share page and the account pages (usage against the quota, API keys)."""
from __future__ import annotations

import re

import pytest

from accounts.models import ApiKey
from accounts.services import api_key_lookup
from media_app.models import MediaFile
from tests.web.conftest import csrf_post


@pytest.fixture
def public_id(alices_media) -> str:
    MediaFile.objects.filter(pk=alices_media["id"]).update(visibility="public")
    return alices_media["id"]


# -- share page ----------------------------------------------------------------------------
def test_a_public_file_has_a_share_page_with_open_graph_and_twitter_tags_for_anyone(web_anon, public_id):
    response = web_anon.get(f"/p/{public_id}")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<meta property="og:title" content="a red square at dawn">' in html
    assert f'<meta property="og:image" content="http://testserver/v1/media/{public_id}/content">' in html
    assert '<meta name="twitter:card" content="summary_large_image">' in html
    assert 'alt="a red square at dawn"' in html
    assert web_anon.get(f"/v1/media/{public_id}/content").status_code == 200


def test_signed_in_people_of_any_organization_see_the_same_share_page(web, charlie, bob, public_id):
    assert web(charlie).get(f"/p/{public_id}").status_code == 200
    assert web(bob).get(f"/p/{public_id}").status_code == 200


def test_a_private_file_and_an_unknown_id_answer_the_same_not_found_page(web_anon, web, alice, alices_media):
    private = web_anon.get(f"/p/{alices_media['id']}")
    unknown = web_anon.get("/p/med_nope")
    assert (private.status_code, unknown.status_code) == (404, 404)
    assert private.content == unknown.content
    assert web(alice).get(f"/p/{alices_media['id']}").status_code == 404  # even for its owner: it is not shared


# -- usage ---------------------------------------------------------------------------------
def test_the_account_page_shows_usage_against_the_quota_by_category(web, alice, alices_media):
    response = web(alice).get("/account")
    assert response.status_code == 200
    usage = response.context["usage"]
    assert usage["file_count"] == 1
    general = next(row for row in usage["categories"] if row["name"] == "general")
    assert (general["files"], general["bytes"]) == (1, alices_media["bytes"])
    assert b'role="progressbar"' in response.content


def test_a_member_sees_the_organizations_usage_and_another_organization_its_own(web, bob, charlie, alices_media):
    assert web(bob).get("/account").context["usage"]["file_count"] == 1
    assert web(charlie).get("/account").context["usage"]["file_count"] == 0


def test_an_anonymous_visitor_is_sent_to_sign_in(web_anon, db):
    assert web_anon.get("/account")["Location"] == "/sign-in?next=/account"


# -- keys ----------------------------------------------------------------------------------
def test_a_new_key_is_shown_once_and_works(web, bob):
    client = web(bob)
    response = csrf_post(client, "/account/keys", {"name": "laptop"})
    assert response.status_code == 200
    secret = re.search(r'id="new-secret" readonly value="([^"]+)"', response.content.decode()).group(1)
    key = api_key_lookup(secret)
    assert (key.user, key.organization, key.name) == (bob.user, bob.organization, "laptop")
    assert secret.encode() not in client.get("/account").content


def test_a_person_sees_only_their_own_keys(web, alice, bob):
    html = web(bob).get("/account").content.decode()
    bob_key = ApiKey.objects.get(user=bob.user)
    alice_key = ApiKey.objects.get(user=alice.user)
    assert bob_key.prefix in html and alice_key.prefix not in html


def test_a_person_revokes_their_key(web, bob):
    key = ApiKey.objects.get(user=bob.user)
    response = csrf_post(web(bob), f"/account/keys/{key.pk}/revoke")
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert bob.client.get("/v1/media").json()["error"]["code"] == "revoked_api_key"


def test_nobody_revokes_another_persons_key(web, bob, alice, charlie):
    key = ApiKey.objects.get(user=alice.user)
    assert csrf_post(web(bob), f"/account/keys/{key.pk}/revoke").status_code == 404
    assert csrf_post(web(charlie), f"/account/keys/{key.pk}/revoke").status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_creating_a_key_needs_the_csrf_token(web, bob):
    assert web(bob).post("/account/keys", {"name": "x"}).status_code == 403
