"""Jan's media-api clients (janhq/jan-server, services/media-api) get the answers Jan gives."""
import pytest

from media_app.models import MediaFile
from tests.media_app.test_media_upload import put_status, put_to
from tests.factories import unique_png
from tests.media_app.conftest import data_url, error_of
from tests.media_app.test_media_remote import from_url, origin, loopback_allowed  # noqa: F401 - fixtures


# -- POST /v1/media/prepare-upload ------------------------------------------------------------------
def test_prepare_upload_takes_jans_mime_type_and_answers_200_with_jans_fields(acme_service, bob, settings):
    response = acme_service.client.post("/v1/media/prepare-upload", {"mime_type": "image/png", "user_id": "bob"},
                                        format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["upload_url"] == body["presigned_url"] and body["mime_type"] == "image/png"
    assert body["expires_in"] == int(settings.MEDIA_UPLOAD_TTL) and isinstance(body["expires_in"], int)
    assert MediaFile.objects.get(pk=body["id"]).owner == bob.user


def test_prepare_upload_with_seeds_content_type_answers_jans_fields_too(alice):
    body = alice.client.post("/v1/media/prepare-upload", {"content_type": "image/jpeg"}, format="json").json()
    assert (body["mime_type"], body["upload_url"]) == ("image/jpeg", body["presigned_url"])


def test_prepare_upload_without_either_type_is_a_400_naming_content_type(alice):
    error = error_of(alice.client.post("/v1/media/prepare-upload", {"user_id": "alice"}, format="json"), 400)
    assert (error["code"], error["param"]) == ("required", "content_type") and "mime_type" in error["message"]


def test_prepare_upload_with_two_different_types_is_a_400(alice):
    body = {"mime_type": "image/png", "content_type": "image/jpeg"}
    error = error_of(alice.client.post("/v1/media/prepare-upload", body, format="json"), 400)
    assert (error["code"], error["param"]) == ("conflicting_fields", "mime_type")


def test_a_refused_mime_type_names_the_field_jan_sent(alice):
    body = {"mime_type": "application/x-msdownload", "category": "profile_image"}
    error = error_of(alice.client.post("/v1/media/prepare-upload", body, format="json"), 415)
    assert (error["code"], error["param"]) == ("unsupported_media_type", "mime_type")


def test_a_jan_prepared_upload_put_then_presigned_completes(alice, client):
    data = unique_png()
    prepared = alice.client.post("/v1/media/prepare-upload", {"mime_type": "image/png"}, format="json").json()
    put = put_to(client, prepared["upload_url"], data, "image/png")  # the app's URL, or S3's
    assert put.status_code == put_status(prepared["upload_url"]), put.content
    presigned = alice.client.get(f"/v1/media/{prepared['id']}/presign")
    assert presigned.status_code == 200 and presigned.json()["expires_in"] > 0


# -- POST /v1/media ---------------------------------------------------------------------------------
def test_a_new_data_url_file_answers_200_not_deduped_and_the_same_again_deduped(alice):
    body = {"source": {"type": "data_url", "data_url": data_url(unique_png())}}
    first = alice.client.post("/v1/media", body, format="json")
    again = alice.client.post("/v1/media", body, format="json")
    assert (first.status_code, first.json()["deduped"]) == (200, False)
    assert (again.status_code, again.json()["deduped"], again.json()["id"]) == (200, True, first.json()["id"])


def test_jans_ingest_answer_fields_are_all_there(alice):
    data = unique_png()
    response = alice.client.post("/v1/media", {"source": {"type": "data_url", "data_url": data_url(data)}},
                                 format="json")
    body = response.json()
    assert response.status_code == 200 and {"id", "mime", "bytes", "deduped", "presigned_url"} <= set(body)
    assert (body["mime"], body["bytes"]) == ("image/png", len(data))


def test_jans_filename_is_the_original_name_of_a_data_url(acme_service, bob):
    body = {"source": {"type": "data_url", "data_url": data_url(unique_png())}, "filename": "holiday.png",
            "user_id": "bob"}
    response = acme_service.client.post("/v1/media", body, format="json")
    assert response.status_code == 200 and response.json()["original_name"] == "holiday.png"


def test_jans_filename_is_the_original_name_of_a_remote_url(alice, origin, loopback_allowed):  # noqa: F811
    response = from_url(alice, f"{origin}/cat.png", filename="kitten.png")
    assert response.status_code == 200, response.content
    assert response.json()["original_name"] == "kitten.png"


@pytest.mark.parametrize("kind", ["datauri", "DataURL", "dataurl"])
def test_jans_other_spellings_of_data_url_are_taken(alice, kind):
    body = {"source": {"type": kind, "data_url": data_url(unique_png())}}
    response = alice.client.post("/v1/media", body, format="json")
    assert response.status_code == 200 and response.json()["source"] == "data_url"


@pytest.mark.parametrize("kind", ["remote", "remoteuri", "REMOTE_URL"])
def test_jans_other_spellings_of_remote_url_are_taken(alice, origin, loopback_allowed, kind):  # noqa: F811
    response = alice.client.post("/v1/media", {"source": {"type": kind, "url": f"{origin}/cat.png"}}, format="json")
    assert response.status_code == 200 and response.json()["source"] == "remote_url"
