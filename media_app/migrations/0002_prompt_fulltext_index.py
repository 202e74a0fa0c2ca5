"""A GIN full-text index on prompts, PostgreSQL only (SQLite searches with a plain contains).

The expression matches `media_app.selectors.media_search_filter` so the planner uses it.
"""
from django.db import migrations

INDEX = "media_prompt_fts"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON media_app_mediafile USING gin (to_tsvector('english', prompt))")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("media_app", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
