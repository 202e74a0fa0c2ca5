"""The import-linter contracts hold, and an upward import breaks them."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "accounts", "quotas", "storage_app", "media_app", "events", "api", "backoffice", "web")
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT)], cwd=root, capture_output=True, text=True, timeout=120)


def _copy(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def test_the_layers_hold():
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout


def test_an_upward_import_breaks_the_layers(tmp_path):
    root = _copy(tmp_path)
    (root / "quotas" / "planted.py").write_text("from media_app.models import MediaFile  # noqa: F401\n")
    done = _lint(root)
    assert done.returncode != 0
    assert "quotas is not allowed to import media_app" in done.stdout


def test_a_surface_importing_another_breaks_their_independence(tmp_path):
    root = _copy(tmp_path)
    (root / "api" / "media" / "planted.py").write_text("from api.storage import views  # noqa: F401\n")
    done = _lint(root)
    assert done.returncode != 0
    assert "Surfaces never import each other's helpers BROKEN" in done.stdout


def test_media_app_never_imports_the_events_above_it(tmp_path):
    root = _copy(tmp_path)
    (root / "media_app" / "planted.py").write_text("from events.models import WebhookEndpoint  # noqa: F401\n")
    done = _lint(root)
    assert done.returncode != 0
    assert "media_app is not allowed to import events" in done.stdout


def test_the_webhooks_surface_is_independent_of_the_others(tmp_path):
    root = _copy(tmp_path)
    (root / "api" / "webhooks" / "planted.py").write_text("from api.media import views  # noqa: F401\n")
    done = _lint(root)
    assert "Surfaces never import each other's helpers BROKEN" in done.stdout


def test_the_web_app_is_a_surface_independent_of_the_api(tmp_path):
    root = _copy(tmp_path)
    (root / "web" / "planted.py").write_text("from api.quotas import views  # noqa: F401\n")
    done = _lint(root)
    assert done.returncode != 0
    assert "Surfaces never import each other's helpers BROKEN" in done.stdout
