"""Typos are refused, as Stripe does: an unknown field or query parameter is a 400 naming it and the nearest known one.

`config.api.validated` checks every name against the serializer's declared fields (and its
`accepted_aliases`), on every surface: JSON bodies, multipart fields before and after the
file, and query strings. The seeds' and Jan's documented fields stay accepted.
"""
import pytest

from media_app.models import MediaFile
from tests.factories import pdf_bytes, unique_png
from tests.storage_app.test_streaming_upload import error_of, nothing_left, post

MEDIA = "/v1/media"
STORAGE = "/api/v1/storage"


def unknown(response, param: str, nearest: str | None) -> str:
    error = error_of(response, 400)
    assert error["code"] == "unknown_parameter"
    assert error["param"] == param
    if nearest:
        assert f"Did you mean {nearest}?" in error["message"]
    return error["message"]


# -- multipart ---------------------------------------------------------------------------------
def test_a_misspelt_prompt_before_the_file_is_refused(alice, store_keys):
    response = post(alice, f"{MEDIA}/upload", ("promt", "a cat"), ("file", "cat.png", unique_png()))
    unknown(response, "promt", "prompt")
    nothing_left(alice.organization, store_keys)


def test_a_misspelt_category_after_the_file_is_refused_and_leaves_nothing(alice, store_keys):
    response = post(alice, f"{STORAGE}/upload", ("file", "scores.csv", b"a,b\n1,2\n"), ("categroy", "data_source"))
    unknown(response, "categroy", "category")
    nothing_left(alice.organization, store_keys)


def test_a_misspelt_field_of_a_media_upload_after_the_file_is_refused(alice, store_keys):
    response = post(alice, f"{MEDIA}/upload", ("file", "cat.png", unique_png()), ("modle", "sdxl"))
    unknown(response, "modle", "model")
    nothing_left(alice.organization, store_keys)


def test_the_seeds_multipart_fields_are_accepted(acme_service, bob):
    response = post(acme_service, f"{MEDIA}/upload", ("file", "cat.png", unique_png()), ("user_id", bob.user.username))
    assert response.status_code == 201, response.content
    response = post(acme_service, f"{STORAGE}/upload", ("category", "data_source"), ("file", "a.pdf", pdf_bytes()))
    assert response.status_code == 201, response.content


def test_an_unknown_field_of_a_compute_image_is_refused_and_leaves_no_object(acme_service, store_keys):
    response = post(acme_service, f"{STORAGE}/images/gen/a.png", ("file", "a.png", unique_png()), ("fiel", "x"))
    unknown(response, "fiel", "file")
    assert store_keys("compute/") == []


# -- JSON ----------------------------------------------------------------------------------------
def test_a_misspelt_json_field_is_refused(alice):
    response = alice.client.post(f"{MEDIA}/prepare-upload", {"content_type": "image/png", "byte": 10}, format="json")
    unknown(response, "byte", "bytes")
    assert not MediaFile.objects.exists()


def test_a_misspelt_field_of_a_nested_source_names_its_path(alice):
    body = {"source": {"type": "remote_url", "ur": "https://example.com/a.png"}}
    unknown(alice.client.post(MEDIA, body, format="json"), "source.ur", "source.url")


def test_a_name_far_from_every_field_lists_the_known_ones(alice):
    message = unknown(alice.client.post(f"{MEDIA}/resolve", {"ids": ["x"], "zzzz": 1}, format="json"), "zzzz", None)
    assert "ids" in message


@pytest.mark.parametrize("url, body", [
    (f"{MEDIA}/prepare-upload", {"content_type": "image/png", "mime_type": "image/png", "filename": "a.png",
                                 "user_id": "alice", "bytes": 10}),
    (f"{MEDIA}/upload", {"name": "a.png", "mime": "image/png"}),  # seed 000
    (f"{MEDIA}/resolve", {"payload": {"messages": []}}),
])
def test_jans_and_the_seeds_json_fields_are_accepted(alice, url, body):
    response = alice.client.post(url, body, format="json")
    assert response.status_code in (200, 201), response.content


def test_jans_filename_on_a_data_url_store_is_accepted(alice):
    import base64

    data_url = "data:image/png;base64," + base64.b64encode(unique_png()).decode()
    body = {"source": {"type": "data_url", "data_url": data_url}, "filename": "a.png", "user_id": "alice"}
    assert alice.client.post(MEDIA, body, format="json").status_code == 200  # Jan answers 200 for a new file too


def test_a_field_declared_later_is_accepted_by_declaring_it(alice, monkeypatch):
    from rest_framework import serializers

    from api.media import serializers as s

    monkeypatch.setitem(s.ResolveInput._declared_fields, "as_of", serializers.CharField(required=False))
    response = alice.client.post(f"{MEDIA}/resolve", {"ids": ["med_x"], "as_of": "now"}, format="json")
    assert response.status_code == 200


# -- query strings ---------------------------------------------------------------------------------
@pytest.mark.parametrize("url, param, nearest", [
    (f"{MEDIA}?limt=5", "limt", "limit"),
    (f"{STORAGE}/files?page_siz=5", "page_siz", "page_size"),
    (f"{STORAGE}/usage?org=acme", "org", None),
    (f"{STORAGE}/quota?verbose=1", "verbose", None),
])
def test_an_unknown_query_parameter_is_refused(alice, url, param, nearest):
    unknown(alice.client.get(url), param, nearest)


def test_an_unknown_query_parameter_of_the_compute_images_is_refused(acme_service):
    unknown(acme_service.client.get(f"{STORAGE}/images?prefx=gen/"), "prefx", "prefix")


def test_the_documented_query_parameters_are_accepted(alice, acme_service):
    assert alice.client.get(f"{MEDIA}?user=me&media=image&model=m&search=cat&limit=20&sort=oldest").status_code == 200
    assert alice.client.get(f"{STORAGE}/files?page=1&page_size=5&category=general&user=me").status_code == 200
    assert acme_service.client.get(f"{STORAGE}/images?prefix=generations/&limit=100").status_code == 200
