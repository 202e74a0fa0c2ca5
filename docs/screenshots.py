"""Screenshots of the admin for docs/: the media list and an organization page.

Needs Debian's chromium and chromium-driver and `pip install selenium`. Starts its own
server on a throwaway var/ folder with sample data, so it never touches yours:

    .venv/bin/python docs/screenshots.py
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs"


def main() -> None:
    var = tempfile.mkdtemp(prefix="mediastore-shots-")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "MEDIA_", "REDIS_"))}
    env.update(MEDIASTORE_VAR_DIR=var, MEDIA_LOCAL_STORAGE_BASE_URL=f"{base}/files", DEBUG="true")

    def manage(*args: str, stdin: str | None = None) -> str:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, text=True,
                              input=stdin, capture_output=True).stdout.strip()

    manage("migrate", "--noinput")
    key = manage("create_api_key", "--org", "acme", "--user", "alice")
    manage("shell", stdin="from django.contrib.auth import get_user_model as g; "
                          "g().objects.create_superuser('admin', 'admin@example.com', 'screenshots-only'); "
                          "from quotas.models import Quota; Quota.objects.update(limit_override_bytes=40000)")
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(base)
        _sample_data(base, key)
        _shoot(base)
    finally:
        server.terminate()


def _wait(base: str) -> None:
    for _ in range(100):
        try:
            requests.get(f"{base}/healthz", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


def _sample_data(base: str, key: str) -> None:
    from io import BytesIO

    from PIL import Image, ImageDraw

    prompts = [("a lighthouse at dusk, oil painting", (234, 120, 60)), ("a red fox in fresh snow", (200, 60, 40)),
               ("isometric city block, pastel", (120, 170, 220)), ("a bowl of ramen, studio light", (220, 180, 90)),
               ("a forest path in autumn fog", (90, 130, 80))]
    for prompt, color in prompts:
        image = Image.new("RGB", (512, 512), color)
        ImageDraw.Draw(image).ellipse((96, 96, 416, 416), fill=tuple(255 - c for c in color))
        buffer = BytesIO()
        image.save(buffer, format="PNG")
        requests.post(f"{base}/v1/media/upload", headers={"Authorization": f"Bearer {key}"}, timeout=30,
                      files={"file": (f"{prompt[:12]}.png", buffer.getvalue(), "image/png")},
                      data={"prompt": prompt, "model": "stability/sdxl:1.0", "provider": "stability"})


def _shoot(base: str) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(f"{base}/admin/login/")
        driver.find_element(By.NAME, "username").send_keys("admin")
        driver.find_element(By.NAME, "password").send_keys("screenshots-only")
        driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        driver.get(f"{base}/admin/media_app/mediafile/")
        time.sleep(1)
        driver.save_screenshot(str(OUT / "admin-media-list.png"))
        driver.get(f"{base}/admin/accounts/organization/1/change/")
        time.sleep(0.5)
        driver.save_screenshot(str(OUT / "admin-organization.png"))
    finally:
        driver.quit()
    print(f"wrote {OUT / 'admin-media-list.png'} and {OUT / 'admin-organization.png'}")


if __name__ == "__main__":
    main()
