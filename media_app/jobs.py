"""Bookkeeping for background jobs: when each last ran and what it did."""
from __future__ import annotations

from datetime import datetime

from django.db.models import F
from django.utils import timezone

from media_app.models import JobRun


def job_record(*, name: str, started_at: datetime, result: dict) -> dict:
    """Record a finished run; the caller took `started_at` before the job began, since only
    it knows when that was (an operator reads the difference as the run's duration)."""
    JobRun.objects.get_or_create(name=name)
    JobRun.objects.filter(name=name).update(last_started_at=started_at, last_finished_at=timezone.now(),
                                            last_result=result, runs=F("runs") + 1)
    return result
