from media_app import lifecycle
from media_app.management.commands._lifecycle import LifecycleCommand


class Command(LifecycleCommand):
    help = "Mark active files whose retain_until has passed as deleted and release their quota."
    job = staticmethod(lifecycle.expire_media)
