"""Celery tasks: thin callers of services.

Beat runs the lifecycle jobs on `settings.CELERY_BEAT_SCHEDULE`; each task calls the same
function as its `manage.py` command and records what it did as a `JobRun`. The jobs claim
their rows atomically, so overlapping runs (a slow run and the next tick, or a run and an
operator's command) never do the same piece of work twice.
"""
from __future__ import annotations

from collections.abc import Callable

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from accounts.models import Organization
from media_app import jobs, lifecycle


@shared_task(name="media_app.tasks.heartbeat")
def heartbeat() -> dict:
    """Records that the worker and beat are alive (visible as JobRun 'heartbeat')."""
    return jobs.job_record(name="heartbeat", started_at=timezone.now(), result={"ok": True})


def _run(job: Callable[..., lifecycle.JobResult], organization_id: int | None = None, **kwargs) -> dict:
    if organization_id is not None:
        kwargs["organization"] = Organization.objects.get(pk=organization_id)
    started_at = timezone.now()
    with jobs.job_metered(name=job.__name__) as metered:
        result = metered(job(**kwargs))
    return jobs.job_record(name=result.job, started_at=started_at, result=result.as_dict())


@shared_task(name="media_app.tasks.expire_media")
def expire_media(organization_id: int | None = None) -> dict:
    return _run(lifecycle.expire_media, organization_id)


@shared_task(name="media_app.tasks.purge_media")
def purge_media(organization_id: int | None = None) -> dict:
    return _run(lifecycle.purge_media, organization_id)


@shared_task(name="media_app.tasks.cleanup_sources")
def cleanup_sources() -> dict:
    return _run(lifecycle.cleanup_sources)


@shared_task(name="media_app.tasks.expire_uploads")
def expire_uploads(organization_id: int | None = None) -> dict:
    return _run(lifecycle.expire_uploads, organization_id)


@shared_task(name="media_app.tasks.recalculate_quotas")
def recalculate_quotas(organization_id: int | None = None) -> dict:
    return _run(lifecycle.recalculate_quotas, organization_id)


@shared_task(name="media_app.tasks.reconcile_storage")
def reconcile_storage(organization_id: int | None = None, fix: bool | None = None) -> dict:
    """Reports and marks; deletes stray objects only with MEDIA_RECONCILE_FIX (or `fix=True`)."""
    return _run(lifecycle.reconcile_storage, organization_id,
                fix=settings.MEDIA_RECONCILE_FIX if fix is None else fix)
