"""Every JSON endpoint parses with config.parsers.JSONParser: bounded in nesting and in size."""
import json

import pytest

from media_app.models import MediaFile
from tests.media_app.conftest import data_url, error_of


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def post_raw(actor, path: str, body: str | bytes):
    return actor.client.generic("POST", path, body, content_type="application/json")


@pytest.mark.parametrize("path", ["/v1/media", "/v1/media/resolve", "/v1/media/prepare-upload"])
def test_deeply_nested_json_is_a_400_not_a_500(alice, path):
    error = error_of(post_raw(alice, path, '{"ids": ' + nested(100_000) + "}"), 400)
    assert error["code"] == "json_too_deep"


def test_json_nested_past_the_limit_is_refused_even_when_the_decoder_copes(alice):
    error = error_of(post_raw(alice, "/v1/media/resolve", '{"ids": ' + nested(40) + "}"), 400)
    assert error["code"] == "json_too_deep"


def test_deeply_nested_json_in_a_patch_is_a_400(alice, alices_media):
    response = alice.client.generic("PATCH", f"/v1/media/{alices_media['id']}", '{"generation": ' + nested(50_000) + "}",
                                    content_type="application/json")
    assert error_of(response, 400)["code"] == "json_too_deep"


def test_a_json_body_over_the_upload_memory_limit_is_413(alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"ids": ["med_x"], "padding": "x" * 2000})
    assert error_of(post_raw(alice, "/v1/media/resolve", body), 413)["code"] == "request_too_large"


def deep_object(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("generation", [deep_object(9), {"blob": "x" * (64 * 1024)}])
def test_generation_json_too_deep_or_too_large_is_refused_on_create(alice, generation):
    from tests.factories import unique_png

    body = {"source": {"type": "data_url", "data_url": data_url(unique_png())}, "generation": generation}
    error = error_of(alice.client.post("/v1/media", body, format="json"), 400)
    assert (error["code"], error["param"]) == ("invalid_generation", "generation")
    assert not MediaFile.objects.exists()


def test_generation_json_nine_levels_deep_is_refused_on_patch_and_eight_stored(alice, alices_media):
    response = alice.client.patch(f"/v1/media/{alices_media['id']}", {"generation": deep_object(9)}, format="json")
    error = error_of(response, 400)
    assert (error["code"], error["param"]) == ("invalid_generation", "generation")
    response = alice.client.patch(f"/v1/media/{alices_media['id']}", {"generation": deep_object(8)}, format="json")
    assert response.status_code == 200 and response.json()["generation"] == deep_object(8)


def test_generation_json_sent_as_multipart_text_is_bounded_too(alice, post_file):
    error = error_of(post_file(alice, generation='{"a": ' + nested(100_000) + "}"), 400)
    assert (error["code"], error["param"]) == ("invalid_generation", "generation")
