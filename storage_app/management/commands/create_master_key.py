"""Create (or rotate) the local master key file used when MEDIA_MASTER_KEYS is not set.

`make run` calls this with --if-missing so the embedded default encrypts at rest from the
first start. In production set MEDIA_MASTER_KEYS from a secret store instead.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from storage_app.crypto import Keyring, generate_key_string


class Command(BaseCommand):
    help = "Write a new master key to MEDIA_MASTER_KEYS_FILE (var/master-keys), or print one."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--if-missing", action="store_true", help="do nothing when a key already exists")
        parser.add_argument("--rotate", action="store_true",
                            help="put a new current key in front of the existing ones (old objects stay readable)")
        parser.add_argument("--print", action="store_true", dest="print_only",
                            help="print a new key for MEDIA_MASTER_KEYS instead of writing the file")

    def handle(self, *args, **options) -> None:
        key_id = "k" + datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
        if options["print_only"]:
            self.stdout.write(generate_key_string(key_id))
            return
        if os.environ.get("MEDIA_MASTER_KEYS"):
            if not options["if_missing"]:
                raise CommandError("MEDIA_MASTER_KEYS is set in the environment; rotate it there.")
            return
        path = settings.MEDIA_MASTER_KEYS_FILE
        existing = path.read_text().strip() if path.exists() else ""
        if existing and options["if_missing"]:
            return
        if existing and not options["rotate"]:
            raise CommandError(f"{path} already holds keys; use --rotate to add a new current key.")
        value = generate_key_string(key_id) + ("," + existing if existing else "")
        Keyring.parse(value)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
        path.chmod(0o600)
        self.stderr.write(f"Created master key {key_id} in {path} (MEDIA_MASTER_KEYS is not set). "
                          "Back it up: files encrypted with it cannot be read without it.")
