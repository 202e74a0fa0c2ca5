"""The Celery app: Redis when REDIS_URL/CELERY_BROKER_URL is set, else a file-based broker.

The file-based broker (kombu's filesystem transport under var/celery/) needs no server, so
`make run` gets a real worker and beat on a fresh machine.
"""
from __future__ import annotations

import os
from pathlib import Path

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.conf import settings  # noqa: E402

app = Celery("mediastore")


def _broker_options() -> dict:
    if settings.CELERY_BROKER_URL:
        return {"broker_url": settings.CELERY_BROKER_URL}
    folder = Path(settings.CELERY_BROKER_DIR)
    for sub in ("out", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {
        "broker_url": "filesystem://",
        "broker_transport_options": {
            "data_folder_in": str(folder / "out"),
            "data_folder_out": str(folder / "out"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),  # else kombu writes ./control in the working directory
            "store_processed": False,
        },
    }


app.conf.update(
    **_broker_options(),
    task_always_eager=settings.CELERY_TASK_ALWAYS_EAGER,
    task_eager_propagates=True,
    task_ignore_result=True,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    timezone="UTC",
    beat_schedule=settings.CELERY_BEAT_SCHEDULE,
    beat_schedule_filename=str(Path(settings.VAR_DIR) / "celerybeat-schedule"),
)
app.autodiscover_tasks()


@signals.setup_logging.connect
def _logging(**kwargs) -> None:  # noqa: ANN003
    """The worker and beat log as the web server does (LOG_FORMAT), instead of Celery's own format."""
    import logging.config

    logging.config.dictConfig(settings.LOGGING)


@signals.task_prerun.connect
def _task_started(task=None, **kwargs) -> None:  # noqa: ANN001, ANN003
    from config import logs

    task.request.log_context = logs.start_context()
    logs.bind(task=task.name)


@signals.task_postrun.connect
def _task_finished(task=None, **kwargs) -> None:  # noqa: ANN001, ANN003
    from config import logs

    token = getattr(task.request, "log_context", None)
    if token is not None:
        logs.end_context(token)
