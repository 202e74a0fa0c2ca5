"""The gallery: thumbnails of what the person may see, newest first, filters, search, load more."""
from __future__ import annotations

import io
import re
from urllib.parse import urlsplit

import pytest
from PIL import Image
from django.test import RequestFactory

from accounts.principal import SESSION_ORGANIZATION
from web import views


def ids_in(response) -> list[str]:  # noqa: ANN001
    return re.findall(r'href="/m/([^"/]+)"', response.content.decode())


@pytest.fixture
def files(alice, bob, post_file):
    made = {}
    for actor, name, prompt in [(alice, "a.png", "a red fox in snow"), (bob, "b.png", "a blue whale"),
                                (alice, "c.png", "a red barn")]:
        response = post_file(actor, name=name, prompt=prompt, model="stability/sdxl:1.0", provider="stability")
        assert response.status_code == 201, response.content
        made[name] = response.json()["id"]
    return made


def test_the_owner_sees_the_whole_organization_newest_first(web, alice, files):
    response = web(alice).get("/")
    assert response.status_code == 200
    assert ids_in(response) == [files["c.png"], files["b.png"], files["a.png"]]


def test_a_member_sees_only_their_own_files(web, bob, files):
    assert ids_in(web(bob).get("/")) == [files["b.png"]]


def test_another_organization_sees_none_of_them_and_gets_the_empty_state(web, charlie, files):
    response = web(charlie).get("/")
    assert ids_in(response) == []
    assert b"Nothing here yet" in response.content
    assert b"/v1/media/upload" in response.content


def test_an_anonymous_visitor_is_sent_to_sign_in(web_anon, files):
    assert web_anon.get("/")["Location"] == "/sign-in?next=/"


def test_thumbnails_are_signed_256_px_variants_with_the_prompt_as_alt_text(web, alice, files):
    html = web(alice).get("/").content.decode()
    tile = re.search(r'<img src="([^"]+)" alt="([^"]+)"', html)
    assert tile.group(2) == "a red barn"
    thumbnail = web(alice).get(urlsplit(tile.group(1).replace("&amp;", "&"))._replace(scheme="", netloc="").geturl())
    assert (thumbnail.status_code, thumbnail["Content-Type"]) == (200, "image/webp")
    assert Image.open(io.BytesIO(b"".join(thumbnail.streaming_content))).format == "WEBP"  # never upscaled
    assert "w256_h256_cover" in tile.group(1) or "width=256" in tile.group(1)


def test_prompt_search_finds_the_matching_files(web, alice, files):
    assert ids_in(web(alice).get("/?search=red")) == [files["c.png"], files["a.png"]]


def test_an_owner_filters_by_member(web, alice, files):
    assert ids_in(web(alice).get("/?user=bob")) == [files["b.png"]]


def test_a_member_cannot_look_at_another_members_files_with_the_member_filter(web, bob, files):
    assert ids_in(web(bob).get("/?user=alice")) == [files["b.png"]]


def test_filters_by_kind_visibility_model_and_provider(web, alice, files):
    client = web(alice)
    assert len(ids_in(client.get("/?media=image&model=stability/sdxl&provider=stability"))) == 3
    assert ids_in(client.get("/?visibility=public")) == []
    assert b"No file matches" in client.get("/?media=video").content


def test_load_more_pages_with_a_keyset_cursor_as_a_fragment(web, alice, files, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    client = web(alice)
    first = client.get("/")
    assert ids_in(first) == [files["c.png"], files["b.png"]]
    more = re.search(r'href="/\?([^"]+)" data-load-more', first.content.decode()).group(1).replace("&amp;", "&")
    second = client.get(f"/?{more}", HTTP_X_FRAGMENT="1")
    assert ids_in(second) == [files["a.png"]]
    assert b"<html" not in second.content
    assert b"data-load-more" not in second.content


def test_a_page_of_fifty_files_takes_at_most_three_queries(alice, post_file, django_assert_max_num_queries):
    for _ in range(50):
        assert post_file(alice, prompt="many").status_code == 201
    request = RequestFactory().get("/")
    request.user, request.session = alice.user, {SESSION_ORGANIZATION: alice.organization.pk}
    request._messages = []
    # The view's own queries: the membership (with organization and plan), the page, its rendered thumbnails.
    with django_assert_max_num_queries(3):
        response = views.gallery(request)
    assert response.status_code == 200
    assert len(ids_in(response)) == 50
