from media_app import lifecycle
from media_app.management.commands._lifecycle import LifecycleCommand


class Command(LifecycleCommand):
    help = "Expire pending uploads past their upload window: release the reservation, delete any partial object."
    job = staticmethod(lifecycle.expire_uploads)
