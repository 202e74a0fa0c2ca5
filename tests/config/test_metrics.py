"""Prometheus metrics at /metrics: to a bearer token or allowed networks only; requests by route
template, refused uploads by reason, storage operations, lifecycle jobs and quota gauges."""
import os
import subprocess
import sys
import textwrap

import pytest
from django.test import Client
from prometheus_client import REGISTRY

from config.errors import StorageUnavailable
from media_app import lifecycle
from media_app.tasks import expire_media
from quotas.models import Quota
from storage_app.backends import get_store
from tests.factories import unique_png, upload


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def metrics_token(settings) -> str:
    settings.METRICS_TOKEN = "scrape-me"
    return "scrape-me"


def scrape(token: str | None = None, **extra):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return Client().get("/metrics", **headers, **extra)


def test_metrics_are_not_served_until_a_token_or_network_is_configured(db):
    response = scrape()
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_metrics_refuse_a_wrong_token(metrics_token):
    response = scrape("guess")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_metrics_refuse_a_client_outside_the_allowed_networks(db, settings):
    settings.METRICS_ALLOW_NETWORKS = ["10.0.0.0/8"]
    response = scrape(REMOTE_ADDR="192.0.2.7")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_metrics_answer_a_client_in_the_allowed_networks(db, settings):
    settings.METRICS_ALLOW_NETWORKS = ["10.0.0.0/8"]
    response = scrape(REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


def test_requests_are_counted_by_route_template_not_raw_path(alice, alices_media, metrics_token):
    labels = {"method": "GET", "route": "v1/media/<str:media_id>", "status": "200"}
    before = value("mediastore_http_requests_total", **labels)
    assert alice.client.get(f"/v1/media/{alices_media['id']}").status_code == 200
    body = scrape(metrics_token).content.decode()
    assert value("mediastore_http_requests_total", **labels) == before + 1
    assert 'route="v1/media/<str:media_id>"' in body
    assert alices_media["id"] not in body


def test_uploaded_and_downloaded_bytes_are_counted(alice, alices_media):
    data = unique_png()
    before_up = value("mediastore_uploaded_bytes_total", route="v1/media/upload")
    assert alice.client.post("/v1/media/upload", {"file": upload("a.png", data)}, format="multipart").status_code == 201
    assert value("mediastore_uploaded_bytes_total", route="v1/media/upload") > before_up + len(data)
    before_down = value("mediastore_downloaded_bytes_total", route="v1/media/<str:media_id>/content")
    response = alice.client.get(f"/v1/media/{alices_media['id']}/content")
    sent = len(b"".join(response.streaming_content)) if response.streaming else len(response.content)
    assert value("mediastore_downloaded_bytes_total", route="v1/media/<str:media_id>/content") == before_down + sent


def test_an_upload_over_the_quota_is_counted_as_refused_for_quota(alice, post_file):
    Quota.objects.filter(organization=alice.organization).update(limit_override_bytes=10)
    before = value("mediastore_uploads_refused_total", reason="quota")
    response = post_file(alice)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "quota_exceeded"
    assert value("mediastore_uploads_refused_total", reason="quota") == before + 1


def test_a_remote_fetch_of_a_private_address_is_counted_as_refused_for_ssrf(alice):
    before = value("mediastore_uploads_refused_total", reason="ssrf")
    response = alice.client.post("/v1/media", {"source": {"type": "remote_url", "url": "http://127.0.0.1/a.png"}},
                                 format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "url_not_allowed"
    assert value("mediastore_uploads_refused_total", reason="ssrf") == before + 1


def test_storage_operations_are_timed_and_their_failures_counted(db, monkeypatch):
    store = get_store()
    backend = type(store).__name__.removesuffix("Store").lower()
    before = value("mediastore_storage_operation_duration_seconds_count", backend=backend, operation="exists")
    store.exists("organizations/1/nothing-here")
    assert value("mediastore_storage_operation_duration_seconds_count",
                 backend=backend, operation="exists") == before + 1
    errors = value("mediastore_storage_errors_total", backend=backend, operation="ping")
    monkeypatch.setattr(store, "_write", lambda *a, **k: (_ for _ in ()).throw(StorageUnavailable()))
    with pytest.raises(StorageUnavailable):
        store.ping()
    assert value("mediastore_storage_errors_total", backend=backend, operation="ping") == errors + 1


def test_a_missing_object_is_not_a_storage_error(db):
    store = get_store()
    backend = type(store).__name__.removesuffix("Store").lower()
    before = value("mediastore_storage_errors_total", backend=backend, operation="size")
    with pytest.raises(Exception):  # noqa: B017, PT011 - each backend names "missing" its own way
        store.size("organizations/1/missing")
    assert value("mediastore_storage_errors_total", backend=backend, operation="size") == before


def test_a_lifecycle_job_run_is_counted_with_its_duration_and_items(alice, alices_media):
    from media_app.models import MediaFile

    MediaFile.objects.filter(pk=alices_media["id"]).update(retain_until="2000-01-01T00:00:00Z")
    runs = value("mediastore_job_runs_total", job="expire_media", outcome="ok")
    items = value("mediastore_job_items_total", job="expire_media")
    expire_media()
    assert value("mediastore_job_runs_total", job="expire_media", outcome="ok") == runs + 1
    assert value("mediastore_job_items_total", job="expire_media") == items + 1
    assert value("mediastore_job_duration_seconds_count", job="expire_media") >= 1


def test_the_recalculation_sets_each_organizations_quota_gauges(alice, alices_media):
    lifecycle.recalculate_quotas()
    assert value("mediastore_quota_used_bytes", organization="acme") == alices_media["bytes"]
    assert value("mediastore_quota_files", organization="acme") == 1
    assert value("mediastore_quota_limit_bytes", organization="acme") == alice.organization.plan.storage_limit_bytes


def test_processes_sharing_a_multiprocess_dir_add_up(tmp_path):
    """Two worker processes count, a third (the scraping one) answers their sum."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = textwrap.dedent("""
        from config.metrics import UPLOADS_REFUSED
        UPLOADS_REFUSED.labels(reason="quota").inc(3)
    """)
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, check=True)
    scrape_it = "from config.metrics import exposition; print(exposition()[0].decode())"
    out = subprocess.run([sys.executable, "-c", scrape_it], env=env, check=True, capture_output=True, text=True).stdout
    assert 'mediastore_uploads_refused_total{reason="quota"} 6.0' in out


def test_a_file_of_a_type_its_category_refuses_is_counted_as_refused_for_type(alice, post_file):
    from tests.factories import pdf_bytes

    before = value("mediastore_uploads_refused_total", reason="type")
    response = post_file(alice, data=pdf_bytes(), name="cv.pdf", category="profile_image")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert value("mediastore_uploads_refused_total", reason="type") == before + 1


def test_an_upload_past_the_concurrency_limit_is_counted_as_refused_for_concurrency(alice, settings, post_file):
    from config.concurrency import slots

    settings.MEDIA_CONCURRENT_UPLOADS_PER_ORG = 1
    token = slots().acquire(f"org:{alice.organization.pk}", 1)
    before = value("mediastore_uploads_refused_total", reason="concurrency")
    try:
        response = post_file(alice)
    finally:
        slots().release(f"org:{alice.organization.pk}", token)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "too_many_concurrent_uploads"
    assert value("mediastore_uploads_refused_total", reason="concurrency") == before + 1
