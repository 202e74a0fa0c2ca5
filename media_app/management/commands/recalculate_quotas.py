from media_app import lifecycle
from media_app.management.commands._lifecycle import LifecycleCommand


class Command(LifecycleCommand):
    help = "Recount each organization's bytes, reservations and files from its rows; fix and report drift."
    job = staticmethod(lifecycle.recalculate_quotas)
    unit = "organizations"
