"""LOG_FORMAT=json: one JSON object per line, with the request's id, organization, user, route,
status, duration and bytes; the Celery worker and beat log the same way. Plain stays the default."""
import io
import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from config.logs import ContextFilter, JsonFormatter


@pytest.fixture
def json_lines():
    """What the access logger writes, as the JSON handler of LOG_FORMAT=json would."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("mediastore.access")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_each_request_logs_one_json_line_with_its_request_id_organization_user_route_and_status(
        alice, alices_media, json_lines):
    response = alice.client.get(f"/v1/media/{alices_media['id']}", HTTP_X_REQUEST_ID="req-123")
    assert response.status_code == 200
    [line] = json_lines()
    assert line["request_id"] == "req-123" == response["X-Request-ID"]
    assert (line["organization"], line["user"]) == ("acme", "alice")
    assert (line["route"], line["status"], line["method"]) == ("v1/media/<str:media_id>", 200, "GET")
    assert line["level"] == "info" and line["time"].endswith("+00:00")
    assert line["duration_ms"] >= 0 and line["bytes_out"] == len(response.content)


def test_an_upload_line_counts_the_bytes_received(alice, post_file, json_lines):
    response = post_file(alice)
    assert response.status_code == 201
    [line] = json_lines()
    assert line["route"] == "v1/media/upload" and line["status"] == 201
    assert line["bytes_in"] == int(response.wsgi_request.META["CONTENT_LENGTH"])


def test_an_anonymous_request_logs_no_organization(db, json_lines):
    assert len(json_lines()) == 0
    from django.test import Client

    Client().get("/v1/media")
    [line] = json_lines()
    assert line["status"] == 401 and "organization" not in line and "user" not in line


def test_plain_text_is_the_default(settings):
    assert settings.LOG_FORMAT == "plain"
    assert settings.LOGGING["handlers"]["console"]["formatter"] == "plain"


def test_the_worker_logs_json_lines_that_name_the_task():
    """Celery's setup_logging applies the same LOGGING in the worker and beat."""
    script = textwrap.dedent("""
        import logging
        import django
        django.setup()
        from celery import signals
        from config.celery import app
        signals.setup_logging.send(sender=None, loglevel="INFO", logfile=None, format="", colorize=False)

        @app.task(name="mediastore.test.say")
        def say():
            logging.getLogger("mediastore.test").warning("from a task")

        app.conf.task_always_eager = True
        say.delay()
    """)
    env = {**os.environ, "LOG_FORMAT": "json", "DJANGO_SETTINGS_MODULE": "config.settings"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    lines = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    said = [line for line in lines if line["message"] == "from a task"]
    assert said and said[0]["task"] == "mediastore.test.say" and said[0]["level"] == "warning"
