"""Sign-in with a password or SSO, sign-out, CSRF, and the organization switcher."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.principal import SESSION_ORGANIZATION
from tests.web.conftest import csrf_post


@pytest.fixture
def alice_password(alice):
    alice.user.set_password("correct horse battery")
    alice.user.save()
    return "correct horse battery"


def test_a_signed_out_visitor_is_sent_to_sign_in_and_back(web_anon, db):
    response = web_anon.get("/m/abc")
    assert response.status_code == 302
    assert response["Location"] == "/sign-in?next=/m/abc"


def test_the_sign_in_page_has_a_csrf_token_and_no_sso_link_when_sso_is_off(web_anon, db):
    response = web_anon.get("/sign-in")
    assert response.status_code == 200
    assert b"csrfmiddlewaretoken" in response.content
    assert b"Sign in with SSO" not in response.content


def test_the_sign_in_page_offers_sso_when_the_oidc_login_is_enabled(web_anon, db, settings):
    settings.OIDC_LOGIN_ENABLED = True
    response = web_anon.get("/sign-in?next=/upload")
    assert b'href="/oidc/authenticate/?next=/upload"' in response.content


def test_a_person_signs_in_with_their_password_and_lands_where_they_were_going(web_anon, alice_password):
    response = csrf_post(web_anon, "/sign-in", {"username": "alice", "password": alice_password, "next": "/account"})
    assert response.status_code == 302
    assert response["Location"] == "/account"
    assert web_anon.get("/account").status_code == 200


def test_signing_in_starts_in_the_first_team_organization(web_anon, alice_password, globex):
    from accounts.services import membership_add

    membership_add(organization=globex, user=get_user_model().objects.get(username="alice"))
    csrf_post(web_anon, "/sign-in", {"username": "alice", "password": alice_password})
    assert web_anon.session[SESSION_ORGANIZATION] == get_user_model().objects.get(
        username="alice").memberships.get(organization__slug="acme").organization_id


def test_a_wrong_password_is_refused_in_words(web_anon, alice_password):
    response = csrf_post(web_anon, "/sign-in", {"username": "alice", "password": "nope"})
    assert response.status_code == 400
    assert b"did not match" in response.content


def test_sign_in_never_redirects_to_another_site(web_anon, alice_password):
    response = csrf_post(web_anon, "/sign-in", {"username": "alice", "password": alice_password,
                                                "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_a_form_post_without_the_csrf_token_is_refused(web_anon, alice_password):
    response = web_anon.post("/sign-in", {"username": "alice", "password": alice_password})
    assert response.status_code == 403


def test_sign_out_is_a_post_and_ends_the_session(web, alice):
    client = web(alice)
    assert client.get("/sign-out").status_code == 405
    response = csrf_post(client, "/sign-out")
    assert response.status_code == 302
    assert client.get("/")["Location"] == "/sign-in?next=/"


def test_a_person_in_two_organizations_switches_between_them(web, alice, globex):
    from accounts.services import membership_add

    membership_add(organization=globex, user=alice.user)
    client = web(alice)
    assert b"Globex (member)" in client.get("/account").content
    response = csrf_post(client, "/organization", {"organization": globex.pk, "next": "/"})
    assert response.status_code == 302
    assert client.session[SESSION_ORGANIZATION] == globex.pk
    assert b"<h1>Globex</h1>" in client.get("/account").content


def test_nobody_switches_into_an_organization_they_are_not_in(web, bob, globex):
    client = web(bob)
    response = csrf_post(client, "/organization", {"organization": globex.pk})
    assert response.status_code == 404
    assert client.session[SESSION_ORGANIZATION] == bob.organization.pk


def test_the_api_acts_in_the_organization_chosen_in_the_session(web, alice, globex, post_file):
    from accounts.services import membership_add

    membership_add(organization=globex, user=alice.user)
    client = web(alice)
    csrf_post(client, "/organization", {"organization": globex.pk})
    from rest_framework.test import APIClient

    api = APIClient()
    api.cookies = client.cookies
    assert api.get("/api/v1/storage/usage").json()["organization"] == "globex"


def test_a_session_user_without_a_chosen_organization_keeps_their_personal_one(db):
    user = get_user_model().objects.create_user("dave", password="x" * 12)
    client = Client()
    client.force_login(user)
    assert client.get("/api/v1/storage/usage").json()["organization"] == "user-dave"
