from media_app import lifecycle
from media_app.management.commands._lifecycle import LifecycleCommand


class Command(LifecycleCommand):
    help = "Delete ingested compute/ sources whose delay has passed; failures are retried with backoff."
    job = staticmethod(lifecycle.cleanup_sources)
    per_organization = False  # sources are compute/ keys, not an organization's files
