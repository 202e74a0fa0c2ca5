from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """Holds the project-wide management commands (`serve`, `demo_setup`)."""

    name = "config"
    verbose_name = "Mediastore"
