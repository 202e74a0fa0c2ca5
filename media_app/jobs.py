"""Bookkeeping for background jobs: when each last ran and what it did."""
from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from media_app.models import JobRun


def job_record(*, name: str, result: dict) -> dict:
    now = timezone.now()
    JobRun.objects.get_or_create(name=name)
    JobRun.objects.filter(name=name).update(last_started_at=now, last_finished_at=timezone.now(),
                                            last_result=result, runs=F("runs") + 1)
    return result
