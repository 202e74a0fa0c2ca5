"""First-run setup for `make run`: a demo organization, user and key if there are none."""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from accounts.models import ApiKey, Membership, Organization
from accounts.services import api_key_create, key_prefix, membership_add, organization_create

DEMO_KEY_FILE = "demo-api-key"


class Command(BaseCommand):
    help = "Create a demo organization, user and API key unless they exist; print the key and URL."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--url", default="http://127.0.0.1:8000")

    def handle(self, *args, **options) -> None:
        key_file = settings.VAR_DIR / DEMO_KEY_FILE
        secret = key_file.read_text().strip() if key_file.exists() else ""
        if not secret or not ApiKey.objects.filter(prefix=key_prefix(secret), revoked_at=None).exists():
            secret = self._create()
            key_file.write_text(secret + "\n")
            key_file.chmod(0o600)
        url = options["url"]
        self.stdout.write(
            f"\nMediastore is starting on {url}\n"
            f"  demo API key: {secret}\n"
            f"  try: curl -H 'Authorization: Bearer {secret}' {url}/api/v1/storage/usage\n"
            f"  admin: {url}/admin/ (python manage.py createsuperuser)\n"
        )

    def _create(self) -> str:
        org = Organization.objects.filter(slug="demo").first() or organization_create(
            name="Demo", slug="demo", plan_slug="organization")
        user, _ = get_user_model().objects.get_or_create(username="demo")
        membership_add(organization=org, user=user, role=Membership.Role.OWNER)
        return api_key_create(organization=org, user=user, name="make run demo key").secret
