"""Serve the web app (gunicorn), a Celery worker and beat together; Ctrl-C stops all three.

This is what `make run` runs. In production run the three as separate processes
(see docker-compose.yml); this command is for one machine.

Each child runs in a process group of its own: the terminal's Ctrl-C reaches only this command,
which stops the children once (SIGTERM), and after the grace period kills each whole group
(SIGKILL), so a gunicorn worker whose master is gone cannot keep the port. A second Ctrl-C
during the shutdown kills them at once. The command exits non-zero when a child exits by itself.
"""
from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

GUNICORN_CONF = settings.BASE_DIR / "config" / "gunicorn.conf.py"
GRACE_SECONDS = 10.0
TICK = 0.2
DEMO_KEY_FILE = "demo-api-key"
DEMO_SERVICE_KEY_FILE = "demo-service-key"


class Command(BaseCommand):
    help = "Run gunicorn, a Celery worker and Celery beat until interrupted."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--bind", default=os.environ.get("MEDIASTORE_BIND", "127.0.0.1:8000"))
        parser.add_argument("--workers", type=int, help="gunicorn workers (default: WEB_CONCURRENCY or 2)")
        parser.add_argument("--threads", type=int, help="threads per worker (default: MEDIASTORE_THREADS or 32)")
        parser.add_argument("--no-worker", action="store_true", help="serve the web app only")
        parser.add_argument("--grace", type=float, default=GRACE_SECONDS,
                            help="seconds the children get to stop before they are killed")

    def handle(self, *args, **options) -> None:
        bind = options["bind"]
        if port_taken(bind):
            self._fail(f"port {port_of(bind)} is in use; set MEDIASTORE_BIND")
        commands = self._commands(options)
        state = {"signals": 0}

        def interrupted(signum, frame) -> None:  # noqa: ANN001
            state["signals"] += 1
            if state["signals"] == 2:
                self.stderr.write("Interrupted again: killing the servers now.")

        signal.signal(signal.SIGINT, interrupted)
        signal.signal(signal.SIGTERM, interrupted)
        # Own process groups: the terminal's Ctrl-C reaches this command only, which stops each child once.
        env = _metrics_environment()
        processes = {name: subprocess.Popen(cmd, cwd=settings.BASE_DIR, env=env, process_group=0)
                     for name, cmd in commands.items()}
        self.stderr.write(f"Starting on http://{bind} with {', '.join(processes)}; Ctrl-C stops.")
        dead = self._run(processes, bind, state)
        if dead:
            self.stderr.write(f"{', '.join(dead)} exited; stopping the rest.")
        stop_all(processes, grace=options["grace"], forced=lambda: state["signals"] >= 2)
        # Stopped: a late Ctrl-C must not turn a clean exit into a kill (Python restores the
        # default handlers while it exits; an ignored signal stays ignored).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if dead:
            if "web" in dead and port_taken(bind):
                self._fail(f"port {port_of(bind)} is in use; set MEDIASTORE_BIND")
            codes = ", ".join(f"{name} {processes[name].returncode}" for name in dead)
            self._fail(f"The server stopped: {codes} (exit status); see the log above.")
        self.stderr.write("Stopped.")

    def _commands(self, options: dict) -> dict[str, list[str]]:
        python = sys.executable
        # Workers, threads, worker class and timeouts: config/gunicorn.conf.py, as in the Docker image.
        web = [python, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "--bind", options["bind"]]
        for flag in ("workers", "threads"):
            if options[flag]:
                web += [f"--{flag}", str(options[flag])]
        commands = {"web": web}
        if not options["no_worker"]:
            schedule = str(settings.VAR_DIR / "celerybeat-schedule")
            commands["worker"] = [python, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO",
                                  "--concurrency", "2", "--pool", "threads"]
            commands["beat"] = [python, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
                                "--schedule", schedule]
        return commands

    def _run(self, processes: dict[str, subprocess.Popen], bind: str, state: dict) -> list[str]:
        """Wait until interrupted (no child died: []) or a child exits (its names)."""
        announced = False
        while not state["signals"]:
            dead = [name for name, proc in processes.items() if proc.poll() is not None]
            if dead:
                return dead
            if not announced and ready(bind):
                announced = True
                self.stdout.write(welcome(bind))
                self.stdout.flush()
            time.sleep(TICK if announced else TICK / 2)
        return []

    def _fail(self, message: str) -> None:
        """The last line a newcomer sees, and a non-zero exit for `make`."""
        self.stderr.write(message)
        self.stderr.flush()
        sys.exit(1)


def _metrics_environment() -> dict[str, str]:
    """The three processes share one PROMETHEUS_MULTIPROC_DIR (default var/prometheus), emptied here
    first: this command starts every process that writes to it, so no file in it is still live."""
    folder = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or settings.VAR_DIR / "prometheus")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    return {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}


def port_of(bind: str) -> str:
    return bind.rsplit(":", 1)[-1] if ":" in bind else "8000"


def port_taken(bind: str) -> bool:
    """Whether gunicorn could not bind `host:port` (a unix socket is left to gunicorn)."""
    if bind.startswith(("unix:", "fd://")) or ":" not in bind:
        return False
    host, port = bind.rsplit(":", 1)
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host, int(port)))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def ready(bind: str) -> bool:
    host, port = bind.rsplit(":", 1)
    host = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}.get(host, host)
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/readyz", timeout=2) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


def welcome(bind: str) -> str:
    """What to try first, once /readyz answers: after the children's start-up logs, not lost among them."""
    url = "http://" + bind.replace("0.0.0.0", "127.0.0.1")
    lines = [f"\nMediastore is ready on {url}"]
    key_file, service_file = settings.VAR_DIR / DEMO_KEY_FILE, settings.VAR_DIR / DEMO_SERVICE_KEY_FILE
    key = _read(key_file)
    if key:
        lines += [f"  demo API key:     {key}  (stored in {_shown(key_file)})",
                  f"  try:  curl -H 'Authorization: Bearer {key}' {url}/api/v1/storage/usage"]
    service_key = _read(service_file)
    if service_key:
        lines.append(f"  demo service key: {service_key}  (stored in {_shown(service_file)})")
    if key:
        lines.append(f"  for the README's examples:  export KEY=$(cat {_shown(key_file)})"
                     + (f" SERVICE_KEY=$(cat {_shown(service_file)})" if service_key else ""))
    lines += [f"  API docs: {url}/docs    admin: {url}/admin/ (python manage.py createsuperuser)",
              "  Ctrl-C stops.\n"]
    return "\n".join(lines)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _shown(path: Path) -> str:
    """`var/demo-api-key` when under the project, else the absolute path."""
    try:
        return str(path.resolve().relative_to(Path(settings.BASE_DIR).resolve()))
    except ValueError:
        return str(path)


def stop_all(processes: dict[str, subprocess.Popen], *, grace: float, forced) -> None:  # noqa: ANN001
    """SIGTERM each child's group; after `grace` (or when `forced()`), SIGKILL what is left of each group."""
    for proc in processes.values():
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and not forced() and any(_group_alive(p) for p in processes.values()):
        time.sleep(TICK / 2)
    for proc in processes.values():
        _signal_group(proc, signal.SIGKILL)
    # Wait until every group is empty: an orphaned grandchild is reaped by init once killed.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_group_alive(p) for p in processes.values()):
        time.sleep(TICK / 4)


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)  # the group outlives its leader while any member is left
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(proc: subprocess.Popen) -> bool:
    proc.poll()  # reap the leader, so its zombie does not count
    try:
        os.killpg(proc.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
