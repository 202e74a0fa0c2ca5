"""Serve the web app (gunicorn), a Celery worker and beat together; Ctrl-C stops all three.

This is what `make run` runs. In production run the three as separate processes
(see docker-compose.yml); this command is for one machine.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

GUNICORN_CONF = settings.BASE_DIR / "config" / "gunicorn.conf.py"


class Command(BaseCommand):
    help = "Run gunicorn, a Celery worker and Celery beat until interrupted."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--bind", default=os.environ.get("MEDIASTORE_BIND", "127.0.0.1:8000"))
        parser.add_argument("--workers", type=int, help="gunicorn workers (default: WEB_CONCURRENCY or 2)")
        parser.add_argument("--threads", type=int, help="threads per worker (default: MEDIASTORE_THREADS or 32)")
        parser.add_argument("--no-worker", action="store_true", help="serve the web app only")

    def handle(self, *args, **options) -> None:
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
        env = _metrics_environment()
        processes = {name: subprocess.Popen(cmd, cwd=settings.BASE_DIR, env=env) for name, cmd in commands.items()}
        self.stderr.write(f"Serving on http://{options['bind']} with {', '.join(processes)}; Ctrl-C stops.")
        stopping = False

        def stop(signum, frame) -> None:  # noqa: ANN001
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                dead = [name for name, proc in processes.items() if proc.poll() is not None]
                if dead:
                    self.stderr.write(f"{', '.join(dead)} exited; stopping the rest.")
                    break
                time.sleep(0.5)
        finally:
            _terminate(processes.values())


def _metrics_environment() -> dict[str, str]:
    """The three processes share one PROMETHEUS_MULTIPROC_DIR (default var/prometheus), emptied here
    first: this command starts every process that writes to it, so no file in it is still live."""
    folder = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or settings.VAR_DIR / "prometheus")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    return {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}


def _terminate(processes) -> None:  # noqa: ANN001
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in processes:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
