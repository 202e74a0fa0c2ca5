"""Bookkeeping for background jobs: when each last ran and what it did."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db.models import F
from django.utils import timezone

from config import metrics
from media_app.models import JobRun

# What a job's result counts as its items (mediastore_job_items_total).
ITEMS = {"expire_media": "expired", "purge_media": "purged", "cleanup_sources": "deleted",
         "expire_uploads": "expired", "recalculate_quotas": "checked", "reconcile_storage": "objects"}


def job_record(*, name: str, started_at: datetime, result: dict) -> dict:
    """Record a finished run; the caller took `started_at` before the job began, since only
    it knows when that was (an operator reads the difference as the run's duration)."""
    JobRun.objects.get_or_create(name=name)
    JobRun.objects.filter(name=name).update(last_started_at=started_at, last_finished_at=timezone.now(),
                                            last_result=result, runs=F("runs") + 1)
    return result


@contextmanager
def job_metered(*, name: str) -> Iterator[Callable[[Any], Any]]:
    """Count a run, its duration, and the items of the result handed to the yielded function.

    A run that raises is counted `failed`; one that finishes is `ok` even when some items failed
    (those are counted in mediastore_job_item_errors_total)."""
    started, outcome = time.perf_counter(), "failed"

    def record(result: Any) -> Any:
        metrics.JOB_ITEMS.labels(job=name).inc(getattr(result, ITEMS.get(name, ""), 0) or 0)
        metrics.JOB_ITEM_ERRORS.labels(job=name).inc(getattr(result, "failed", 0))
        return result

    try:
        yield record
        outcome = "ok"
    finally:
        metrics.JOB_RUNS.labels(job=name, outcome=outcome).inc()
        metrics.JOB_SECONDS.labels(job=name).observe(time.perf_counter() - started)
