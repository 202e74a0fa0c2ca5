from django.apps import AppConfig


class EventsConfig(AppConfig):
    """Webhooks: the media layer's domain signals, signed and delivered to each organization's endpoints."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "events"
    verbose_name = "Events"

    def ready(self) -> None:
        from events import receivers  # noqa: F401 - connects to media_app.signals
