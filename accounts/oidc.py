"""OIDC bearer tokens: `Authorization: Bearer <JWT>` verified locally against the provider's JWKS.

Nothing on the request path talks to the provider except a JWKS fetch, and that only when
the cached key set is missing, older than `OIDC_JWKS_CACHE_TTL`, or lacks the token's `kid`
(at most once per `OIDC_JWKS_MIN_REFRESH_INTERVAL`, so a flood of made-up kids cannot hammer
the provider). mozilla-django-oidc's per-request userinfo call is not used for bearer tokens.

Checks, in order: the header parses; `alg` is an allowed asymmetric algorithm (`none` and
`HS*` never pass, whatever `OIDC_ALGORITHMS` says); a key with the token's `kid`, a matching
key type and (if the JWK names one) the same `alg` is on the JWKS; the signature; `iss`;
`aud` (any of `OIDC_AUDIENCE`); `exp`, `nbf`, `iat` with `OIDC_LEEWAY`; `sub` present.
Any failure answers 401 `invalid_token` naming the check; a JWKS that cannot be fetched
within `OIDC_TIMEOUT` answers 503 `auth_provider_unavailable`.

Users. The Django username is `oidc:<sub>` (`oidc:sha256:<hex>` when that would exceed 150
characters): `sub` is the only claim a provider promises never to change or reuse, so a
renamed `preferred_username` or a changed e-mail keeps the same account, and no local
account (whose usernames cannot contain `:`) can be taken over by a provider-side name. The
claim named by `OIDC_USERNAME_CLAIM` (default `preferred_username`, falling back to `sub`)
names the user's personal organization; `email`, `given_name` and `family_name` fill the
user's fields and are kept up to date. Users are never matched by e-mail. A user is created
on first sight with an unusable password and a personal organization; an operator who
deactivates the user (`is_active=False`) locks them out.

Organizations. With `OIDC_ORG_CLAIM` set (e.g. `org`), a claim naming one organization slug
(a string, a one-element list, or Keycloak's one-key `{"acme": {...}}` form) makes the user
a `member` of it (an existing role is kept) and the request acts in it. Unknown slugs are
created only with `OIDC_ORG_AUTO_CREATE`; otherwise, or when the claim names a personal
organization or is not a slug, the request is refused with 403. Without the claim the
request acts in the user's personal organization.

The admin's browser login (mozilla-django-oidc's code flow, `/oidc/`) uses `OIDCAdminBackend`,
which maps provider users to the same `oidc:<sub>` accounts. Such users still need
`is_staff` from an operator to enter the admin.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import logging
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.utils.text import slugify
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.contrib.drf import OIDCAuthentication
from rest_framework.request import Request

from accounts.authentication import credentials_from
from accounts.models import Membership, Organization
from accounts.services import KEY_PREFIX, membership_add, organization_create, personal_organization_ensure
from config.errors import NotAuthenticated, PermissionDenied, ServiceError

logger = logging.getLogger("mediastore.oidc")

# The only algorithms a token may use. Symmetric (HS*) and `none` are never accepted: with a
# public JWKS, an HMAC "signed" with the public key would otherwise verify.
ASYMMETRIC_ALGORITHMS = frozenset({
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
})
_EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_MAX_TOKEN_CHARS = 16 * 1024
_MAX_JWKS_BYTES = 512 * 1024
# After a failed JWKS fetch, requests that need one fail fast for this long instead of each
# waiting OIDC_TIMEOUT on a provider that is down.
JWKS_FAILURE_BACKOFF = 5.0
_USERNAME_PREFIX = "oidc:"
_USERNAME_MAX = 150


class InvalidToken(NotAuthenticated):
    code = "invalid_token"
    message = "The bearer token is not valid."


class AuthProviderUnavailable(ServiceError):
    status = 503
    code = "auth_provider_unavailable"
    type = "upstream_error"
    message = "The identity provider's signing keys could not be fetched; try again shortly."


# -- configuration -------------------------------------------------------------------------
@dataclass(frozen=True)
class OIDCConfig:
    """The OIDC_* settings, read at call time (so overriding settings takes effect at once)."""

    enabled: bool
    issuer: str
    jwks_url: str
    audience: tuple[str, ...]
    algorithms: frozenset[str]
    leeway: float
    timeout: float
    jwks_ttl: float
    min_refresh_interval: float
    verify_ssl: bool
    username_claim: str
    org_claim: str
    org_auto_create: bool

    @classmethod
    def from_settings(cls) -> OIDCConfig:
        audience = getattr(settings, "OIDC_AUDIENCE", ())
        if isinstance(audience, str):
            audience = [audience] if audience else []
        config = cls(
            enabled=bool(getattr(settings, "OIDC_ENABLED", False)),
            issuer=getattr(settings, "OIDC_ISSUER", ""),
            jwks_url=getattr(settings, "OIDC_JWKS_URL", ""),
            audience=tuple(audience),
            # Whatever is configured, only asymmetric algorithms survive.
            algorithms=frozenset(getattr(settings, "OIDC_ALGORITHMS", ("RS256", "ES256"))) & ASYMMETRIC_ALGORITHMS,
            leeway=float(getattr(settings, "OIDC_LEEWAY", 30)),
            timeout=float(getattr(settings, "OIDC_TIMEOUT", 5)),
            jwks_ttl=float(getattr(settings, "OIDC_JWKS_CACHE_TTL", 3600)),
            min_refresh_interval=float(getattr(settings, "OIDC_JWKS_MIN_REFRESH_INTERVAL", 30)),
            verify_ssl=bool(getattr(settings, "OIDC_VERIFY_SSL", True)),
            username_claim=getattr(settings, "OIDC_USERNAME_CLAIM", "") or "preferred_username",
            org_claim=getattr(settings, "OIDC_ORG_CLAIM", ""),
            org_auto_create=bool(getattr(settings, "OIDC_ORG_AUTO_CREATE", False)),
        )
        if config.enabled:
            for name, value in (("OIDC_ISSUER", config.issuer), ("OIDC_JWKS_URL", config.jwks_url),
                                ("OIDC_AUDIENCE", config.audience), ("OIDC_ALGORITHMS", config.algorithms)):
                if not value:
                    raise ImproperlyConfigured(f"{name} must be set when OIDC is enabled.")
        return config


# -- the JWKS cache ------------------------------------------------------------------------
class _FetchError(Exception):
    pass


def _http_get_json(url: str, timeout: float, verify_ssl: bool) -> Any:
    """GET `url` as JSON with a hard deadline of about `timeout` seconds for the whole exchange.

    Plain http.client so the socket's timeout can be lowered before every read: a provider
    that accepts the connection and then trickles bytes cannot hold a worker past the deadline.
    (Name resolution is the one step no socket timeout covers.)
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _FetchError("OIDC_JWKS_URL is not an http(s) URL")
    deadline = time.monotonic() + timeout

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _FetchError(f"no complete answer within {timeout:g}s")
        return left

    if parts.scheme == "https":
        context = ssl.create_default_context()
        if not verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("GET", target, headers={"Accept": "application/json", "User-Agent": "mediastore-oidc"})
        sock = conn.sock  # kept: http.client drops conn.sock when the server closes after the answer
        sock.settimeout(remaining())
        response = conn.getresponse()
        if response.status != 200:
            raise _FetchError(f"HTTP {response.status}")
        body, size = [], 0
        while True:
            sock.settimeout(remaining())
            chunk = response.read1(64 * 1024)
            if not chunk:
                break
            size += len(chunk)
            if size > _MAX_JWKS_BYTES:
                raise _FetchError("the key set is too large")
            body.append(chunk)
        return json.loads(b"".join(body))
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise _FetchError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
    finally:
        conn.close()


def _key_fits(jwk: dict, alg: str) -> bool:
    """Whether a JWK may verify a token signed with `alg`."""
    if jwk.get("alg") and jwk["alg"] != alg:
        return False
    kty = jwk.get("kty")
    if alg.startswith(("RS", "PS")):
        return kty == "RSA"
    if alg in _EC_CURVES:
        return kty == "EC" and jwk.get("crv") == _EC_CURVES[alg]
    if alg == "EdDSA":
        return kty == "OKP" and jwk.get("crv") in ("Ed25519", "Ed448")
    return False


def _signing_keys(document: Any) -> dict[str | None, list[dict]]:
    """{kid: [jwk, ...]} of the public signing keys in a JWKS document."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise _FetchError("not a JWKS document (no 'keys' list)")
    keys: dict[str | None, list[dict]] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("kty") in (None, "oct"):
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        if "key_ops" in jwk and "verify" not in (jwk.get("key_ops") or ()):
            continue
        kid = jwk.get("kid")
        keys.setdefault(kid if isinstance(kid, str) else None, []).append(jwk)
    return keys


class JWKSCache:
    """One provider's public keys, per process, refreshed single-flight.

    - fresh (younger than the TTL) and the kid is known: no network;
    - stale and the kid is known: one thread refreshes, the others keep using the stale keys,
      and a failed refresh keeps them too (stale-if-error);
    - never loaded, or stale and the kid is unknown: load (concurrent callers wait for it);
    - fresh and the kid is unknown: refresh, at most once per min_refresh_interval;
    - after a failed fetch, callers that need one fail fast for JWKS_FAILURE_BACKOFF.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._keys: dict[str | None, list[dict]] = {}
        self._fetched_at: float | None = None
        self._failed_at: float | None = None
        self._kid_refresh_at: float | None = None
        self._generation = 0
        self._parsed: dict[tuple, jwt.PyJWK] = {}

    def key_for(self, kid: str | None, alg: str, config: OIDCConfig) -> jwt.PyJWK:
        found = self._lookup(kid, alg)
        fresh = self._fetched_at is not None and time.monotonic() - self._fetched_at < config.jwks_ttl
        if found and fresh:
            return found
        if found:  # stale: refresh if nobody else is, but a known key still verifies meanwhile
            try:
                self._refresh(config, reason="ttl", wait=False)
            except AuthProviderUnavailable:
                logger.warning("JWKS refresh failed; using the cached keys of %s", self.url)
            return self._lookup(kid, alg) or found
        self._refresh(config, reason="kid" if fresh else "load")
        found = self._lookup(kid, alg)
        if found is None:
            raise InvalidToken("No key on the provider's key set matches the token's kid and alg.")
        return found

    def _lookup(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        keys, generation = self._keys, self._generation
        if kid is None:  # only unambiguous when the provider publishes one key for this alg
            candidates = [(k, i, jwk) for k, jwks in keys.items() for i, jwk in enumerate(jwks)
                          if _key_fits(jwk, alg)]
            if len(candidates) != 1:
                return None
        else:
            candidates = [(kid, i, jwk) for i, jwk in enumerate(keys.get(kid, ())) if _key_fits(jwk, alg)]
        for k, index, jwk in candidates:
            cache_key = (generation, k, index, alg)
            parsed = self._parsed.get(cache_key)
            if parsed is None:
                try:
                    parsed = jwt.PyJWK(jwk, algorithm=alg)
                except jwt.PyJWTError:
                    continue
                self._parsed[cache_key] = parsed
            return parsed
        return None

    def _refresh(self, config: OIDCConfig, *, reason: str, wait: bool = True) -> None:
        generation = self._generation
        if not self._lock.acquire(timeout=config.timeout + 1 if wait else 0):
            if wait:
                raise AuthProviderUnavailable()
            return
        try:
            now = time.monotonic()
            if self._generation != generation:
                return  # another thread refreshed while this one waited
            if reason == "kid":
                if self._kid_refresh_at is not None and now - self._kid_refresh_at < config.min_refresh_interval:
                    return
                self._kid_refresh_at = now
            if self._failed_at is not None and now - self._failed_at < JWKS_FAILURE_BACKOFF:
                raise AuthProviderUnavailable()
            try:
                keys = _signing_keys(_http_get_json(self.url, config.timeout, config.verify_ssl))
            except _FetchError as exc:
                self._failed_at = time.monotonic()
                logger.warning("Could not fetch the OIDC key set from %s: %s", self.url, exc)
                raise AuthProviderUnavailable() from None
            self._keys, self._parsed = keys, {}
            self._fetched_at, self._failed_at = time.monotonic(), None
            self._generation += 1
            logger.info("Fetched the OIDC key set from %s (%s, %d kids)", self.url, reason, len(keys))
        finally:
            self._lock.release()


_caches: dict[str, JWKSCache] = {}
_caches_lock = threading.Lock()


def jwks_cache(url: str) -> JWKSCache:
    cache = _caches.get(url)
    if cache is None:
        with _caches_lock:
            cache = _caches.setdefault(url, JWKSCache(url))
    return cache


def jwks_cache_clear() -> None:
    """Forget every cached key set (tests; a key compromise is handled by the provider)."""
    with _caches_lock:
        _caches.clear()


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


def verify_token(token: str, config: OIDCConfig | None = None) -> dict[str, Any]:
    """The verified claims of `token`, or InvalidToken (401) / AuthProviderUnavailable (503)."""
    config = config or OIDCConfig.from_settings()
    if len(token) > _MAX_TOKEN_CHARS or token.count(".") != 2:
        raise InvalidToken("The bearer token is malformed (not a JWT).")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidToken("The bearer token is malformed (its header does not decode).") from None
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or alg not in config.algorithms:
        raise InvalidToken(f"The token's algorithm {str(alg)[:20]!r} is not allowed.")
    if kid is not None and not isinstance(kid, str):
        raise InvalidToken("The token's kid is malformed.")
    key = jwks_cache(config.jwks_url).key_for(kid, alg, config)
    try:
        claims = jwt.decode(
            token, key, algorithms=[alg], audience=list(config.audience), issuer=config.issuer,
            leeway=config.leeway, options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidToken(f"The token lacks the required {exc.claim!r} claim.") from None
    except jwt.PyJWTError as exc:
        for kind, message in _JWT_ERRORS:
            if isinstance(exc, kind):
                raise InvalidToken(message or f"{exc}.") from None
        raise InvalidToken("The bearer token is malformed.") from None
    except (TypeError, ValueError):
        raise InvalidToken("The bearer token is malformed.") from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise InvalidToken("The token's subject (sub) is not usable.")
    return claims


# -- users and organizations ----------------------------------------------------------------
def oidc_username(sub: str) -> str:
    """The Django username of the provider's subject `sub` (see the module docstring)."""
    username = _USERNAME_PREFIX + sub
    if len(username) <= _USERNAME_MAX:
        return username
    return f"{_USERNAME_PREFIX}sha256:{hashlib.sha256(sub.encode()).hexdigest()}"


def _text_claim(claims: dict, name: str, limit: int) -> str:
    value = claims.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _profile(claims: dict) -> dict[str, str]:
    email = _text_claim(claims, "email", 254)
    return {"email": email if "@" in email else "", "first_name": _text_claim(claims, "given_name", 150),
            "last_name": _text_claim(claims, "family_name", 150)}


def user_from_claims(claims: dict, config: OIDCConfig | None = None):  # noqa: ANN201 - a User
    """The user for verified `claims`, created on first sight with a personal organization."""
    config = config or OIDCConfig.from_settings()
    User = get_user_model()
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
    display = _text_claim(claims, config.username_claim, 200) or claims["sub"][:200]
    if personal.name == user.get_username() and display != personal.name:
        Organization.objects.filter(pk=personal.pk).update(name=display)
    return user


def _claimed_slug(value: Any) -> str | None:
    """The one organization slug a claim names, None when it names none."""
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


def organization_from_claims(user, claims: dict, config: OIDCConfig | None = None) -> Organization | None:  # noqa: ANN001
    """The organization the token's org claim names, joined as `member`; None without one."""
    config = config or OIDCConfig.from_settings()
    if not config.org_claim:
        return None
    slug = _claimed_slug(claims.get(config.org_claim))
    if slug is None:
        return None
    organization = Organization.objects.filter(slug=slug).first()
    if organization is None:
        if not config.org_auto_create:
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


# -- DRF ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class OIDCAccessToken:
    """`request.auth` for an OIDC bearer token: its verified claims (never the raw token)."""

    claims: dict = field(repr=False)
    organization: Organization | None = None


class OIDCBearerAuthentication(OIDCAuthentication):
    """DRF authentication for OIDC access tokens, verified locally (see the module docstring).

    Returns None (letting other authenticators decide) when OIDC is disabled, when there is
    no `Authorization: Bearer` header, or when the bearer is an API key (`msk_...`). Any other
    bearer is taken to be a JWT: invalid ones answer 401 rather than falling back to anonymous.
    """

    www_authenticate_realm = "api"

    def __init__(self, backend: OIDCAuthenticationBackend | None = None) -> None:
        # The parent looks up an OIDCAuthenticationBackend for its userinfo call; bearer
        # tokens need none, so an API-only deployment needs no client id or endpoints.
        self.backend = backend

    def authenticate(self, request: Request) -> tuple[object, OIDCAccessToken] | None:
        config = OIDCConfig.from_settings()
        if not config.enabled:
            return None
        found = credentials_from(request)
        if found is None:
            return None
        source, token = found
        if source != "bearer" or token.startswith(KEY_PREFIX):
            return None
        try:
            claims = verify_token(token, config)
        except InvalidToken as exc:
            logger.info("Rejected an OIDC bearer token: %s", exc.message)
            raise
        user = user_from_claims(claims, config)
        organization = organization_from_claims(user, claims, config)
        if organization is not None:
            user._mediastore_organization = organization  # principal_for acts in it
        return user, OIDCAccessToken(claims=claims, organization=organization)

    def authenticate_header(self, request: Request) -> str:
        return f'Bearer realm="{self.www_authenticate_realm}"'


class OIDCBearerScheme(OpenApiAuthenticationExtension):
    """How /api/schema describes OIDCBearerAuthentication."""

    target_class = OIDCBearerAuthentication
    name = "oidcBearer"

    def get_security_definition(self, auto_schema):  # noqa: ANN001, ANN201
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "An access token from the OpenID Connect provider (OIDC_ISSUER)."}


# -- the admin's browser login (mozilla-django-oidc code flow) ------------------------------
class OIDCAdminBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend, mapping provider users to the same `oidc:<sub>` accounts
    as bearer tokens (never by e-mail)."""

    def verify_claims(self, claims: dict) -> bool:
        sub = claims.get("sub")
        return isinstance(sub, str) and 0 < len(sub) <= 255

    def filter_users_by_claims(self, claims: dict):  # noqa: ANN201
        return self.UserModel.objects.filter(username=oidc_username(claims["sub"]))

    def create_user(self, claims: dict):  # noqa: ANN201
        return user_from_claims(claims)

    def update_user(self, user, claims: dict):  # noqa: ANN001, ANN201
        return user_from_claims(claims)
