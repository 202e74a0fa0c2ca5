"""The detail page and its actions, all through media_app.services: download, signed link,
visibility, retention within the plan, delete with a confirmation."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from media_app.models import MediaFile
from tests.web.conftest import csrf_post


@pytest.fixture
def media_id(alices_media) -> str:
    return alices_media["id"]


def test_the_owner_sees_provenance_size_type_checksum_and_dates(web, alice, media_id):
    media = MediaFile.objects.get(pk=media_id)
    response = web(alice).get(f"/m/{media_id}")
    assert response.status_code == 200
    html = response.content.decode()
    for fact in ("stability/sdxl:1.0", "stability", "a red square at dawn", "image/png", media.sha256,
                 f"{media.width} × {media.height} px", f"{media.bytes} bytes", "Kept until"):
        assert fact in html
    assert 'alt="a red square at dawn"' in html


def test_an_admin_of_the_organization_sees_a_members_file(web, carol, media_id):
    assert web(carol).get(f"/m/{media_id}").status_code == 200


@pytest.mark.parametrize("path", ["", "/download", "/delete"])
def test_another_member_and_another_organization_get_the_not_found_page(web, bob, charlie, media_id, path):
    for actor in (bob, charlie):
        response = web(actor).get(f"/m/{media_id}{path}")
        assert response.status_code == 404
        assert b"Not found" in response.content


def test_an_anonymous_visitor_is_sent_to_sign_in(web_anon, media_id):
    assert web_anon.get(f"/m/{media_id}")["Location"] == f"/sign-in?next=/m/{media_id}"


def test_download_redirects_to_a_signed_url_of_the_bytes(web, alice, media_id):
    response = web(alice).get(f"/m/{media_id}/download")
    assert response.status_code == 302
    assert "/files/" in response["Location"]


def test_a_signed_link_is_made_with_the_chosen_lifetime(web, alice, media_id):
    before = timezone.now()
    response = csrf_post(web(alice), f"/m/{media_id}/link", {"ttl": "300"})
    assert response.status_code == 200
    expires = response.context["signed_expires_at"]
    assert before + timedelta(seconds=299) < expires < timezone.now() + timedelta(seconds=301)
    assert 'id="signed-url"' in response.content.decode()


def test_a_lifetime_not_offered_is_refused(web, alice, media_id):
    assert csrf_post(web(alice), f"/m/{media_id}/link", {"ttl": "999999"}).status_code == 400


def test_the_owner_makes_a_file_public_and_private_again(web, alice, media_id):
    client = web(alice)
    assert csrf_post(client, f"/m/{media_id}/visibility", {"visibility": "public"}).status_code == 302
    assert MediaFile.objects.get(pk=media_id).visibility == "public"
    assert b"Share page" in client.get(f"/m/{media_id}").content
    csrf_post(client, f"/m/{media_id}/visibility", {"visibility": "private"})
    assert MediaFile.objects.get(pk=media_id).visibility == "private"


def test_another_member_cannot_change_visibility(web, bob, media_id):
    assert csrf_post(web(bob), f"/m/{media_id}/visibility", {"visibility": "public"}).status_code == 404
    assert MediaFile.objects.get(pk=media_id).visibility == "private"


def test_retention_changes_within_the_plan(web, alice, media_id):
    day = (timezone.now() + timedelta(days=3)).date()
    response = csrf_post(web(alice), f"/m/{media_id}/retention", {"retain_until": day.isoformat()})
    assert response.status_code == 302
    assert MediaFile.objects.get(pk=media_id).retain_until.date() == day


def test_retention_beyond_the_plan_is_refused_in_words(web, alice, media_id):
    plan = alice.organization.plan
    plan.max_retention_days, plan.allow_keep_forever = 30, False
    plan.save()
    client = web(alice)
    before = MediaFile.objects.get(pk=media_id).retain_until
    day = (timezone.now() + timedelta(days=90)).date()
    csrf_post(client, f"/m/{media_id}/retention", {"retain_until": day.isoformat()})
    assert b"Your plan does not allow keeping this file that long." in client.get(f"/m/{media_id}").content
    csrf_post(client, f"/m/{media_id}/retention", {"forever": "on"})
    assert MediaFile.objects.get(pk=media_id).retain_until == before


def test_an_empty_retention_form_changes_nothing(web, alice, media_id):
    before = MediaFile.objects.get(pk=media_id).retain_until
    client = web(alice)
    csrf_post(client, f"/m/{media_id}/retention", {})
    assert MediaFile.objects.get(pk=media_id).retain_until == before
    assert b"Pick a day to keep the file until" in client.get(f"/m/{media_id}").content


def test_delete_asks_for_a_confirmation_then_deletes(web, alice, media_id):
    client = web(alice)
    confirm = client.get(f"/m/{media_id}/delete")
    assert confirm.status_code == 200
    assert b"Delete this file?" in confirm.content
    assert MediaFile.objects.get(pk=media_id).status == "active"
    response = csrf_post(client, f"/m/{media_id}/delete")
    assert response.status_code == 302
    assert MediaFile.objects.get(pk=media_id).status == "deleted"
    assert client.get(f"/m/{media_id}").status_code == 404


def test_another_organization_cannot_delete(web, charlie, media_id):
    assert csrf_post(web(charlie), f"/m/{media_id}/delete").status_code == 404
    assert MediaFile.objects.get(pk=media_id).status == "active"
