"""Large files from the upload page straight to the bucket, in a real browser against a live server
on S3 (a moto server that enforces bucket CORS as S3 does): one presigned PUT, or presigned parts
whose ETags the page reads, then the completion call. Where the bucket does not let the page in
(no CORS rule for the site), the page gives the reservation back and sends the file through the server."""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
import uuid

import pytest
import requests
from PIL import Image

from tests.browser.conftest import PASSWORD
from tests.browser.test_web_app import sign_in
from tests.conftest import _free_port
from tests.e2e.conftest import _manage, server_env, start_gunicorn, stop

pytestmark = pytest.mark.browser

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def strict_moto():
    """A moto S3 server whose CORS answers follow the bucket's rules (moto otherwise allows every origin)."""
    port = _free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "MOTO_DISABLE_GLOBAL_CORS": "true"}
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(endpoint, timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.2)
    yield endpoint
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def s3_site(tmp_path_factory, chromium_path, strict_moto):
    """A live server on S3 without app encryption: from 1 MiB a file goes to the bucket, from 6 MiB
    (and above the 4 MiB one request may carry) in parts."""
    import boto3

    bucket = f"web-{uuid.uuid4().hex[:10]}"
    client = boto3.client("s3", endpoint_url=strict_moto, region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test")
    client.create_bucket(Bucket=bucket)
    var = tmp_path_factory.mktemp("browser-s3-var")
    port = _free_port()
    env = server_env(var, port, MEDIA_ENCRYPTION="none", MEDIA_STORAGE_BACKEND="s3", MEDIA_S3_BUCKET=bucket,
                     MEDIA_S3_ENDPOINT=strict_moto, MEDIA_S3_ACCESS_KEY_ID="test", MEDIA_S3_SECRET_ACCESS_KEY="test",
                     MEDIA_S3_USE_PATH_STYLE="true", MEDIA_MAX_BYTES=str(4 * MIB),
                     WEB_DIRECT_UPLOAD_MIN_BYTES=str(MIB), WEB_MULTIPART_MIN_BYTES=str(6 * MIB))
    _manage(env, "migrate", "--noinput")
    _manage({**env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD}, "createsuperuser", "--noinput",
            "--username", "ada", "--email", "ada@example.com")
    server = start_gunicorn(env, port, var / "server.log")
    yield {"url": f"http://127.0.0.1:{port}", "env": env, "s3": client, "bucket": bucket, "endpoint": strict_moto}
    stop(server)


def noise_png(width: int, height: int) -> bytes:
    """A PNG that does not compress: about 3 bytes a pixel."""
    picture = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()


def mp4(size: int) -> bytes:
    return b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(size - 24)


def upload_page(browser, site):  # noqa: ANN001, ANN201
    page = browser.new_context().new_page()
    sign_in(page, site["url"])
    requests_seen: list[tuple[str, str]] = []
    page.on("request", lambda request: requests_seen.append((request.method, request.url)))
    page.goto(f"{site['url']}/upload")
    page.wait_for_selector("#upload[data-ready]")
    return page, requests_seen


def pick(page, name: str, mime: str, data: bytes) -> None:  # noqa: ANN001
    page.set_input_files("#files", files=[{"name": name, "mimeType": mime, "buffer": data}])


def stored(page, site, n: int) -> dict:  # noqa: ANN001
    """The n-th upload row's file, as the Media API describes it to the signed-in person."""
    page.wait_for_selector(f".upload.done >> nth={n}", timeout=60_000)
    href = page.locator(".upload").nth(n).locator("a").get_attribute("href")
    return page.evaluate("async (id) => (await fetch('/v1/media/' + id)).json()", href.rsplit("/", 1)[1])


def test_large_files_go_straight_to_the_bucket_in_one_put_or_in_parts(browser, s3_site):
    _manage(s3_site["env"], "configure_bucket_cors", "--origin", s3_site["url"])
    page, seen = upload_page(browser, s3_site)

    small = noise_png(200, 200)  # ~120 KB: through the API
    pick(page, "small.png", "image/png", small)
    assert stored(page, s3_site, 0)["sha256"] == hashlib.sha256(small).hexdigest()

    big = noise_png(800, 700)  # ~1.7 MB: one presigned PUT to the bucket
    pick(page, "big.png", "image/png", big)
    media = stored(page, s3_site, 1)
    assert (media["status"], media["bytes"], media["sha256"]) == ("active", len(big), hashlib.sha256(big).hexdigest())
    assert media["original_name"] == "big.png"

    video = mp4(10 * MIB)  # above what one request may carry: two presigned parts (8 MiB + 2 MiB)
    pick(page, "clip.mp4", "video/mp4", video)
    media = stored(page, s3_site, 2)
    assert (media["bytes"], media["sha256"], media["mime"]) == (len(video), hashlib.sha256(video).hexdigest(), "video/mp4")

    routes = page.eval_on_selector_all(".upload", "rows => rows.map(r => r.dataset.route)")
    assert routes == ["api", "direct", "multipart"]
    to_bucket = [(method, url) for method, url in seen if url.startswith(s3_site["endpoint"])]
    assert [method for method, _ in to_bucket] == ["PUT", "PUT", "PUT"]
    assert sum("partNumber=" in url for _, url in to_bucket) == 2
    assert [url for method, url in seen if method == "POST" and url.endswith("/v1/media/upload")] == [
        f"{s3_site['url']}/v1/media/upload"]  # only the small file passed through the server
    assert page.eval_on_selector_all(".upload progress", "bars => bars.map(b => b.value)") == [100, 100, 100]


def test_without_a_cors_rule_the_page_sends_the_file_through_the_server(browser, s3_site):
    s3_site["s3"].delete_bucket_cors(Bucket=s3_site["bucket"])
    page, seen = upload_page(browser, s3_site)
    big = noise_png(800, 700)
    pick(page, "refused.png", "image/png", big)
    media = stored(page, s3_site, 0)
    assert media["sha256"] == hashlib.sha256(big).hexdigest()
    posts = [url for method, url in seen if method == "POST"]
    assert posts == [f"{s3_site['url']}/v1/media/prepare-upload", f"{s3_site['url']}/v1/media/upload"]
    abandoned = [url for method, url in seen if method == "DELETE"]
    assert len(abandoned) == 1  # the prepared upload, given back before the second try
    assert page.evaluate("async (url) => (await fetch(url)).status", abandoned[0]) == 404

    # Too large for one request: nothing to fall back to, so the page says what an administrator must do.
    pick(page, "clip.mp4", "video/mp4", mp4(5 * MIB))
    status = page.wait_for_selector(".upload.failed .status", timeout=60_000).inner_text()
    assert "configure_bucket_cors" in status
