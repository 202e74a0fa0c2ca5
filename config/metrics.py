"""Every Prometheus metric Mediastore exports, in the bottom layer so that every layer can count.

With PROMETHEUS_MULTIPROC_DIR set (before prometheus_client is first imported), every process
writes its values to files in that folder and `/metrics` adds up the files of all of them: the
gunicorn workers, the Celery worker and beat. gunicorn's `child_exit` hook (config/gunicorn.conf.py)
marks a dead worker's gauges so they stop counting. Without it, `/metrics` shows this process only.

Labels are bounded: routes are the resolver's templates (`v1/media/<str:media_id>`), never raw
paths, and organizations are as many as the deployment has.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest,
)

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_JOB_SECONDS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600)

REQUESTS = Counter("mediastore_http_requests_total", "HTTP requests answered, by route template and status.",
                   ["method", "route", "status"])
REQUEST_SECONDS = Histogram("mediastore_http_request_duration_seconds",
                            "Time to answer an HTTP request (until the view returned), by route template and status.",
                            ["method", "route", "status"], buckets=_LATENCY)
UPLOADED_BYTES = Counter("mediastore_uploaded_bytes_total", "Request body bytes received by upload requests.",
                         ["route"])
DOWNLOADED_BYTES = Counter("mediastore_downloaded_bytes_total", "Response body bytes sent by the application.",
                           ["route"])
UPLOADS_REFUSED = Counter("mediastore_uploads_refused_total",
                          "Uploads refused, by reason: quota, size, type, ssrf, concurrency.", ["reason"])
RATE_LIMITED = Counter("mediastore_rate_limited_total", "Requests answered 429 by a rate limit, by scope kind.",
                       ["scope"])
STORAGE_SECONDS = Histogram("mediastore_storage_operation_duration_seconds",
                            "Storage operations (until the first byte for reads and listings).",
                            ["backend", "operation"], buckets=_LATENCY)
STORAGE_ERRORS = Counter("mediastore_storage_errors_total", "Storage operations that failed (not a missing object).",
                         ["backend", "operation"])
JOB_RUNS = Counter("mediastore_job_runs_total", "Lifecycle job runs, by outcome (ok, failed).", ["job", "outcome"])
JOB_SECONDS = Histogram("mediastore_job_duration_seconds", "Lifecycle job run time.", ["job"], buckets=_JOB_SECONDS)
JOB_ITEMS = Counter("mediastore_job_items_total", "Items a lifecycle job handled (files, objects, organizations).",
                    ["job"])
JOB_ITEM_ERRORS = Counter("mediastore_job_item_errors_total", "Items a lifecycle job failed on.", ["job"])
QUOTA_USED_BYTES = Gauge("mediastore_quota_used_bytes", "Bytes an organization stores, as last recalculated.",
                         ["organization"], multiprocess_mode="mostrecent")
QUOTA_LIMIT_BYTES = Gauge("mediastore_quota_limit_bytes", "An organization's storage limit, as last recalculated.",
                          ["organization"], multiprocess_mode="mostrecent")
QUOTA_FILES = Gauge("mediastore_quota_files", "Files an organization stores, as last recalculated.",
                    ["organization"], multiprocess_mode="mostrecent")
WEBHOOK_DELIVERIES = Counter("mediastore_webhook_deliveries_total", "Webhook delivery attempts, by outcome.",
                             ["event", "outcome"])


@contextmanager
def timed(histogram: Histogram, **labels: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.labels(**labels).observe(time.perf_counter() - started)


def count_refusal(exc: Exception) -> None:
    """Count an upload refused by the quota, a size or type rule, the SSRF guard or the concurrency limit."""
    reason = getattr(exc, "refusal", None)
    if reason:
        UPLOADS_REFUSED.labels(reason=reason).inc()


def exposition() -> tuple[bytes, str]:
    """The text `/metrics` answers: every process's values in multiprocess mode, else this one's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """gunicorn's child_exit: a dead worker's live gauges stop counting."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
