"""Who is calling, for which organization, with which role: derived once per request."""
from __future__ import annotations

from dataclasses import dataclass

from rest_framework.request import Request

from accounts.models import ApiKey, Membership, Organization
from config import logs
from accounts.services import user_get_in_organization
from config.errors import NotAuthenticated, PermissionDenied


@dataclass(frozen=True)
class Principal:
    user: object
    organization: Organization
    role: str
    is_service: bool

    @property
    def is_admin(self) -> bool:
        return self.role in (Membership.Role.OWNER, Membership.Role.ADMIN)

    @property
    def sees_whole_organization(self) -> bool:
        """Admins, owners and service keys may act on every file of the organization."""
        return self.is_admin or self.is_service


def principal_for(request: Request) -> Principal:
    cached = getattr(request, "_mediastore_principal", None)
    if cached is not None:
        return cached
    user = request.user
    if not user or not user.is_authenticated:
        raise NotAuthenticated()
    auth = request.auth
    if isinstance(auth, ApiKey):
        organization, is_service = auth.organization, auth.kind == ApiKey.Kind.SERVICE
    else:
        organization, is_service = _session_organization(user), False
    role = _role(user, organization, auth)
    if role is None:
        raise PermissionDenied("You are not a member of this organization.")
    principal = Principal(user=user, organization=organization, role=role, is_service=is_service)
    request._mediastore_principal = principal
    logs.bind(organization=organization.slug, user=user.get_username())
    return principal


def _role(user, organization: Organization, auth: object) -> str | None:  # noqa: ANN001
    """The caller's role; an API key's lookup already fetched it (`member_role`), in the same query."""
    if isinstance(auth, ApiKey) and hasattr(auth, "member_role"):
        return auth.member_role
    membership = Membership.objects.filter(user=user, organization=organization).only("role").first()
    return membership.role if membership else None


def _session_organization(user) -> Organization:  # noqa: ANN001
    organization = getattr(user, "_mediastore_organization", None)
    if organization is not None:  # set by an authenticator that knows (OIDC claims)
        return organization
    from accounts.services import personal_organization_ensure

    return personal_organization_ensure(user=user)


def owner_for(principal: Principal, user_id: str | None):  # noqa: ANN201 - a user
    """Whom a new file belongs to: service keys act for any member; a user key may only name itself."""
    if not user_id or user_id in (principal.user.username, str(principal.user.pk)):
        return principal.user
    if not principal.is_service:
        raise PermissionDenied("user_id may only be sent with a service key.", code="user_id_not_allowed",
                               param="user_id")
    return user_get_in_organization(organization=principal.organization, user_id=user_id)
