from django.apps import AppConfig


class StorageAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "storage_app"
    verbose_name = "Storage"
