"""Per-file limits that fit video: individual 2 GiB, organization 10 GiB (were 100 MiB and 5 GiB).

They apply in full to resumable (tus) and direct multipart uploads; one-request uploads stay capped
by MEDIA_MAX_BYTES. A plan an operator has changed from the old seeded value is left as it is.
"""
from django.db import migrations

GIB = 1024**3
MIB = 1024**2

LIMITS = {"individual": (100 * MIB, 2 * GIB), "organization": (5 * GIB, 10 * GIB)}


def raise_limits(apps, schema_editor):
    Plan = apps.get_model("quotas", "Plan")
    for slug, (old, new) in LIMITS.items():
        Plan.objects.filter(slug=slug, max_file_bytes=old).update(max_file_bytes=new)


def lower_limits(apps, schema_editor):
    Plan = apps.get_model("quotas", "Plan")
    for slug, (old, new) in LIMITS.items():
        Plan.objects.filter(slug=slug, max_file_bytes=new).update(max_file_bytes=old)


class Migration(migrations.Migration):
    dependencies = [("quotas", "0003_plan_rate_limits")]
    operations = [migrations.RunPython(raise_limits, lower_limits)]
