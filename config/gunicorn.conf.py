"""gunicorn's settings for Mediastore: `gunicorn -c config/gunicorn.conf.py`.

`manage.py serve` (`make run`), the Dockerfile and docker-compose.yml start the web server with this
file, so the defaults are the same everywhere; command-line flags and GUNICORN_CMD_ARGS still win.
Read before the project is importable, so it reads the environment itself (and fails as loudly).
"""
import os


def _whole(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip() or str(default)
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"{name}={value!r} must be a whole number of at least 1.")
    return int(value)


wsgi_app = "config.wsgi:application"
bind = [os.environ.get("MEDIASTORE_BIND", "127.0.0.1:8000")]
workers = _whole("WEB_CONCURRENCY", 2)
# Threads, not processes: a thread waiting on a slow client costs a small stack. 32 per worker keep
# /healthz and other callers served while uploads trickle in (README, Limits); each thread may hold
# a database connection (DATABASE_CONN_MAX_AGE), so workers x threads must fit PostgreSQL's max_connections.
worker_class = "config.gunicorn_worker.MediastoreWorker"  # gthread; errors as JSON, closes off the main loop
threads = _whole("MEDIASTORE_THREADS", 32)
timeout = 300
accesslog = "-"
if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
    # One JSON object per line: the app logs each request itself (logger mediastore.access, with the
    # request id, organization and route), and gunicorn's own messages go through the same formatter.
    accesslog = None
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "config.logs.JsonFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
        "loggers": {"gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False}},
    }


def child_exit(server, worker) -> None:  # noqa: ANN001 - gunicorn's hook signature
    """A dead worker's live gauges stop counting in /metrics (PROMETHEUS_MULTIPROC_DIR)."""
    from config.metrics import mark_process_dead

    mark_process_dead(worker.pid)
