"""`manage.py serve` (what `make run` runs), started and stopped for real, again and again.

Each stop is a Ctrl-C (SIGINT to the command alone, as the terminal's goes only to its
foreground group, now that the children have groups of their own); some rounds send a
second one during the shutdown, some stop it before the server is even up. After every
stop no process started with the round's `MEDIASTORE_VAR_DIR` is left and the port binds.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import _free_port
from tests.e2e.conftest import ROOT, _manage, server_env

pytestmark = pytest.mark.e2e

STOP_SECONDS = 30  # the grace period (10 s) and the group kill, with room on a busy machine


def processes_with(marker: str) -> list[int]:
    """Our processes whose environment holds `marker` (the round's var dir), the test runner's excepted."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes() and b"Z" not in _state(entry):
                found.append(int(entry.name))
        except OSError:
            continue  # gone, or not ours
    return found


def _state(entry: Path) -> bytes:
    return (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def var(tmp_path_factory):
    var = tmp_path_factory.mktemp("serve-var")
    env = server_env(var, 0)
    _manage(env, "migrate", "--noinput")
    _manage(env, "demo_setup")
    return var


def start(var: Path, port: int, *flags: str, log: Path) -> subprocess.Popen:
    env = server_env(var, port, MEDIASTORE_BIND=f"127.0.0.1:{port}")
    return subprocess.Popen([sys.executable, "manage.py", "serve", *flags], cwd=ROOT, env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)


def wait_for(log: Path, text: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    pytest.fail(f"serve never said {text!r}:\n" + log.read_text(errors="replace")[-3000:])


def stop(server: subprocess.Popen, *, twice: bool) -> int:
    server.send_signal(signal.SIGINT)
    if twice:
        time.sleep(0.3)  # inside the grace period
        server.send_signal(signal.SIGINT)
    return server.wait(timeout=STOP_SECONDS)


ROUNDS = [  # (flags, wait until ready, second Ctrl-C)
    (["--no-worker"], True, False),
    (["--no-worker"], True, True),
    (["--no-worker"], False, False),
    (["--no-worker"], True, False),
    (["--no-worker"], False, True),
    (["--no-worker"], True, True),
    ([], True, False),  # with the worker and beat
    ([], True, True),
]


def test_serve_stops_clean_every_time(var, tmp_path):
    for number, (flags, ready, twice) in enumerate(ROUNDS):
        port = _free_port()
        log = tmp_path / f"round-{number}.log"
        server = start(var, port, *flags, log=log)
        wait_for(log, "Mediastore is ready" if ready else "Starting on")  # else: stopped while gunicorn starts
        assert stop(server, twice=twice) == 0, log.read_text(errors="replace")[-3000:]
        deadline = time.monotonic() + 5  # a killed orphan is reaped by init, not by us
        while processes_with(str(var)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert processes_with(str(var)) == [], f"round {number} left processes behind"
        assert port_free(port), f"round {number} left port {port} bound"


def test_the_demo_keys_are_printed_once_the_server_answers(var, tmp_path):
    port = _free_port()
    log = tmp_path / "serve.log"
    server = start(var, port, "--no-worker", log=log)
    try:
        wait_for(log, "Mediastore is ready")
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
    finally:
        stop(server, twice=False)
    output = log.read_text()
    banner = output[output.index("Mediastore is ready"):]
    key = (var / "demo-api-key").read_text().strip()
    service_key = (var / "demo-service-key").read_text().strip()
    assert f"demo API key:     {key}  (stored in {var / 'demo-api-key'})" in banner
    assert f"curl -H 'Authorization: Bearer {key}' http://127.0.0.1:{port}/api/v1/storage/usage" in banner
    assert f"demo service key: {service_key}" in banner
    # Printed after the first /readyz answered, so the children's start-up logs come before it.


def last_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip() and not line.startswith("make")]
    return lines[-1]


@pytest.fixture
def taken_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_serve_on_a_taken_port_exits_non_zero_with_one_clear_last_line(var, taken_port):
    env = server_env(var, taken_port, MEDIASTORE_BIND=f"127.0.0.1:{taken_port}")
    result = subprocess.run([sys.executable, "manage.py", "serve"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert last_line(result.stdout + result.stderr) == f"port {taken_port} is in use; set MEDIASTORE_BIND"
    assert processes_with(str(var)) == []


def test_make_run_on_a_taken_port_exits_non_zero(var, taken_port):
    env = server_env(var, taken_port, MEDIASTORE_BIND=f"127.0.0.1:{taken_port}")
    env = {k: v for k, v in env.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}  # as typed, not nested
    # `-o install`: the environment the suite runs in is installed already (and may be shared).
    result = subprocess.run(["make", "-o", "install", "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert last_line(output) == f"port {taken_port} is in use; set MEDIASTORE_BIND", output[-2000:]
    assert output.rstrip().splitlines()[-1].startswith("make: ***")  # make's own trailer, nothing else
