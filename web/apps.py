from django.apps import AppConfig


class WebConfig(AppConfig):
    """The web app for people: gallery, upload, detail, sharing, keys and usage (server-rendered)."""

    name = "web"
