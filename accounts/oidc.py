"""OIDC bearer tokens: `Authorization: Bearer <JWT>` verified locally against the provider's JWKS.

Keys: PyJWT's `PyJWKClient` (cached for `OIDC_JWKS_CACHE_TTL`, fetched once under a lock, an
unknown `kid` refetched at most once per `OIDC_JWKS_MIN_REFRESH_INTERVAL`) fetching through
`config.http_client` (one `OIDC_TIMEOUT` deadline, a size cap), plus stale-if-error and a
fail-fast back-off after a failed fetch. No per-request call to the provider.

Checks: the header; `alg` allowed and asymmetric (never `none`/`HS*`); a key with the token's
`kid` (without one: the only key for the alg) whose algorithm is the token's (the JWK's `alg`,
else its type's default); the signature; `iss`; `aud` (any of `OIDC_AUDIENCE`); `exp`, `nbf`,
`iat` with `OIDC_LEEWAY`; `sub`. Failures answer 401 `invalid_token` naming the check; no key
set at all answers 503 `auth_provider_unavailable`. Users (`oidc:<sub>`) and organizations come
from the claims through `accounts.services`, for the admin's browser login too (`OIDCAdminBackend`).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from django.conf import settings
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.contrib.drf import OIDCAuthentication
from rest_framework.request import Request

from accounts.authentication import credentials_from
from accounts.models import Organization
from accounts.services import KEY_PREFIX, oidc_username, organization_join_from_claims, user_ensure_from_claims
from config import http_client
from config.errors import NotAuthenticated, ServiceError

logger = logging.getLogger("mediastore.oidc")

# The only algorithms a token may use. Symmetric (HS*) and `none` are never accepted: with a
# public JWKS, an HMAC "signed" with the public key would otherwise verify.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
_MAX_TOKEN_CHARS = 16 * 1024
_MAX_JWKS_BYTES = 512 * 1024
JWKS_FAILURE_BACKOFF = 5.0
# The JWKS URL is the operator's own setting and the provider often sits on a private network,
# so any address is allowed; no redirect is followed, so nothing else is ever contacted.
_PROVIDER_POLICY = http_client.AddressPolicy(allow_any=True)


class InvalidToken(NotAuthenticated):
    code = "invalid_token"
    message = "The bearer token is not valid."


class AuthProviderUnavailable(ServiceError):
    status = 503
    code = "auth_provider_unavailable"
    type = "upstream_error"
    message = "The identity provider's signing keys could not be fetched; try again shortly."


def allowed_algorithms() -> frozenset[str]:
    # Whatever OIDC_ALGORITHMS says at run time, only asymmetric algorithms pass.
    return frozenset(settings.OIDC_ALGORITHMS) & ASYMMETRIC_ALGORITHMS


# -- the key set ----------------------------------------------------------------------------
class JWKSClient(jwt.PyJWKClient):
    """PyJWKClient fetching through `config.http_client`, with stale-if-error and a back-off."""

    def __init__(self, uri: str, lifespan: float, timeout: float, cooldown: float, verify_tls: bool) -> None:
        super().__init__(uri, lifespan=max(lifespan, 0.001), timeout=timeout, cooldown_duration=cooldown)
        self.verify_tls = verify_tls
        self._last_good: jwt.PyJWKSet | None = None
        self._failed_at: float | None = None

    def fetch_data(self) -> jwt.PyJWKSet:
        # Unlike PyJWKClient's, this does not start the unknown-kid cooldown: only a kid-triggered
        # refresh does, so a key rotated in just after a scheduled fetch is found at once.
        if self._failed_at is not None and time.monotonic() - self._failed_at < JWKS_FAILURE_BACKOFF:
            raise PyJWKClientConnectionError("the last fetch failed moments ago")
        try:
            document = http_client.get_json(self.uri, max_bytes=_MAX_JWKS_BYTES, timeout=self.timeout,
                                            policy=_PROVIDER_POLICY, verify_tls=self.verify_tls)
            jwk_set = jwt.PyJWKSet.from_dict(self._as_jwk_set_payload(document))
        except (ServiceError, jwt.PyJWTError) as exc:
            self._failed_at = time.monotonic()
            logger.warning("Could not fetch the OIDC key set from %s: %s", self.uri, exc)
            raise PyJWKClientConnectionError(str(exc)) from None
        self._failed_at, self._last_good = None, jwk_set
        logger.info("Fetched the OIDC key set from %s (%d keys)", self.uri, len(jwk_set.keys))
        return jwk_set

    def get_jwk_set(self, refresh: bool = False) -> jwt.PyJWKSet:
        try:
            return super().get_jwk_set(refresh)
        except PyJWKClientConnectionError:
            if refresh or self._last_good is None:  # an unknown kid cannot be found in old keys
                raise
            logger.warning("Using the last good OIDC key set of %s", self.uri)
            return self._last_good

    def key_for(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The key for a token's `kid` and `alg`: InvalidToken, or AuthProviderUnavailable."""
        try:
            key = self.get_signing_key(kid) if kid is not None else self._only_key_for(alg)
        except PyJWKClientConnectionError:
            raise AuthProviderUnavailable() from None
        except PyJWKClientError:
            key = None
        if key is None or key.algorithm_name != alg:
            raise InvalidToken("No key on the provider's key set matches the token's kid and alg.")
        return key

    def _only_key_for(self, alg: str) -> jwt.PyJWK | None:
        # Without a kid, a key is only unambiguous when the provider publishes one for this alg.
        with self._client_lock:
            keys = self.get_jwk_set().keys
        fitting = [k for k in keys if k.public_key_use in ("sig", None) and k.algorithm_name == alg]
        return fitting[0] if len(fitting) == 1 else None


_clients: dict[tuple, JWKSClient] = {}
_clients_lock = threading.Lock()


def jwks_client() -> JWKSClient:
    """The process's client for the configured key set (a settings change gets a new one)."""
    key = (settings.OIDC_JWKS_URL, settings.OIDC_JWKS_CACHE_TTL, settings.OIDC_TIMEOUT,
           settings.OIDC_JWKS_MIN_REFRESH_INTERVAL, settings.OIDC_VERIFY_SSL)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = JWKSClient(*key)
        return _clients[key]


def jwks_cache_clear() -> None:
    """Forget every cached key set (tests; a key compromise is handled by the provider)."""
    with _clients_lock:
        _clients.clear()


# -- verification ---------------------------------------------------------------------------
_JWT_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "The token has expired."),
    (jwt.ImmatureSignatureError, ""),  # PyJWT's own message names nbf or iat
    (jwt.InvalidIssuedAtError, "The token's issue time (iat) is malformed."),
    (jwt.InvalidIssuerError, "The token's issuer (iss) is not accepted."),
    (jwt.InvalidAudienceError, "The token's audience (aud) is not accepted."),
    (jwt.InvalidSignatureError, "The token's signature does not verify."),
    (jwt.InvalidAlgorithmError, "The token's algorithm is not allowed."),
)


def _checked_header(token: str) -> tuple[str, str | None]:
    """(alg, kid) of a token whose header is well formed and whose alg is allowed."""
    if len(token) > _MAX_TOKEN_CHARS or token.count(".") != 2:
        raise InvalidToken("The bearer token is malformed (not a JWT).")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidToken("The bearer token is malformed (its header does not decode).") from None
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or alg not in allowed_algorithms():
        raise InvalidToken(f"The token's algorithm {str(alg)[:20]!r} is not allowed.")
    if kid is not None and not isinstance(kid, str):
        raise InvalidToken("The token's kid is malformed.")
    return alg, kid


def verify_token(token: str) -> dict[str, Any]:
    """The verified claims of `token`, or InvalidToken (401) / AuthProviderUnavailable (503)."""
    alg, kid = _checked_header(token)
    key = jwks_client().key_for(kid, alg)
    try:
        claims = jwt.decode(token, key, algorithms=[alg], audience=list(settings.OIDC_AUDIENCE),
                            issuer=settings.OIDC_ISSUER, leeway=settings.OIDC_LEEWAY,
                            options={"require": ["exp", "iss", "aud", "sub"]})
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidToken(f"The token lacks the required {exc.claim!r} claim.") from None
    except jwt.PyJWTError as exc:
        message = next((m or f"{exc}." for kind, m in _JWT_ERRORS if isinstance(exc, kind)),
                       "The bearer token is malformed.")
        raise InvalidToken(message) from None
    except (TypeError, ValueError):
        raise InvalidToken("The bearer token is malformed.") from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise InvalidToken("The token's subject (sub) is not usable.")
    return claims


# -- DRF ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class OIDCAccessToken:
    """`request.auth` for an OIDC bearer token: its verified claims (never the raw token)."""

    claims: dict = field(repr=False)
    organization: Organization | None = None


class OIDCBearerAuthentication(OIDCAuthentication):
    """DRF authentication for OIDC access tokens. None (other authenticators decide) when OIDC
    is off, without a Bearer header, or for an API key (`msk_...`); any other bearer is a JWT,
    and an invalid one answers 401 rather than falling back to anonymous."""

    www_authenticate_realm = "api"

    def __init__(self, backend: OIDCAuthenticationBackend | None = None) -> None:
        # The parent looks up an OIDCAuthenticationBackend for its userinfo call; bearer
        # tokens need none, so an API-only deployment needs no client id or endpoints.
        self.backend = backend

    def authenticate(self, request: Request) -> tuple[object, OIDCAccessToken] | None:
        found = credentials_from(request) if settings.OIDC_ENABLED else None
        if found is None or found[0] != "bearer" or found[1].startswith(KEY_PREFIX):
            return None
        try:
            claims = verify_token(found[1])
        except InvalidToken as exc:
            logger.info("Rejected an OIDC bearer token: %s", exc.message)
            raise
        user = user_ensure_from_claims(claims=claims, username_claim=settings.OIDC_USERNAME_CLAIM)
        organization = organization_join_from_claims(user=user, claims=claims, org_claim=settings.OIDC_ORG_CLAIM,
                                                     auto_create=settings.OIDC_ORG_AUTO_CREATE)
        if organization is not None:
            user._mediastore_organization = organization  # principal_for acts in it
        return user, OIDCAccessToken(claims=claims, organization=organization)

    def authenticate_header(self, request: Request) -> str:
        return f'Bearer realm="{self.www_authenticate_realm}"'


# -- the admin's browser login (mozilla-django-oidc code flow) ------------------------------
class OIDCAdminBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend, mapping to the same `oidc:<sub>` accounts (never by e-mail)."""

    def verify_claims(self, claims: dict) -> bool:
        sub = claims.get("sub")
        return isinstance(sub, str) and 0 < len(sub) <= 255

    def filter_users_by_claims(self, claims: dict):  # noqa: ANN201
        return self.UserModel.objects.filter(username=oidc_username(claims["sub"]))

    def create_user(self, claims: dict):  # noqa: ANN201
        return user_ensure_from_claims(claims=claims, username_claim=settings.OIDC_USERNAME_CLAIM)

    def update_user(self, user, claims: dict):  # noqa: ANN001, ANN201
        return self.create_user(claims)
