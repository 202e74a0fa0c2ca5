"""Shared fixtures: isolated storage on every backend, a real moto S3 server, the cast.

The cast (healthchecks-style): alice owns `acme`, bob is a member of `acme`, carol is an
admin of `acme`, charlie owns `globex`; `acme_service` is a service key of acme, `globex_service`
one of globex.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TEST_BACKEND = os.environ.get("MEDIASTORE_TEST_BACKEND", "local")


# -- services that must exist in CI ------------------------------------------------------
def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required in CI (CI=true) but is not available.")
    pytest.skip(f"{what} is not available")


@pytest.fixture
def requires_postgres(db):
    from django.db import connection

    if connection.vendor != "postgresql":
        _missing("PostgreSQL (set DATABASE_URL=postgres://...)")


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    if not url:
        _missing("Redis (set REDIS_URL)")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means unavailable
        _missing(f"Redis at {url} ({exc})")
    return url


# -- S3 through moto's server mode (real HTTP, real boto3) --------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint():
    port = _free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("moto server did not start")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


def s3_storage_settings(endpoint: str, bucket: str) -> dict:
    from config.s3 import s3_storage_options

    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": s3_storage_options(
        bucket=bucket, region="us-east-1", endpoint=endpoint, access_key="test", secret_key="test",
        path_style=True, presign_ttl=3600)}


def make_bucket(endpoint: str) -> str:
    import boto3

    bucket = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                 aws_secret_access_key="test").create_bucket(Bucket=bucket)
    return bucket


def use_local(settings, tmp_path) -> None:
    root = tmp_path / "media"
    settings.MEDIA_STORAGE_BACKEND = "local"
    settings.MEDIA_LOCAL_STORAGE_PATH = root
    settings.STORAGES = {**settings.STORAGES, "media": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(root), "base_url": settings.MEDIA_LOCAL_STORAGE_BASE_URL + "/"},
    }}


MEMORY_BACKEND = "tests.storage_app.memory_store.MemoryStore"


def use_memory(settings, tmp_path) -> None:
    """The in-memory backend, chosen by dotted path as a third backend would be. A fresh `STORAGES`
    (unused by it) gives every test a fresh store."""
    use_local(settings, tmp_path)
    settings.MEDIA_STORAGE_BACKEND = MEMORY_BACKEND


def use_s3(settings, endpoint: str) -> str:
    bucket = make_bucket(endpoint)
    settings.MEDIA_STORAGE_BACKEND = "s3"
    settings.MEDIA_S3_BUCKET = bucket
    settings.MEDIA_S3_ENDPOINT = endpoint
    settings.STORAGES = {**settings.STORAGES, "media": s3_storage_settings(endpoint, bucket)}
    return bucket


@pytest.fixture(autouse=True, scope="session")
def eager_celery():
    """Tasks run in-process in tests; one test starts a real worker on purpose."""
    from config.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture(autouse=True)
def fresh_rate_limits(settings, monkeypatch):
    """Every test starts with no requests counted (in Redis, under keys of its own). Every anonymous
    request of the suite comes from 127.0.0.1, so the per-address limit is off unless a test sets one."""
    from config import ratelimit
    from config.ratelimit import LocalWindows, windows

    settings.RATE_LIMIT_ANONYMOUS_PER_MINUTE = 0
    monkeypatch.setattr(ratelimit, "NAMESPACE", f"rate-{uuid.uuid4().hex}")
    if isinstance(windows(), LocalWindows):
        windows().clear()


@pytest.fixture(autouse=True)
def fresh_key_cache(monkeypatch):
    """No test sees API keys another test authenticated (each test's database starts over), and the
    cache's clock stands still unless a test moves it: how many queries a request makes does not
    depend on how long the test took (changes made in the process still apply at once)."""
    from accounts import keycache
    from accounts.keycache import CACHE

    monkeypatch.setattr(keycache, "_now", lambda: 1000.0)
    CACHE.clear()
    yield
    CACHE.clear()


@pytest.fixture(autouse=True)
def isolated_storage(request, settings, tmp_path):
    """Every test gets its own storage: a temp folder, or a fresh bucket when
    MEDIASTORE_TEST_BACKEND=s3 (CI runs the API suite that way too)."""
    settings.MEDIA_LOCAL_STORAGE_BASE_URL = "http://testserver/files"
    if TEST_BACKEND == "s3":
        use_s3(settings, request.getfixturevalue("moto_endpoint"))
    elif TEST_BACKEND == "memory":
        use_memory(settings, tmp_path)
    else:
        use_local(settings, tmp_path)


@pytest.fixture(params=["local", "s3", "memory"])
def backend(request, settings, tmp_path) -> str:
    """Runs a test once per backend: the two shipped ones and the in-memory one of the tests, which
    proves the interface is all a backend needs (tests/storage_app/memory_store.py)."""
    if request.param == "s3":
        use_s3(settings, request.getfixturevalue("moto_endpoint"))
    elif request.param == "memory":
        use_memory(settings, tmp_path)
    else:
        use_local(settings, tmp_path)
    return request.param


@pytest.fixture
def store(backend):
    from storage_app.backends import get_store

    return get_store()


# -- the cast ----------------------------------------------------------------------------
@dataclass
class Actor:
    user: object
    organization: object
    key: str
    client: APIClient


def _actor(username: str, org, role: str, *, service: bool = False) -> Actor:
    from django.contrib.auth import get_user_model

    from accounts.models import ApiKey
    from accounts.services import api_key_create, membership_add

    user, _ = get_user_model().objects.get_or_create(username=username)
    membership_add(organization=org, user=user, role=role)
    kind = ApiKey.Kind.SERVICE if service else ApiKey.Kind.USER
    secret = api_key_create(organization=org, user=user, kind=kind).secret
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return Actor(user=user, organization=org, key=secret, client=client)


@pytest.fixture
def acme(db):
    from accounts.services import organization_create
    from quotas.services import plans_ensure_seeded

    plans_ensure_seeded()  # transactional tests flush the migration-seeded plans

    return organization_create(name="Acme", slug="acme", plan_slug="organization")


@pytest.fixture
def globex(db):
    from accounts.services import organization_create
    from quotas.services import plans_ensure_seeded

    plans_ensure_seeded()

    return organization_create(name="Globex", slug="globex", plan_slug="organization")


@pytest.fixture
def alice(acme) -> Actor:
    return _actor("alice", acme, "owner")


@pytest.fixture
def bob(acme) -> Actor:
    return _actor("bob", acme, "member")


@pytest.fixture
def carol(acme) -> Actor:
    return _actor("carol", acme, "admin")


@pytest.fixture
def charlie(globex) -> Actor:
    return _actor("charlie", globex, "owner")


@pytest.fixture
def acme_service(acme, alice) -> Actor:
    return _actor("acme-bot", acme, "member", service=True)


@pytest.fixture
def globex_service(globex, charlie) -> Actor:
    return _actor("globex-bot", globex, "member", service=True)


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


def _unique_png() -> bytes:
    from tests.factories import unique_png

    return unique_png()


def _upload_file(name: str, data: bytes):  # noqa: ANN202
    from tests.factories import upload

    return upload(name, data)


@pytest.fixture
def store_keys():
    """A function listing every key in the configured storage (for 'nothing left behind')."""
    from storage_app.backends import get_store

    def keys(prefix: str = "") -> list[str]:
        return sorted(info.key for info in get_store().list(prefix))

    return keys


@pytest.fixture
def post_file():
    def post(actor, data=None, name="cat.png", **fields):
        payload = {"file": _upload_file(name, data if data is not None else _unique_png()), **fields}
        return actor.client.post("/v1/media/upload", payload, format="multipart")

    return post


@pytest.fixture
def alices_media(alice, post_file):
    response = post_file(alice, model="stability/sdxl:1.0", provider="stability", prompt="a red square at dawn")
    assert response.status_code == 201, response.content
    return response.json()
