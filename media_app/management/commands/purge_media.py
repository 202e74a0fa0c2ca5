from django.core.management.base import CommandParser

from media_app import lifecycle
from media_app.management.commands._lifecycle import LifecycleCommand


class Command(LifecycleCommand):
    help = ("Delete the objects of deleted files older than MEDIA_PURGE_GRACE and mark them purged; "
            "an object a live alias still reads is kept.")
    job = staticmethod(lifecycle.purge_media)

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--grace", type=float, metavar="SECONDS",
                            help="Only files deleted at least this long ago (default MEDIA_PURGE_GRACE).")

    def job_options(self, options: dict) -> dict:
        return {"grace": options["grace"]}
