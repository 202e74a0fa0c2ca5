"""First-run setup for `make run`: a demo organization, user, API key and service key if there are none.

The keys are stored in `var/demo-api-key` and `var/demo-service-key`; `manage.py serve` prints
them, with a curl to try, once the server answers (so Celery's banner cannot scroll them away).
"""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from accounts.models import ApiKey, Membership, Organization
from accounts.services import api_key_create, key_prefix, membership_add, organization_create

DEMO_KEY_FILE = "demo-api-key"
DEMO_SERVICE_KEY_FILE = "demo-service-key"
DEMO_ORG = "demo"
DEMO_USER = "demo"


class Command(BaseCommand):
    help = "Create a demo organization, user, API key and service key unless they exist; store the keys in var/."

    def handle(self, *args, **options) -> None:
        for file_name, kind in ((DEMO_KEY_FILE, ApiKey.Kind.USER), (DEMO_SERVICE_KEY_FILE, ApiKey.Kind.SERVICE)):
            key_file = settings.VAR_DIR / file_name
            if not _live_key_in(key_file):
                key_file.write_text(_create(kind) + "\n")
                key_file.chmod(0o600)
        self.stdout.write(f"Demo keys in {settings.VAR_DIR / DEMO_KEY_FILE} and {settings.VAR_DIR / DEMO_SERVICE_KEY_FILE}; "
                          f"printed again once the server answers.")


def _live_key_in(key_file: Path) -> bool:
    secret = key_file.read_text().strip() if key_file.exists() else ""
    return bool(secret) and ApiKey.objects.filter(prefix=key_prefix(secret), revoked_at=None).exists()


def _create(kind: str) -> str:
    org = Organization.objects.filter(slug=DEMO_ORG).first() or organization_create(
        name="Demo", slug=DEMO_ORG, plan_slug="organization")
    user, _ = get_user_model().objects.get_or_create(username=DEMO_USER)
    if not Membership.objects.filter(organization=org, user=user).exists():
        membership_add(organization=org, user=user, role=Membership.Role.OWNER)
    name = "make run demo service key" if kind == ApiKey.Kind.SERVICE else "make run demo key"
    return api_key_create(organization=org, user=user, kind=kind, name=name).secret
