"""Celery tasks: thin callers of services."""
from __future__ import annotations

from celery import shared_task

from media_app import jobs


@shared_task(name="media_app.tasks.heartbeat")
def heartbeat() -> dict:
    """Records that the worker and beat are alive (visible as JobRun 'heartbeat')."""
    return jobs.job_record(name="heartbeat", result={"ok": True})
