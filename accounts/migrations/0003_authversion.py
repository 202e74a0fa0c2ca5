from django.db import migrations, models


def first_row(apps, schema_editor) -> None:  # noqa: ANN001
    apps.get_model("accounts", "AuthVersion").objects.get_or_create(pk=1, defaults={"version": 0})


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0002_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuthVersion",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("version", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(first_row, migrations.RunPython.noop),
    ]
