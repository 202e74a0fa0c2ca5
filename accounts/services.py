"""Organizations, memberships and API keys; users and organizations provisioned from OIDC claims."""
from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.keycache import auth_version_bump
from accounts.models import ApiKey, Membership, Organization
from config.errors import InvalidRequest, NotAuthenticated, NotFound, PermissionDenied

User = get_user_model()
logger = logging.getLogger("mediastore.accounts")

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
    # The plan is the quotas layer's model; accounts reaches it only through Organization's foreign key.
    plan = Organization.plan.field.related_model.objects.filter(slug=plan_slug).first()
    if plan is None:
        raise InvalidRequest(f"Unknown plan {plan_slug!r}.", code="unknown_plan", param="plan")
    with transaction.atomic():
        return Organization.objects.create(name=name, slug=_unique_slug(slug or name), kind=kind, plan=plan)


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


def api_key_rename(*, api_key: ApiKey, name: str) -> ApiKey:
    """Only the name of a key can change; its owner, kind and secret never do."""
    ApiKey.objects.filter(pk=api_key.pk).update(name=name)
    api_key.name = name
    return api_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    auth_version_bump()  # processes caching this key drop it within a second
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


# -- provisioning from OIDC claims (accounts/oidc.py verifies the token first) ---------------
_OIDC_USERNAME_PREFIX = "oidc:"
_USERNAME_MAX = 150


def oidc_username(sub: str) -> str:
    """The Django username of the provider's subject `sub`: `oidc:<sub>`, hashed when too long.

    `sub` is the only claim a provider promises never to change or reuse, and local usernames
    cannot contain `:`, so no local account can be taken over by a provider-side name.
    """
    username = _OIDC_USERNAME_PREFIX + sub
    if len(username) <= _USERNAME_MAX:
        return username
    return f"{_OIDC_USERNAME_PREFIX}sha256:{hashlib.sha256(sub.encode()).hexdigest()}"


def _text_claim(claims: dict, name: str, limit: int) -> str:
    value = claims.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _profile(claims: dict) -> dict[str, str]:
    email = _text_claim(claims, "email", 254)
    return {"email": email if "@" in email else "", "first_name": _text_claim(claims, "given_name", 150),
            "last_name": _text_claim(claims, "family_name", 150)}


def user_ensure_from_claims(*, claims: dict, username_claim: str):  # noqa: ANN201 - a User
    """The user of verified `claims`, created on first sight (unusable password, personal
    organization named by `username_claim`); the profile follows the provider; never matched by e-mail."""
    username = oidc_username(claims["sub"])
    profile = _profile(claims)
    user = User.objects.filter(username=username).first()
    if user is None:
        try:
            with transaction.atomic():
                user = User.objects.create_user(username=username, password=None, **profile)
            logger.info("Created user %s from the OIDC provider", username)
        except IntegrityError:  # a concurrent first request won
            user = User.objects.get(username=username)
    else:
        changed = [name for name, value in profile.items() if value and getattr(user, name) != value]
        if changed:
            for name in changed:
                setattr(user, name, profile[name])
            user.save(update_fields=changed)
    if not user.is_active:
        raise NotAuthenticated("This user is disabled.", code="user_inactive")
    personal = personal_organization_ensure(user=user)
    display = _text_claim(claims, username_claim, 200) or claims["sub"][:200]
    if personal.name == user.get_username() and display != personal.name:
        Organization.objects.filter(pk=personal.pk).update(name=display)
    return user


def _claimed_slug(value: Any) -> str | None:
    """The one organization slug a claim names (a string, a one-element list, or Keycloak's
    one-key `{"acme": {...}}`), None when it names none."""
    if isinstance(value, dict):
        value = list(value)
    if isinstance(value, list):
        if not value:
            return None
        if len(value) > 1:
            raise PermissionDenied("The token's organization claim names more than one organization.")
        value = value[0]
    if value is None or value == "":
        return None
    slug = value.strip().lower() if isinstance(value, str) else ""
    if not slug or len(slug) > 90 or slugify(slug) != slug:
        raise PermissionDenied("The token's organization claim is not an organization slug.")
    return slug


def organization_join_from_claims(*, user, claims: dict, org_claim: str,  # noqa: ANN001
                                  auto_create: bool) -> Organization | None:
    """The organization the `org_claim` names, joined as `member` (an existing role is kept);
    None without one. Unknown slugs are created only with `auto_create`; personal ones are refused."""
    slug = _claimed_slug(claims.get(org_claim)) if org_claim else None
    if slug is None:
        return None
    organization = Organization.objects.filter(slug=slug).first()
    if organization is None:
        if not auto_create:
            raise PermissionDenied(f"The organization {slug!r} named by the token does not exist.")
        organization = _organization_create_exactly(slug)
    if organization.kind == Organization.Kind.INDIVIDUAL:
        raise PermissionDenied("The token's organization claim names a personal organization.")
    membership_add(organization=organization, user=user, role=Membership.Role.MEMBER)
    return organization


class _SlugTaken(Exception):
    pass


def _organization_create_exactly(slug: str) -> Organization:
    """Create the organization `slug` (not `slug-2`: a concurrent creator wins and is reused)."""
    try:
        with transaction.atomic():
            organization = organization_create(name=slug, slug=slug, plan_slug="organization")
            if organization.slug != slug:
                raise _SlugTaken
    except (IntegrityError, _SlugTaken):
        return Organization.objects.get(slug=slug)
    logger.info("Created organization %s from an OIDC claim", slug)
    return organization
