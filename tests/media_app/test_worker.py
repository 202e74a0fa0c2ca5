"""A real Celery worker with beat on Redis runs a scheduled lifecycle job against PostgreSQL.

Every other test runs tasks in-process; this one proves the wiring: beat's schedule from
settings, the broker, task discovery, and a job committing a change the test can see.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django.utils import timezone

from media_app.models import JobRun, MediaFile
from tests.media_app.test_lifecycle import stored

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 90  # seconds: worker start-up, beat's first tick, the job


def database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def worker_env(redis_url: str, var: Path) -> dict:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("DATABASE_", "DB_", "REDIS_", "CELERY_", "MEDIASTORE_", "MEDIA_", "R2_"))}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DATABASE_URL=database_url(), REDIS_URL=redis_url,
               CELERY_BROKER_URL=redis_url, MEDIASTORE_VAR_DIR=str(var), MEDIASTORE_SCHEDULE_EXPIRE_MEDIA="1s")
    return env


def wait_for(condition, timeout: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the worker's own process group (it and its embedded beat), SIGKILL if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


@pytest.mark.django_db(transaction=True)
def test_beat_and_a_worker_on_redis_expire_a_file(requires_postgres, redis_url, alice, tmp_path):
    media = stored(alice)
    MediaFile.objects.filter(pk=media.pk).update(retain_until=timezone.now() - timedelta(seconds=1))
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--beat", "--pool", "solo",
             "--loglevel", "info", "--without-gossip", "--without-mingle", "--schedule",
             str(tmp_path / "celerybeat-schedule")],
            cwd=ROOT, env=worker_env(redis_url, tmp_path / "var"), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        expired = wait_for(lambda: MediaFile.objects.get(pk=media.pk).status == "deleted", DEADLINE)
    finally:
        stop(worker)
    assert expired, log.read_text()[-4000:]
    assert JobRun.objects.get(name="expire_media").runs >= 1  # the task recorded its run
    assert MediaFile.objects.get(pk=media.pk).deleted_at is not None
