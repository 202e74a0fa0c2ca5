"""A body over DATA_UPLOAD_MAX_MEMORY_SIZE is a size error: 413 `request_too_large`, on every API path."""
import json

import pytest
from django.test import Client


@pytest.fixture
def small_bodies(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000


@pytest.mark.parametrize("path", ["/v1/media", "/v1/media/upload", "/v1/media/prepare-upload",
                                  "/v1/media/resolve", "/v1/media/ingest"])
def test_a_json_body_over_the_memory_limit_answers_413(acme_service, small_bodies, path):
    body = json.dumps({"source": {"type": "data_url", "data_url": "x" * 5000}, "name": "x", "mime": "image/png"})
    response = acme_service.client.post(path, data=body, content_type="application/json")
    assert response.status_code == 413, response.content
    assert response.json()["error"]["code"] == "request_too_large"


def test_a_signed_post_is_never_parsed_as_a_form_whatever_its_size(small_bodies, db):
    # Signed POSTs are streamed multipart, verified before the file part: Django's form parser never runs.
    response = Client().post("/files/organizations/1/files/1/a.png", data="op=post&x=" + "y" * 5000,
                             content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415, response.content
    assert response.json()["error"]["code"] == "unsupported_content_type"


def test_a_web_page_keeps_djangos_own_answer(small_bodies, db):
    response = Client().post("/admin/login/", data="username=" + "y" * 5000,
                             content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
