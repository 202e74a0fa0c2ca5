"""The lifecycle's two other callers: `manage.py` commands and the Celery tasks beat runs."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from media_app import tasks
from media_app.models import JobRun, MediaFile, SourceCleanup
from quotas.models import Quota
from tests.media_app.test_lifecycle import (
    compute_keys, compute_object, deleted, fresh, object_keys, prepared, stored, stray_object,
)

ROOT = Path(__file__).resolve().parents[2]
JOBS = ["expire_media", "purge_media", "cleanup_sources", "expire_uploads", "recalculate_quotas",
        "reconcile_storage"]


def run(*args: str, tty: bool = False) -> str:
    out = TTY() if tty else io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def work(alice, charlie):
    """Something for every job to do."""
    expired, to_purge, abandoned = stored(alice), deleted(alice, stored(alice)), prepared(alice, 300)
    MediaFile.objects.filter(pk=expired.pk).update(retain_until=timezone.now())
    MediaFile.objects.filter(pk=abandoned.pk).update(upload_expires_at=timezone.now())
    source = compute_object("gen/a.png")
    SourceCleanup.objects.create(storage_key=source, delete_after=timezone.now())
    Quota.objects.filter(organization=charlie.organization).update(file_count=7)
    stray = stray_object(alice.organization.pk)
    return {"expired": expired, "to_purge": to_purge, "abandoned": abandoned, "source": source, "stray": stray}


def snapshot() -> tuple:
    rows = tuple(MediaFile.objects.order_by("pk").values_list("pk", "status", "storage_error", "object_missing_at"))
    quotas = tuple(Quota.objects.order_by("pk").values_list("used_bytes", "reserved_bytes", "file_count"))
    cleanups = tuple(SourceCleanup.objects.order_by("pk").values_list("done_at", "attempts", "delete_after"))
    return rows, quotas, cleanups, object_keys(), compute_keys()


@pytest.mark.parametrize("job", JOBS)
def test_dry_run_changes_nothing_and_says_what_it_would_do(work, job):
    before = snapshot()
    extra = ["--fix", "--grace", "0"] if job == "reconcile_storage" else []
    output = run(job, "--dry-run", *extra)
    assert snapshot() == before
    lines = output.splitlines()
    assert lines[-1].startswith(f"{job} (dry run): ")
    expected = {
        "expire_media": "would expire 1 file ",
        "purge_media": "would purge 1 file,",
        "cleanup_sources": "would delete 1 ingested source",
        "expire_uploads": "would expire 1 abandoned upload ",
        "recalculate_quotas": "1 would be corrected",
        "reconcile_storage": "1 stray object (would delete 1)",
    }[job]
    assert expected in lines[-1]


def test_each_command_does_its_job_and_ends_with_one_summary_line(work, alice, charlie):
    assert run("expire_media").splitlines() == ["expire_media: expired 1 file (%d bytes) in 1 organization."
                                                % work["expired"].bytes]
    assert fresh(work["expired"]).status == "deleted"
    assert run("expire_uploads").splitlines()[-1] == (
        "expire_uploads: expired 1 abandoned upload (300 bytes of reservations).")
    assert run("purge_media").splitlines() == ["purge_media: purged 2 files, kept 0 still used by a live alias."]
    assert fresh(work["to_purge"]).status == "purged"
    assert run("cleanup_sources") == "cleanup_sources: deleted 1 ingested source.\n"
    assert compute_keys() == set()
    assert run("recalculate_quotas").splitlines() == [
        "globex: file_count 7 -> 0", "recalculate_quotas: checked 2 organizations, 1 corrected."]
    assert run("reconcile_storage").splitlines()[-1] == (
        "reconcile_storage: checked 1 object: 0 stray objects; 0 rows missing their object (0 newly marked).")
    output = run("reconcile_storage", "--fix", "--grace", "0").splitlines()
    assert output == [f"stray object {work['stray']}", "reconcile_storage: checked 1 object: 1 stray object "
                      "(1 deleted); 0 rows missing their object (0 newly marked)."]
    assert work["stray"] not in object_keys()


def test_org_takes_a_slug_or_an_id_and_limits_the_work(work, alice, charlie):
    other = stored(charlie)
    MediaFile.objects.filter(pk=other.pk).update(retain_until=timezone.now())
    assert "expired 1 file " in run("expire_media", "--org", "globex")
    assert fresh(other).status == "deleted" and fresh(work["expired"]).status == "active"
    assert "expired 1 file " in run("expire_media", "--org", str(alice.organization.pk))
    assert fresh(work["expired"]).status == "deleted"
    assert run("recalculate_quotas", "--org", "acme").endswith("checked 1 organization, 0 corrected.\n")


def test_bad_arguments_are_command_errors(db):
    with pytest.raises(CommandError, match="No organization 'nope'"):
        run("purge_media", "--org", "nope")
    with pytest.raises(CommandError, match="--batch-size"):
        run("expire_media", "--batch-size", "0")
    with pytest.raises(CommandError):
        run("cleanup_sources", "--org", "acme")  # sources are not an organization's files


def test_a_small_batch_size_still_does_everything(alice):
    files = [deleted(alice, stored(alice)) for _ in range(5)]
    assert "purged 5 files" in run("purge_media", "--batch-size", "2")
    assert {fresh(media).status for media in files} == {"purged"}


def test_a_progress_bar_only_on_a_terminal(alice, capsys):
    for _ in range(3):
        deleted(alice, stored(alice))
    run("purge_media")
    assert capsys.readouterr().err == ""
    deleted(alice, stored(alice))
    output = run("purge_media", tty=True)
    assert "purge_media" in capsys.readouterr().err  # tqdm draws on stderr
    assert output.splitlines()[-1].startswith("purge_media: purged 1 file")


# -- tasks --------------------------------------------------------------------------------
@pytest.mark.parametrize("job", JOBS)
def test_each_task_runs_its_job_and_records_the_run(work, job, monkeypatch):
    # A clock that stands still except while the job runs, which takes five minutes of it: the
    # record must say when the job started and when it finished, not the same moment twice.
    started = timezone.now()
    clock = [started]
    monkeypatch.setattr(timezone, "now", lambda: clock[0])
    job_function = getattr(tasks.lifecycle, job)

    def five_minute_job(**kwargs):
        result = job_function(**kwargs)
        clock[0] = started + timedelta(minutes=5)
        return result

    monkeypatch.setattr(tasks.lifecycle, job, five_minute_job)
    result = getattr(tasks, job).apply().get()
    run_ = JobRun.objects.get(name=job)
    assert run_.runs == 1 and run_.last_result == result and result["job"] == job and result["dry_run"] is False
    assert (run_.last_started_at, run_.last_finished_at) == (started, started + timedelta(minutes=5))


def test_tasks_do_the_work_and_take_an_organization_id(work, alice, charlie):
    assert tasks.expire_media.apply(kwargs={"organization_id": charlie.organization.pk}).get()["expired"] == 0
    assert tasks.expire_media.apply(kwargs={"organization_id": alice.organization.pk}).get()["expired"] == 1
    assert tasks.purge_media.apply().get()["purged"] == 2
    assert JobRun.objects.get(name="purge_media").last_result["keys"]


def test_scheduled_reconcile_deletes_stray_objects_only_when_configured(work, settings):
    assert tasks.reconcile_storage.apply().get()["stray_deleted"] == 0
    settings.MEDIA_RECONCILE_GRACE = 0
    assert tasks.reconcile_storage.apply().get()["stray"] == 1 and work["stray"] in object_keys()
    settings.MEDIA_RECONCILE_FIX = True
    assert tasks.reconcile_storage.apply().get()["stray_deleted"] == 1 and work["stray"] not in object_keys()


# -- the schedule -------------------------------------------------------------------------
def test_beat_schedules_every_job(settings):
    from config.celery import app

    expected = {"expire_media": 900, "purge_media": 900, "cleanup_sources": 300, "expire_uploads": 600,
                "recalculate_quotas": 6 * 3600, "reconcile_storage": 24 * 3600}
    for name, seconds in expected.items():
        entry = app.conf.beat_schedule[name]
        assert entry["task"] == f"media_app.tasks.{name}" and entry["task"] in app.tasks
        assert entry["schedule"] == seconds == settings.CELERY_BEAT_SCHEDULE[name]["schedule"]


def test_each_interval_is_overridable_from_the_environment():
    code = ("from django.conf import settings; s = settings.CELERY_BEAT_SCHEDULE; "
            "print(s['purge_media']['schedule'], s['reconcile_storage']['schedule'], settings.MEDIA_RECONCILE_GRACE)")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "MEDIASTORE_SCHEDULE_PURGE_MEDIA": "1m",
           "MEDIASTORE_SCHEDULE_RECONCILE_STORAGE": "12h", "MEDIA_RECONCILE_GRACE": "2h"}
    result = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["60.0", "43200.0", "7200.0"], result.stderr
