from django.apps import AppConfig


class StorageAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "storage_app"
    verbose_name = "Storage"

    def ready(self) -> None:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        from storage_app.backends import backend_class
        from storage_app.crypto import Keyring

        backend_class(settings.MEDIA_STORAGE_BACKEND)  # a backend that cannot be loaded stops start-up

        if settings.MEDIA_MASTER_KEYS:  # a bad key stops start-up, naming the variable
            try:
                Keyring.parse(settings.MEDIA_MASTER_KEYS)
            except ValueError as exc:
                raise ImproperlyConfigured(f"MEDIA_MASTER_KEYS is not valid: {exc}") from None
