"""What every lifecycle command shares: --dry-run, --org, --batch-size, a progress bar, a summary.

A command parses its arguments, calls its `media_app.lifecycle` function (the one its Celery
task calls) and prints what the function reports: one line per finding, then one summary line.
The progress bar (tqdm, on stderr) is shown only when stdout is a terminal.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from accounts.models import Organization
from media_app.lifecycle import BATCH_SIZE, JobResult


class LifecycleCommand(BaseCommand):
    job: Callable[..., JobResult]
    per_organization = True  # offers --org
    unit = "rows"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Change nothing; report what would be done.")
        if self.per_organization:
            parser.add_argument("--org", metavar="SLUG_OR_ID", help="Only this organization.")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, metavar="N",
                            help=f"Rows claimed per transaction (default {BATCH_SIZE}).")

    def job_options(self, options: dict) -> dict:
        """Extra keyword arguments for the job from this command's own options."""
        return {}

    def handle(self, *args, **options) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        kwargs = {"dry_run": options["dry_run"], "batch_size": options["batch_size"], **self.job_options(options)}
        if self.per_organization and options.get("org"):
            kwargs["organization"] = organization_named(options["org"])
        with self.progress_bar() as progress:
            result = type(self).job(progress=progress, **kwargs)
        for line in result.details():
            self.stdout.write(line)
        self.stdout.write(result.summary())

    @contextmanager
    def progress_bar(self) -> Iterator[Callable[[int], object] | None]:
        if not self.stdout.isatty():
            yield None
            return
        with tqdm(desc=self.job_name, unit=f" {self.unit}", file=sys.stderr, leave=False) as bar:
            yield bar.update

    @property
    def job_name(self) -> str:
        return type(self).__module__.rsplit(".", 1)[-1]


def organization_named(value: str) -> Organization:
    """An organization by slug, or by id when `value` is a number; CommandError when unknown."""
    rows = Organization.objects.filter(slug=value)
    if value.isdigit():
        rows = Organization.objects.filter(pk=int(value)) | rows
    organization = rows.first()
    if organization is None:
        raise CommandError(f"No organization {value!r}.")
    return organization
