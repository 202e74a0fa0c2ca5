"""Error messages a newcomer can act on: what the route accepts, which limit, which file, which field."""
from storage_app.categories import DATA_SOURCE_MAX_BYTES
from tests.factories import unique_png
from tests.storage_app.test_streaming_upload import error_of, post


def test_a_form_body_sent_to_a_json_route_names_the_types_it_accepts(alice):
    # `curl -d '{...}'` without -H 'Content-Type: application/json' sends a form.
    response = alice.client.post("/v1/media/prepare-upload", data='{"content_type": "image/png"}',
                                 content_type="application/x-www-form-urlencoded")
    error = error_of(response, 415)
    assert error["code"] == "unsupported_media_type"
    assert "application/x-www-form-urlencoded" in error["message"]
    assert "accepts application/json" in error["message"]


def test_an_oversize_upload_quotes_the_limit_and_the_file_not_the_body(alice, settings):
    settings.MEDIA_MAX_BYTES = 1024 * 1024
    big = unique_png() + b"\0" * (3 * 1024 * 1024)
    response = post(alice, "/v1/media/upload", ("prompt", "x" * 5000), ("file", "big.png", big))
    error = error_of(response, 413)
    assert (error["code"], error["param"]) == ("max_size_exceeded", "file")
    assert "'big.png'" in error["message"] and "1048576 bytes (1 MiB)" in error["message"]
    body_size = len(big) + 5000
    assert str(body_size) not in error["message"] and str(len(big) + 5200) not in error["message"]


def test_the_storage_api_names_the_file_too(alice, settings):
    settings.MEDIA_MAX_BYTES = 1024 * 1024
    response = post(alice, "/api/v1/storage/upload", ("file", "scores.csv", b"a,b\n" * (600 * 1024)))
    error = error_of(response, 413)
    assert "'scores.csv'" in error["message"] and "1048576 bytes" in error["message"]


def test_prepare_upload_names_the_bytes_field(alice):
    response = alice.client.post("/v1/media/prepare-upload", {"content_type": "text/csv", "category": "data_source",
                                                              "bytes": DATA_SOURCE_MAX_BYTES + 1}, format="json")
    error = error_of(response, 413)
    assert (error["code"], error["param"]) == ("max_size_exceeded", "bytes")
    assert f"bytes={DATA_SOURCE_MAX_BYTES + 1}" in error["message"]


def test_the_seed_000_upload_names_the_bytes_field(alice, settings):
    settings.MEDIA_MAX_BYTES = 1000
    response = alice.client.post("/v1/media/upload", {"name": "a.png", "mime": "image/png", "bytes": 5000},
                                 format="json")
    assert (error_of(response, 413)["param"]) == "bytes"
