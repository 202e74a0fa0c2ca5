import pytest


def test_healthz_answers_without_touching_anything(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_database_and_storage_on_both_backends(client, backend):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    checks = response.json()["checks"]
    assert checks["database"] == checks["storage"] == "ok"


@pytest.mark.django_db
def test_readyz_names_storage_when_s3_is_unreachable(client, settings):
    from tests.conftest import s3_storage_settings

    settings.MEDIA_STORAGE_BACKEND = "s3"
    settings.STORAGES = {**settings.STORAGES, "media": s3_storage_settings("http://127.0.0.1:9", "nowhere")}
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["storage"] == "failed"
    assert body["error"]["code"] == "storage_unavailable"
    assert "storage" in body["error"]["message"]


@pytest.mark.django_db
def test_readyz_names_the_broker_when_it_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"
    from config.celery import app

    old = app.conf.broker_url
    app.conf.broker_url = settings.CELERY_BROKER_URL
    try:
        response = client.get("/readyz")
    finally:
        app.conf.broker_url = old
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "failed"


@pytest.mark.django_db
def test_readyz_pings_a_real_redis_broker(client, settings, redis_url):
    settings.CELERY_BROKER_URL = redis_url
    from config.celery import app

    old = app.conf.broker_url
    app.conf.broker_url = redis_url
    try:
        response = client.get("/readyz")
    finally:
        app.conf.broker_url = old
    assert response.status_code == 200
    assert response.json()["checks"]["broker"] == "ok"
