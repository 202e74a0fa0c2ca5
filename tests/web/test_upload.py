"""The upload page and the API call it makes: POST /v1/media/upload with the session and the CSRF header."""
from __future__ import annotations

from django.conf import settings

from media_app.models import MediaFile
from tests.factories import unique_png, upload


def session_upload(client, *, csrf: bool = True, name: str = "drop.png", data: bytes | None = None):  # noqa: ANN001, ANN201
    client.get("/upload")
    headers = {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value} if csrf else {}
    return client.post("/v1/media/upload", {"file": upload(name, unique_png() if data is None else data), "prompt": "dropped"},
                       **headers)


def test_the_upload_page_names_the_endpoint_the_limit_and_carries_the_csrf_token(web, bob):
    response = web(bob).get("/upload")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-endpoint="/v1/media/upload"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert f'data-max-bytes="{min(bob.organization.plan.max_file_bytes, settings.MEDIA_MAX_BYTES)}"' in html


def test_an_anonymous_visitor_is_sent_to_sign_in(web_anon, db):
    assert web_anon.get("/upload")["Location"] == "/sign-in?next=/upload"


def test_a_session_upload_with_the_csrf_header_lands_in_the_chosen_organization(web, bob):
    response = session_upload(web(bob))
    assert response.status_code == 201, response.content
    media = MediaFile.objects.get(pk=response.json()["id"])
    assert (media.organization, media.owner, media.prompt) == (bob.organization, bob.user, "dropped")


def test_a_session_upload_without_the_csrf_header_is_refused(web, bob):
    response = session_upload(web(bob), csrf=False)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_another_organization_uploads_into_its_own(web, charlie):
    response = session_upload(web(charlie))
    assert MediaFile.objects.get(pk=response.json()["id"]).organization == charlie.organization


def test_a_refusal_carries_the_code_the_page_turns_into_a_sentence(web, alice):
    response = session_upload(web(alice), name="empty.png", data=b"")
    assert response.status_code == 400
    code = response.json()["error"]["code"]
    assert code == "empty_file"
    from django.contrib.staticfiles import finders

    assert f"{code}:" in open(finders.find("web/app.js")).read()
