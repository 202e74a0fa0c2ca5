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

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run gunicorn, a Celery worker and Celery beat until interrupted."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--bind", default=os.environ.get("MEDIASTORE_BIND", "127.0.0.1:8000"))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
        parser.add_argument("--no-worker", action="store_true", help="serve the web app only")

    def handle(self, *args, **options) -> None:
        python = sys.executable
        commands = {
            "web": [python, "-m", "gunicorn", "config.wsgi:application", "--bind", options["bind"],
                    "--workers", str(options["workers"]), "--worker-class", "gthread", "--threads", "4",
                    "--timeout", "300", "--access-logfile", "-"],
        }
        if not options["no_worker"]:
            schedule = str(settings.VAR_DIR / "celerybeat-schedule")
            commands["worker"] = [python, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO",
                                  "--concurrency", "2", "--pool", "threads"]
            commands["beat"] = [python, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
                                "--schedule", schedule]
        processes = {name: subprocess.Popen(cmd) for name, cmd in commands.items()}
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
