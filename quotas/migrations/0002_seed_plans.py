from django.db import migrations

GIB = 1024**3
MIB = 1024**2

PLANS = [
    {"slug": "individual", "name": "Individual", "storage_limit_bytes": 5 * GIB, "max_file_bytes": 100 * MIB,
     "retention_days": None, "max_retention_days": 365, "allow_keep_forever": False,
     "allowed_categories": ["general", "data_source", "profile_image"]},
    {"slug": "organization", "name": "Organization", "storage_limit_bytes": 100 * GIB, "max_file_bytes": 5 * GIB,
     "retention_days": None, "max_retention_days": None, "allow_keep_forever": True,
     "allowed_categories": ["general", "data_source", "profile_image"]},
]


def seed(apps, schema_editor):
    Plan = apps.get_model("quotas", "Plan")
    for plan in PLANS:
        Plan.objects.update_or_create(slug=plan["slug"], defaults=plan)


def unseed(apps, schema_editor):
    apps.get_model("quotas", "Plan").objects.filter(slug__in=[p["slug"] for p in PLANS]).delete()


class Migration(migrations.Migration):
    dependencies = [("quotas", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
