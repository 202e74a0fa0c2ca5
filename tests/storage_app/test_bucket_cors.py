"""`manage.py configure_bucket_cors`: the bucket's CORS rule that lets the web app's upload page
send large files straight to S3 (PUT, parts whose ETag the page reads), set beside the bucket's
other rules; nothing to do where uploads pass through the server."""
from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from storage_app.backends import get_store
from storage_app.backends.s3 import CORS_RULE_ID
from storage_app.crypto import generate_key_string
from tests.conftest import use_local, use_s3

SITE = "https://media.example.com"


@pytest.fixture
def s3(settings, moto_endpoint):
    use_s3(settings, moto_endpoint)
    settings.MEDIA_ENCRYPTION = "none"
    return get_store()


def rules(store) -> list[dict]:  # noqa: ANN001
    return store.client.get_bucket_cors(Bucket=store.bucket)["CORSRules"]


def configure(*args: str) -> str:
    out = StringIO()
    call_command("configure_bucket_cors", *args, stdout=out)
    return out.getvalue()


def test_the_rule_allows_the_site_to_put_and_read_etags(s3):
    output = configure("--origin", SITE, "--origin", "https://admin.example.com/")
    [rule] = rules(s3)
    assert rule["ID"] == CORS_RULE_ID
    assert rule["AllowedOrigins"] == [SITE, "https://admin.example.com"]
    assert {"PUT", "POST"} <= set(rule["AllowedMethods"])
    assert rule["ExposeHeaders"] == ["ETag"]
    assert rule["AllowedHeaders"] == ["*"]
    assert f"now allows uploads from {SITE}, https://admin.example.com" in output


def test_the_bucket_s_other_rules_are_kept_and_ours_replaced_on_a_second_run(s3):
    theirs = {"ID": "cdn", "AllowedOrigins": ["https://cdn.example.com"], "AllowedMethods": ["GET"]}
    s3.client.put_bucket_cors(Bucket=s3.bucket, CORSConfiguration={"CORSRules": [theirs]})
    configure("--origin", "https://old.example.com")
    configure("--origin", SITE)
    found = {rule["ID"]: rule for rule in rules(s3)}
    assert set(found) == {"cdn", CORS_RULE_ID}
    assert found["cdn"]["AllowedOrigins"] == ["https://cdn.example.com"]
    assert found[CORS_RULE_ID]["AllowedOrigins"] == [SITE]


def test_the_origins_default_to_the_trusted_csrf_origins(s3, settings):
    settings.CSRF_TRUSTED_ORIGINS = [SITE]
    settings.MEDIA_CORS_ALLOWED_ORIGINS = []
    configure()
    assert rules(s3)[0]["AllowedOrigins"] == [SITE]


def test_without_an_origin_the_command_says_which_to_name(s3, settings):
    settings.CSRF_TRUSTED_ORIGINS = []
    settings.MEDIA_CORS_ALLOWED_ORIGINS = []
    with pytest.raises(CommandError, match="--origin https://media.example.com"):
        configure()


def test_a_value_that_is_not_an_origin_is_refused(s3):
    with pytest.raises(CommandError, match="is not an origin"):
        configure("--origin", "media.example.com")


def test_under_app_encryption_there_is_nothing_to_configure(s3, settings):
    settings.MEDIA_ENCRYPTION = "app"
    settings.MEDIA_MASTER_KEYS = generate_key_string("k1")
    assert "Nothing to configure" in configure("--origin", SITE)
    assert get_store().takes_direct_uploads() is False


def test_on_local_storage_there_is_nothing_to_configure(settings, tmp_path):
    use_local(settings, tmp_path)
    settings.CSRF_TRUSTED_ORIGINS = []
    assert "uploads to this backend pass through the server" in configure()  # no origin needed to say so
    assert get_store().takes_direct_uploads() is False
