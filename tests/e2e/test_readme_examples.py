"""The README's curl examples, as written, against a live server set up as `make run` sets it up.

The server has `make run`'s data (`demo_setup`: the demo organization, user `demo`, its key and
service key in `var/`) and its encryption at rest. Every code block of README.md that holds a
curl command is taken: its curl commands (continuation lines joined) and its variable
assignments, in order, run as one bash script in a folder holding `cat.png`, `scores.csv` and
`var/`. The only changes: `localhost:8000` becomes the live server's address, and each curl
gets `--fail-with-body -sS` so that an error answer fails the script. Offline, the remote URL
example fetches the same path from a local origin instead, and the webhook example registers it.
"""
from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from tests.conftest import _free_port
from tests.e2e.conftest import ROOT, _manage, server_env, start_gunicorn, stop
from tests.factories import png_bytes

pytestmark = pytest.mark.e2e

README = ROOT / "README.md"
ASSIGNMENT = re.compile(r"^[A-Z_]+=\S")


def readme_commands(text: str) -> list[str]:
    """Curl commands and variable assignments of the code blocks that hold a curl command."""
    commands: list[str] = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.S | re.M):
        lines = block.splitlines()
        if not any(line.startswith("curl ") for line in lines):
            continue
        current = ""
        for line in lines:
            if current:
                current += " " + line.strip()
            elif line.startswith("curl ") or ASSIGNMENT.match(line):
                current = line
            if current and not current.endswith("\\"):
                commands.append(current)
                current = ""
            elif current:
                current = current[:-1].rstrip()
    return commands


def online(url: str) -> bool:
    try:
        socket.create_connection((urlsplit(url).hostname, 443), timeout=3).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def origin():
    """Serves a PNG at any path: the remote URL example's stand-in when there is no network."""
    image = png_bytes(32, 32, noise=8)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(image)))
            self.end_headers()
            self.wfile.write(image)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def make_run_server(tmp_path_factory):
    """gunicorn on `make run`'s setup: master key, migrations, demo_setup, MEDIA_ENCRYPTION=app."""
    var = tmp_path_factory.mktemp("readme-var")
    port = _free_port()
    env = server_env(var, port, MEDIA_REMOTE_FETCH_ALLOW_NETWORKS="127.0.0.0/8")
    _manage({**env, "MEDIA_ENCRYPTION": "none"}, "create_master_key", "--if-missing")
    env["MEDIA_ENCRYPTION"] = "app"
    _manage(env, "migrate", "--noinput")
    _manage(env, "demo_setup")
    server = start_gunicorn(env, port, var / "server.log")
    yield f"127.0.0.1:{port}", var
    stop(server)


def test_the_readme_lists_the_examples_a_newcomer_needs():
    commands = readme_commands(README.read_text())
    joined = "\n".join(commands)
    assert "SERVICE_KEY=$(cat var/demo-service-key)" in joined
    assert '"type": "data_url"' in joined and '"type": "remote_url"' in joined
    assert '"user_id": "demo"' in joined and '"user_id": "alice"' not in joined
    assert len([c for c in commands if c.startswith("curl ")]) >= 15


def test_every_readme_curl_example_runs_as_written(make_run_server, origin, tmp_path):
    address, var = make_run_server
    work = tmp_path / "project"
    work.mkdir()
    (work / "var").mkdir()
    for name in ("demo-api-key", "demo-service-key"):
        shutil.copy(var / name, work / "var" / name)
    cat = png_bytes(48, 48, noise=32)
    assert 100 < len(cat) <= 12345  # the size prepare-upload declares in the README
    (work / "cat.png").write_bytes(cat)
    (work / "scores.csv").write_text("name,score\nada,3\ngrace,5\n")

    lines = ["set -euo pipefail"]
    for command in readme_commands(README.read_text()):
        command = command.replace("localhost:8000", address).replace("127.0.0.1:8000", address)
        for url in re.findall(r"https://[^\"' ]+", command):
            if ('"remote_url"' in command or "/v1/webhooks" in command) and not online(url):
                command = command.replace(url, origin + urlsplit(url).path)
        if command.startswith("curl "):
            command = "curl --fail-with-body -sS " + command[len("curl "):]
            lines.append(f"echo '>>> {len(lines)}' >&2")
        lines.append(command)
    script = "\n".join(lines) + "\n"
    result = subprocess.run(["bash", "-c", script], cwd=work, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"{result.stderr[-3000:]}\n{result.stdout[-2000:]}\n---\n{script}"
    assert (work / "first-100-bytes").read_bytes() == cat[:100]  # the range, decrypted
