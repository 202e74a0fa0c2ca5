import re
import time

from media_app.ids import media_id_new, media_id_valid
from media_app.models import JobRun


def test_ids_are_prefixed_lowercase_sortable_ulids(settings):
    first = media_id_new()
    time.sleep(0.002)
    second = media_id_new()
    assert re.fullmatch(r"med_[0-9a-hjkmnp-tv-z]{26}", first)
    assert first < second
    assert media_id_valid(first) and not media_id_valid("med_" + "U" * 26)


def test_the_prefix_is_a_setting(settings):
    settings.MEDIA_ID_PREFIX = "jan_"
    assert media_id_new().startswith("jan_")


def test_the_heartbeat_task_records_its_run(db):
    from media_app.tasks import heartbeat

    heartbeat.delay()
    heartbeat.delay()
    run = JobRun.objects.get(name="heartbeat")
    assert run.runs == 2 and run.last_finished_at is not None


def test_beat_schedules_the_heartbeat():
    from config.celery import app

    assert app.conf.beat_schedule["heartbeat"]["task"] == "media_app.tasks.heartbeat"


def test_without_a_broker_url_celery_uses_the_file_based_broker(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env["MEDIASTORE_VAR_DIR"] = str(tmp_path)
    code = "from config.celery import app; print(app.conf.broker_url)"
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "filesystem://", result.stderr
    assert (tmp_path / "celery" / "out").is_dir()


def test_a_job_run_records_when_the_job_started_not_when_it_finished(db, monkeypatch):
    from django.utils import timezone

    from media_app import lifecycle, tasks

    began = {}

    def slow_job(**kwargs) -> lifecycle.JobResult:
        began["at"] = timezone.now()
        time.sleep(0.05)
        return lifecycle.CleanupResult()

    monkeypatch.setattr(lifecycle, "cleanup_sources", slow_job)
    before = timezone.now()
    tasks.cleanup_sources.delay()
    run = JobRun.objects.get(name="cleanup_sources")
    assert before <= run.last_started_at <= began["at"]
    assert (run.last_finished_at - run.last_started_at).total_seconds() >= 0.05
