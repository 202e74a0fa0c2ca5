"""Organizations, memberships and API keys."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import ApiKey, Membership, Organization
from config.errors import InvalidRequest, NotFound
from quotas.models import Plan, Quota

User = get_user_model()

KEY_PREFIX = "msk_"
_PREFIX_CHARS = 8


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    secret: str  # shown once, never stored


def hash_secret(secret: str) -> str:
    # API keys carry 256 bits of randomness, so a fast hash is enough (no password stretching).
    return hashlib.sha256(secret.encode()).hexdigest()


def organization_create(*, name: str, slug: str | None = None, kind: str = Organization.Kind.ORGANIZATION,
                        plan_slug: str = "organization") -> Organization:
    plan = Plan.objects.filter(slug=plan_slug).first()
    if plan is None:
        raise InvalidRequest(f"Unknown plan {plan_slug!r}.", code="unknown_plan", param="plan")
    with transaction.atomic():
        org = Organization.objects.create(name=name, slug=_unique_slug(slug or name), kind=kind, plan=plan)
        Quota.objects.create(organization=org)
    return org


def _unique_slug(base: str) -> str:
    root = slugify(base)[:90] or "org"
    slug, n = root, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{root}-{n}"
    return slug


def personal_organization_ensure(*, user) -> Organization:  # noqa: ANN001 - a User
    """The user's personal `individual` organization, created on first sight."""
    membership = (Membership.objects.select_related("organization")
                  .filter(user=user, organization__kind=Organization.Kind.INDIVIDUAL).first())
    if membership:
        return membership.organization
    org = organization_create(name=user.get_username(), slug=f"user-{user.get_username()}",
                              kind=Organization.Kind.INDIVIDUAL, plan_slug="individual")
    Membership.objects.create(user=user, organization=org, role=Membership.Role.OWNER)
    return org


def membership_add(*, organization: Organization, user, role: str = Membership.Role.MEMBER) -> Membership:  # noqa: ANN001
    try:
        membership, _ = Membership.objects.get_or_create(user=user, organization=organization,
                                                         defaults={"role": role})
    except IntegrityError:  # a concurrent add won
        membership = Membership.objects.get(user=user, organization=organization)
    return membership


def api_key_create(*, organization: Organization, user, kind: str = ApiKey.Kind.USER, name: str = "") -> IssuedKey:  # noqa: ANN001
    if kind not in ApiKey.Kind.values:
        raise InvalidRequest(f"Unknown key kind {kind!r}.", code="invalid_kind", param="kind")
    if not Membership.objects.filter(user=user, organization=organization).exists():
        raise InvalidRequest("The user is not a member of this organization.", code="not_a_member", param="user")
    prefix = KEY_PREFIX + secrets.token_hex(_PREFIX_CHARS // 2)
    secret = f"{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(organization=organization, user=user, kind=kind, name=name,
                                prefix=prefix, secret_hash=hash_secret(secret))
    return IssuedKey(api_key=key, secret=secret)


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key.refresh_from_db()
    return api_key


def key_prefix(secret: str) -> str | None:
    """`msk_1a2b3c4d` of `msk_1a2b3c4d_<secret>`, or None when the shape is wrong."""
    size = len(KEY_PREFIX) + _PREFIX_CHARS
    if not secret.startswith(KEY_PREFIX) or len(secret) <= size + 1 or secret[size] != "_":
        return None
    return secret[:size]


def api_key_lookup(secret: str) -> ApiKey | None:
    """The active key for `secret`, or None. Constant-time on the hash comparison."""
    prefix = key_prefix(secret)
    if prefix is None:
        return None
    key = (ApiKey.objects.select_related("organization", "organization__plan", "user")
           .filter(prefix=prefix).first())
    if key is None or not secrets.compare_digest(key.secret_hash, hash_secret(secret)):
        return None
    return key


def user_get_in_organization(*, organization: Organization, user_id: str, param: str = "user_id"):  # noqa: ANN201
    """A member of `organization` by id or username (service keys act for them); `param` names
    the request field the id came from, for the error."""
    members = User.objects.filter(memberships__organization=organization)
    user = members.filter(username=user_id).first()
    if user is None and str(user_id).isdigit():
        user = members.filter(pk=int(user_id)).first()
    if user is None:
        raise NotFound("No such user in this organization.", code="user_not_found", param=param)
    return user
