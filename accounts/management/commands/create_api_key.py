"""Create an API key, and the organization, user and membership it needs if missing.

Prints only the new key on stdout, so `KEY=$(python manage.py create_api_key ...)` works.
"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.text import slugify

from accounts.models import ApiKey, Membership, Organization
from accounts.services import api_key_create, membership_add, organization_create
from config.errors import ServiceError


class Command(BaseCommand):
    help = "Create an API key for USERNAME in organization SLUG, creating what is missing."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--user", required=True, help="username")
        parser.add_argument("--service", action="store_true", help="a service key (acts for any user_id)")
        parser.add_argument("--plan", choices=["individual", "organization"], default=None,
                            help="plan of a newly created organization (default: organization)")
        parser.add_argument("--role", choices=Membership.Role.values, default=None,
                            help="role of a newly added member (default: owner for a new organization)")
        parser.add_argument("--name", default="", help="a label for the key")

    def handle(self, *args, **options) -> None:
        try:
            with transaction.atomic():
                issued = self._create(options)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(issued.secret)

    def _create(self, options: dict):  # noqa: ANN202
        if slugify(options["org"]) != options["org"]:
            raise CommandError(f"--org takes a slug (lowercase letters, digits, hyphens), e.g. {slugify(options['org'])!r}.")
        org = Organization.objects.filter(slug=options["org"]).first()
        created_org = org is None
        if created_org:
            plan = options["plan"] or "organization"
            kind = Organization.Kind.INDIVIDUAL if plan == "individual" else Organization.Kind.ORGANIZATION
            org = organization_create(name=options["org"], slug=options["org"], kind=kind, plan_slug=plan)
            self.stderr.write(f"Created organization {org.slug} on plan {plan}.")
        user, created_user = get_user_model().objects.get_or_create(username=options["user"])
        if created_user:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            self.stderr.write(f"Created user {user.username}.")
        role = options["role"] or (Membership.Role.OWNER if created_org else Membership.Role.MEMBER)
        membership_add(organization=org, user=user, role=role)
        kind = ApiKey.Kind.SERVICE if options["service"] else ApiKey.Kind.USER
        issued = api_key_create(organization=org, user=user, kind=kind, name=options["name"])
        self.stderr.write(f"Created {kind} key {issued.api_key.prefix}… for {user.username} in {org.slug}.")
        return issued
