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


# The organization a signed-in person chose in the web app's switcher (its id); the API's
# session calls (the web app's uploads) act in the same one.
SESSION_ORGANIZATION = "mediastore_organization"


def principal_for(request: Request) -> Principal:
    cached = getattr(request, "_mediastore_principal", None)
    if cached is not None:
        return cached
    user = request.user
    if not user or not user.is_authenticated:
        raise NotAuthenticated()
    auth = getattr(request, "auth", None)  # a Django request (the web app) has no DRF `auth`
    chosen = _chosen_membership(request, user) if not isinstance(auth, ApiKey) else None
    if isinstance(auth, ApiKey):
        organization, is_service = auth.organization, auth.kind == ApiKey.Kind.SERVICE
    elif chosen is not None:
        organization, is_service = chosen.organization, False
    else:
        organization, is_service = _session_organization(user), False
    role = chosen.role if chosen is not None else _role(user, organization, auth)
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


def _chosen_membership(request: Request, user) -> Membership | None:  # noqa: ANN001
    """The membership in the organization chosen in the session, its organization and plan in
    the same query; None when none was chosen or the person is no longer a member."""
    session = getattr(request, "session", None)
    chosen = session.get(SESSION_ORGANIZATION) if session is not None else None
    if not chosen or getattr(user, "_mediastore_organization", None) is not None:
        return None
    return (Membership.objects.select_related("organization", "organization__plan")
            .filter(user=user, organization_id=chosen).first())


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
