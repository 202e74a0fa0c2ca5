from django.core.management.base import CommandParser

from media_app import lifecycle
from media_app.management.commands._lifecycle import LifecycleCommand


class Command(LifecycleCommand):
    help = ("Compare the objects under organizations/ with the rows: report objects no row keeps (older than "
            "the grace period; deleted with --fix), mark active rows whose object is missing, and remove what "
            "unfinished writes left (temp files, S3 multipart uploads) older than the grace period.")
    job = staticmethod(lifecycle.reconcile_storage)
    unit = "objects"

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--fix", action="store_true", help="Delete the stray objects found.")
        parser.add_argument("--grace", type=float, metavar="SECONDS",
                            help="Only objects at least this old are stray (default MEDIA_RECONCILE_GRACE).")

    def job_options(self, options: dict) -> dict:
        return {"fix": options["fix"], "grace": options["grace"]}
