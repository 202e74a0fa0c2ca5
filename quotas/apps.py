from django.apps import AppConfig


class QuotasConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "quotas"
    verbose_name = "Quotas"

    def ready(self) -> None:
        from quotas import signals  # noqa: F401 - connects the receivers
