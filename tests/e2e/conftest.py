"""A live server (gunicorn on the embedded default) that the e2e tests talk HTTP to."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import _free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LiveServer:
    url: str
    user_key: str
    service_key: str
    env: dict


def _manage(env: dict, *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def server_env(var: Path, port: int, **extra: str) -> dict:
    """The embedded default in `var`, with none of the caller's service settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_", "MEDIA_", "REDIS_", "CELERY_", "DB_", "R2_", "OIDC_", "MEDIASTORE_",
                                "WEB_CONCURRENCY", "GUNICORN_"))}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", MEDIASTORE_VAR_DIR=str(var),
               MEDIA_LOCAL_STORAGE_BASE_URL=f"http://127.0.0.1:{port}/files", **extra)
    return env


def start_gunicorn(env: dict, port: int, log: Path) -> subprocess.Popen:
    """gunicorn as the Docker image and `make run` start it (config/gunicorn.conf.py), once it answers."""
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
         "--no-control-socket"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            # The first request loads the whole app in a worker: give it time on a busy machine.
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=15).status_code == 200:
                return server
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.3)
    server.kill()
    pytest.fail("the live server did not become ready")


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=20)


@pytest.fixture(scope="session")
def live_server_process(tmp_path_factory):
    var = tmp_path_factory.mktemp("e2e-var")
    port = _free_port()
    env = server_env(var, port, MEDIA_REMOTE_FETCH_ALLOW_NETWORKS="127.0.0.0/8", MEDIA_ENCRYPTION="app",
                     MEDIA_ID_PREFIX="jan_")
    env["MEDIA_MASTER_KEYS"] = _manage({**env, "MEDIA_ENCRYPTION": "none"}, "create_master_key", "--print")
    _manage(env, "migrate", "--noinput")
    user_key = _manage(env, "create_api_key", "--org", "e2e", "--user", "user123")
    service_key = _manage(env, "create_api_key", "--org", "e2e", "--user", "svc", "--service")
    server = start_gunicorn(env, port, var / "server.log")
    yield LiveServer(url=f"http://127.0.0.1:{port}", user_key=user_key, service_key=service_key, env=env)
    stop(server)
