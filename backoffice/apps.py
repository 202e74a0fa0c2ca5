from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    """The Django admin for operators: one more surface, calling the same services as the API."""

    name = "backoffice"
    verbose_name = "Back office"
