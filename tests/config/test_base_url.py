"""App-signed URLs point at the address `serve` listens on unless a public URL is set."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _base_url(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIA_LOCAL_STORAGE", "MEDIASTORE_BIND"))}
    code = "import django; django.setup(); from django.conf import settings; print(settings.MEDIA_LOCAL_STORAGE_BASE_URL)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", "MEDIA_ENCRYPTION": "none", **env})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_default_is_make_runs_address():
    assert _base_url() == "http://127.0.0.1:8000/files"


def test_a_changed_bind_address_moves_the_signed_urls_with_it():
    assert _base_url(MEDIASTORE_BIND="127.0.0.1:8123") == "http://127.0.0.1:8123/files"


def test_a_wildcard_bind_address_is_reached_on_loopback():
    assert _base_url(MEDIASTORE_BIND="0.0.0.0:9000") == "http://127.0.0.1:9000/files"


def test_an_explicit_public_url_wins():
    assert _base_url(MEDIASTORE_BIND="0.0.0.0:9000",
                     MEDIA_LOCAL_STORAGE_BASE_URL="https://media.example.com/files/") == "https://media.example.com/files"
