import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import Env, parse_duration

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text,seconds", [
    ("30m", 1800), ("1h", 3600), ("168h", 604800), ("15s", 15), ("90", 90), ("1h30m", 5400), ("7d", 604800),
])
def test_durations_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["forever", "1 h", "h", "-5m", "1y", ""])
def test_bad_durations_do_not_parse(text):
    assert parse_duration(text) is None


def test_sizes_are_plain_bytes():
    assert Env({"MEDIA_MAX_BYTES": "20971520"}).bytes("MEDIA_MAX_BYTES", 1) == 20971520
    with pytest.raises(ImproperlyConfigured, match="MEDIA_MAX_BYTES"):
        Env({"MEDIA_MAX_BYTES": "20MB"}).bytes("MEDIA_MAX_BYTES", 1)


def test_size_lists_are_positive_whole_numbers_sorted():
    assert Env({"MEDIA_TRANSFORM_WIDTHS": "512, 64,128,64"}).int_list("MEDIA_TRANSFORM_WIDTHS", (1,)) == [64, 128, 512]
    assert Env({}).int_list("MEDIA_TRANSFORM_WIDTHS", (256, 64)) == [64, 256]
    for bad in ("64,big", "0,64", "-64", ","):
        with pytest.raises(ImproperlyConfigured, match="MEDIA_TRANSFORM_WIDTHS"):
            Env({"MEDIA_TRANSFORM_WIDTHS": bad}).int_list("MEDIA_TRANSFORM_WIDTHS", (64,))


def test_aliases_are_read_and_the_canonical_name_wins():
    env = Env({"DB_POSTGRESQL_WRITE_DSN": "postgres://a", "R2_ENDPOINT_URL": "https://r2"})
    assert env.str("DATABASE_URL", aliases=("DB_POSTGRESQL_WRITE_DSN",)) == "postgres://a"
    both = Env({"MEDIA_S3_ENDPOINT": "https://s3", "R2_ENDPOINT_URL": "https://r2"})
    assert both.str("MEDIA_S3_ENDPOINT", aliases=("R2_ENDPOINT_URL",)) == "https://s3"


def test_a_bad_alias_value_names_the_alias():
    with pytest.raises(ImproperlyConfigured, match="R2_X"):
        Env({"R2_X": "maybe"}).bool("MEDIA_X", aliases=("R2_X",))


def _start(**overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIA_", "DATABASE_", "R2_"))}
    env.update(overrides)
    code = "import django; django.setup(); from django.conf import settings; print(settings.MEDIA_STORAGE_BACKEND)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("variable,value", [
    ("MEDIA_MAX_BYTES", "abc"),
    ("MEDIA_S3_PRESIGN_TTL", "forever"),
    ("MEDIA_STORAGE_BACKEND", "ftp"),
    ("MEDIA_STORAGE_BACKEND", "storage_app.backends.nowhere.Store"),  # a dotted path that cannot be imported
    ("MEDIA_STORAGE_BACKEND", "storage_app.keys.validate_key"),  # one that is not a MediaStore
    ("MEDIA_REMOTE_FETCH_TIMEOUT", "soon"),
    ("MEDIA_ENCRYPTION", "rot13"),
    ("MEDIA_S3_USE_PATH_STYLE", "perhaps"),
    ("MEDIA_TRANSFORM_WIDTHS", "64,huge"),
    ("MEDIA_TRANSFORM_CONCURRENCY", "0"),
])
def test_start_up_fails_naming_the_variable(variable, value):
    result = _start(**{variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr


def test_a_dotted_path_selects_a_third_backend():
    result = _start(MEDIA_STORAGE_BACKEND="tests.storage_app.memory_store.MemoryStore")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "tests.storage_app.memory_store.MemoryStore"


def test_s3_without_a_bucket_fails_naming_the_bucket_variable():
    result = _start(MEDIA_STORAGE_BACKEND="s3")
    assert result.returncode != 0 and "MEDIA_S3_BUCKET" in result.stderr


def test_the_seeds_r2_variables_select_s3():
    result = _start(R2_ENDPOINT_URL="http://127.0.0.1:9", R2_ACCESS_KEY_ID="x", R2_SECRET_ACCESS_KEY="y",
                    R2_BUCKET_NAME="b")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "s3"


def test_seed_database_aliases_are_accepted():
    code = ("import django; django.setup(); from django.conf import settings; "
            "d = settings.DATABASES; print(d['default']['NAME'], d['replica']['NAME'], settings.DATABASE_ROUTERS)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIA_", "DATABASE_"))}
    env.update(DB_POSTGRESQL_WRITE_DSN="postgres://u:p@db:5432/media_api",
               DB_POSTGRESQL_READ1_DSN="postgres://u:p@ro:5432/media_api_ro")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["media_api", "media_api_ro"]
