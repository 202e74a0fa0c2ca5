"""Let the web app's upload page send large files straight to the S3 bucket.

The page PUTs to presigned URLs of the bucket and reads each part's ETag, which a browser does only
when the bucket's CORS rules allow the site's origin. This sets one rule (ID
`mediastore-direct-uploads`) and keeps the bucket's others. MinIO has no per-bucket CORS: it answers
every origin unless `MINIO_API_CORS_ALLOW_ORIGIN` narrows it, so there is nothing to run there.
"""
from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config.errors import ServiceError
from storage_app.backends import get_store


class Command(BaseCommand):
    help = "Allow the site's origins to upload straight to the S3 bucket (the bucket's CORS rule)."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--origin", action="append", dest="origins", default=[],
                            help="an origin the pages are served from, e.g. https://media.example.com (repeatable); "
                                 "default: CSRF_TRUSTED_ORIGINS and MEDIA_CORS_ALLOWED_ORIGINS")

    def handle(self, *args, **options) -> None:
        store = get_store()
        if not store.takes_direct_uploads():
            self.stdout.write("Nothing to configure: uploads to this backend pass through the server "
                              f"(MEDIA_STORAGE_BACKEND={settings.MEDIA_STORAGE_BACKEND}, "
                              f"MEDIA_ENCRYPTION={settings.MEDIA_ENCRYPTION}).")
            return
        origins = options["origins"] or [*settings.CSRF_TRUSTED_ORIGINS, *settings.MEDIA_CORS_ALLOWED_ORIGINS]
        origins = list(dict.fromkeys(origin.rstrip("/") for origin in origins if origin))
        if not origins:
            raise CommandError("Name the origin the web pages are served from: --origin https://media.example.com "
                               "(or set CSRF_TRUSTED_ORIGINS).")
        for origin in origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise CommandError(f"{origin!r} is not an origin (scheme://host[:port]).")
        try:
            rules = store.allow_browser_uploads(origins)
        except ServiceError as exc:
            raise CommandError(f"The bucket's CORS rules could not be set: {exc}") from exc
        self.stdout.write(f"Bucket {store.bucket_name} now allows uploads from {', '.join(origins)}:")
        self.stdout.write(json.dumps({"CORSRules": rules}, indent=2))
