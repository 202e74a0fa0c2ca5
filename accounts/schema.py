"""How `/api/schema` describes API key and OIDC bearer authentication."""
from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from accounts.authentication import ApiKeyAuthentication


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """One key, two ways to send it: either header alone authenticates (OR, not AND)."""

    target_class = ApiKeyAuthentication
    name = ["apiKeyBearer", "apiKeyHeader"]

    def get_security_requirement(self, auto_schema):  # noqa: ANN001, ANN201
        return [{name: []} for name in self.name]

    def get_security_definition(self, auto_schema):  # noqa: ANN001, ANN201
        return [
            {"type": "http", "scheme": "bearer", "bearerFormat": "msk_...",
             "description": "An API key: `Authorization: Bearer msk_...`. "
                            "`python manage.py create_api_key` makes one (`--service` for a service key)."},
            {"type": "apiKey", "in": "header", "name": "X-API-Key",
             "description": "The same API key in its own header: `X-API-Key: msk_...`."},
        ]


class OIDCBearerScheme(OpenApiAuthenticationExtension):
    """How /api/schema describes OIDCBearerAuthentication (named by path: accounts.oidc imports mozilla-django-oidc)."""

    target_class = "accounts.oidc.OIDCBearerAuthentication"
    name = "oidcBearer"

    def get_security_definition(self, auto_schema):  # noqa: ANN001, ANN201
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "An access token from the OpenID Connect provider (OIDC_ISSUER)."}
