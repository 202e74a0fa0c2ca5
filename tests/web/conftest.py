"""A signed-in browser session (Django test client) for each of the cast, working in their organization."""
from __future__ import annotations

import pytest
from django.test import Client

from accounts.principal import SESSION_ORGANIZATION


def session_for(actor) -> Client:  # noqa: ANN001 - tests.conftest.Actor
    client = Client(enforce_csrf_checks=True)
    client.force_login(actor.user)
    session = client.session
    session[SESSION_ORGANIZATION] = actor.organization.pk
    session.save()
    return client


def csrf_post(client: Client, path: str, data: dict | None = None, **extra):  # noqa: ANN003, ANN201
    """A form post as a browser sends it: the CSRF cookie and the token from the page."""
    client.get("/sign-in")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    return client.post(path, {**(data or {}), "csrfmiddlewaretoken": token}, **extra)


@pytest.fixture
def web():
    return session_for


@pytest.fixture
def web_anon() -> Client:
    return Client(enforce_csrf_checks=True)
