"""The OpenAPI 3 description served at `/api/schema` (drf-spectacular) and `/docs` (Swagger UI).

The views describe their own requests and successes (`media_app/schema.py`,
`storage_app/schema.py`); this module adds what every operation shares:

- the error envelope (`#/components/schemas/Error`) on the 4xx/5xx answers an operation can
  give, decided from its shape (`add_error_responses`); statuses only some operations give
  (409, 416, 502, a 404 without a path parameter) are declared where they arise with `errors()`;
- HEAD as an operation of its own where a view implements it (images, media content);
- the plain Django views no DRF introspection sees: `/healthz`, `/readyz`, `/files/{key}`;
- tags by surface.
"""
from __future__ import annotations

import copy
from typing import Any

from drf_spectacular import generators, openapi
from drf_spectacular.utils import OpenApiResponse

ERROR_REF = {"$ref": "#/components/schemas/Error"}

ERROR_DETAIL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "message": {"type": "string", "description": "For people; may change."},
        "type": {"type": "string", "description": "The class of error.", "example": "invalid_request_error"},
        "code": {"type": "string", "description": "Stable, for programs.", "example": "max_size_exceeded"},
        "param": {"type": "string", "description": "The field or parameter at fault, when one is."},
    },
    "required": ["message", "type", "code"],
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error on every API path: `{\"error\": {message, type, code, param?}}`.",
    "properties": {"error": {"$ref": "#/components/schemas/ErrorDetail"}},
    "required": ["error"],
    "example": {"error": {"message": "File size exceeds maximum allowed.", "type": "size_error",
                          "code": "max_size_exceeded", "param": "file"}},
}

ERROR_DESCRIPTIONS = {
    400: "Bad input: a body, field, parameter or header is not valid.",
    401: "No credentials where they are needed, or credentials that are not valid.",
    403: "Authenticated, but not allowed (e.g. a user key where a service key is needed).",
    404: "Unknown, or not yours.",
    409: "Conflicts with the current state.",
    413: "Too large, or over the organization's quota.",
    415: "This type of content is not allowed here.",
    416: "The requested range is not satisfiable.",
    429: "Too many requests: a rate limit (see the RateLimit-* headers), or too many uploads at once.",
    502: "The remote file could not be fetched.",
    503: "Storage, or the identity provider's keys, unavailable.",
}


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """Error responses for `extend_schema(responses=...)`: the statuses only some operations give."""
    return {status: OpenApiResponse(ERROR_REF, description=ERROR_DESCRIPTIONS[status]) for status in statuses}


# -- HEAD operations and tags ------------------------------------------------------------------
class EndpointEnumerator(generators.EndpointEnumerator):
    def get_allowed_methods(self, callback) -> list[str]:  # noqa: ANN001
        methods = super().get_allowed_methods(callback)
        # Django answers HEAD with GET everywhere; a view that implements HEAD itself (the image
        # existence check, content metadata) documents it as an operation of its own.
        if "head" in vars(callback.cls):
            methods.append("HEAD")
        return methods


class SchemaGenerator(generators.SchemaGenerator):
    endpoint_inspector_cls = EndpointEnumerator


SURFACE_TAGS = (
    ("/api/v1/storage/images", "images"),
    ("/api/v1/storage", "storage"),
    ("/v1/media", "media"),
)


class AutoSchema(openapi.AutoSchema):
    method_mapping = {**openapi.AutoSchema.method_mapping, "head": "head"}

    def get_tags(self) -> list[str]:
        for prefix, tag in SURFACE_TAGS:
            if self.path.startswith(prefix):
                return [tag]
        return super().get_tags()


# -- postprocessing hooks ------------------------------------------------------------------------
def add_plain_views(result: dict, generator, request, public: bool) -> dict:  # noqa: ANN001
    """The plain Django views (health checks, app-signed file URLs), which introspection cannot see."""
    result.setdefault("paths", {}).update(copy.deepcopy(PLAIN_VIEW_PATHS))
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(copy.deepcopy(PLAIN_VIEW_SCHEMAS))
    return result


def add_error_responses(result: dict, generator, request, public: bool) -> dict:  # noqa: ANN001
    """The envelope on the error statuses every operation of a given shape can answer.

    Any parameter or body: 400. Credentials accepted: 401 (a key that is not valid). Credentials
    required: 403 (not a member; a service-key endpoint). A path parameter: 404. A body: 413, 415.
    Every operation but liveness: 503 (storage, or an OIDC provider's keys, unreachable).
    """
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(Error=copy.deepcopy(ERROR_SCHEMA), ErrorDetail=copy.deepcopy(ERROR_DETAIL_SCHEMA))
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method in ("parameters", "summary", "description", "servers"):
                continue
            responses = operation.setdefault("responses", {})
            for status in _error_statuses(path, method, operation, item):
                responses.setdefault(str(status), {"description": ERROR_DESCRIPTIONS[status],
                                                   "content": {"application/json": {"schema": ERROR_REF}}})
            operation["responses"] = dict(sorted(responses.items()))
    return result


def _error_statuses(path: str, method: str, operation: dict, item: dict) -> set[int]:
    if operation.get("x-no-generic-errors"):
        operation.pop("x-no-generic-errors")
        return set()
    security = operation.get("security", [])
    parameters = [*item.get("parameters", []), *operation.get("parameters", [])]
    statuses = {429, 503}  # every route is rate limited (config/ratelimit.py)
    if parameters or "requestBody" in operation:
        statuses.add(400)
    if any(requirement for requirement in security):
        statuses.add(401)
        if {} not in security:
            statuses.add(403)
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if "requestBody" in operation:
        statuses |= {413, 415}
    return statuses


# -- the plain Django views ---------------------------------------------------------------------
def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_SIGNED_PARAMS = [
    {"name": "key", "in": "path", "required": True, "schema": {"type": "string"},
     "description": "The storage key the URL was signed for."},
    {"name": "op", "in": "query", "required": True, "schema": {"type": "string", "enum": ["get", "put", "post"]},
     "description": "The operation the URL was signed for."},
    {"name": "exp", "in": "query", "required": True, "schema": {"type": "integer"},
     "description": "Expiry, Unix seconds."},
    {"name": "sig", "in": "query", "required": True, "schema": {"type": "string"},
     "description": "HMAC-SHA256 over the operation, key, expiry and the optional parameters."},
    {"name": "ct", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "Uploads: the Content-Type the body must have."},
    {"name": "len", "in": "query", "required": False, "schema": {"type": "integer"},
     "description": "Uploads: the most bytes accepted."},
    {"name": "dl", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "Downloads: the file name for Content-Disposition."},
]
_BYTES = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
_RANGE_HEADERS = {
    "Content-Length": {"schema": {"type": "integer"}},
    "Accept-Ranges": {"schema": {"type": "string", "enum": ["bytes"]}},
}
_CONTENT_RANGE = {"schema": {"type": "string"}, "required": True,
                  "description": "`bytes start-end/size`; on 416, `bytes */size`."}
_SIGNATURE_403 = _json(ERROR_REF, "The signature is not valid, or the URL has expired.")
_DOWNLOAD_RESPONSES = {
    "200": {"description": "The bytes.", "headers": _RANGE_HEADERS, "content": _BYTES},
    "400": _json(ERROR_REF, "The key is not a valid storage key."),
    "403": _SIGNATURE_403,
    "404": _json(ERROR_REF, "No object at this key, or its file was deleted."),
    "409": _json(ERROR_REF, "The stored object failed its integrity check."),
    "206": {"description": "The requested range.", "content": _BYTES,
            "headers": {**_RANGE_HEADERS, "Content-Range": _CONTENT_RANGE}},
    "416": {**_json(ERROR_REF, ERROR_DESCRIPTIONS[416]), "headers": {"Content-Range": _CONTENT_RANGE}},
    "503": _json(ERROR_REF, ERROR_DESCRIPTIONS[503]),
}
_UPLOAD_RESPONSES = {
    "400": _json(ERROR_REF, "Bad key, missing file, or a Content-Type other than the signed one."),
    "403": _json(ERROR_REF, "A bad or expired signature, or a key that is no live upload's (`upload_not_allowed`)."),
    "404": _json(ERROR_REF, "No route for this key (e.g. one with a line break)."),
    "409": _json(ERROR_REF, "The upload is over (`upload_not_pending`), its bytes are already there "
                            "(`upload_already_received`) or another request is writing them (`upload_in_progress`)."),
    "411": _json(ERROR_REF, "A body of unknown length (`length_required`)."),
    "413": _json(ERROR_REF, "More bytes than the URL allows."),
    "415": _json(ERROR_REF, "The content is not of the signed type."),
    "503": _json(ERROR_REF, ERROR_DESCRIPTIONS[503]),
}
_NO_AUTH = [{}]
_HEALTH = {"tags": ["operations"], "security": _NO_AUTH, "x-no-generic-errors": True}
_FILES = {"tags": ["files"], "security": _NO_AUTH, "parameters": _SIGNED_PARAMS, "x-no-generic-errors": True}
_FILES_READ = {**_FILES, "parameters": [*_SIGNED_PARAMS, {
    "name": "Range", "in": "header", "required": False, "schema": {"type": "string"},
    "description": "One range, `bytes=start-end`."}]}

PLAIN_VIEW_SCHEMAS: dict[str, Any] = {
    "Liveness": {"type": "object", "properties": {"status": {"type": "string", "enum": ["ok"]}},
                 "required": ["status"]},
    "Readiness": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["ok", "unavailable"]},
            "checks": {"type": "object", "description": "`database`, `storage` and, when configured, `broker`.",
                       "additionalProperties": {"type": "string", "enum": ["ok", "failed"]}},
            # When not ready; its code names the first failed check.
            "error": {"$ref": "#/components/schemas/ErrorDetail"},
        },
        "required": ["status", "checks"],
    },
}

PLAIN_VIEW_PATHS: dict[str, Any] = {
    "/healthz": {"get": {
        **_HEALTH, "operationId": "healthz", "summary": "Liveness",
        "description": "The process is up and serving; checks nothing else.",
        "responses": {"200": _json({"$ref": "#/components/schemas/Liveness"}, "Alive.")},
    }},
    "/readyz": {"get": {
        **_HEALTH, "operationId": "readyz", "summary": "Readiness",
        "description": "Checks the database, the storage (write, read back, delete a probe object) and, "
                       "when one is configured, the Celery broker.",
        "responses": {
            "200": _json({"$ref": "#/components/schemas/Readiness"}, "Ready."),
            "503": _json({"$ref": "#/components/schemas/Readiness"}, "Not ready: `status` is `unavailable`."),
        },
    }},
    "/files/{key}": {
        "get": {**_FILES_READ, "operationId": "signed_file_download", "summary": "Download through an app-signed URL",
                "description": "The URLs that `presigned_url` answers on the local backend and for app-encrypted "
                               "objects. The signature is the credential; supports `Range` and `If-None-Match`.",
                "responses": _DOWNLOAD_RESPONSES},
        "head": {**_FILES_READ, "operationId": "signed_file_head", "summary": "Size and type through an app-signed URL",
                 "responses": {status: {k: v for k, v in response.items() if k != "content"}
                               for status, response in _DOWNLOAD_RESPONSES.items()}},
        "put": {**_FILES, "operationId": "signed_file_put", "summary": "Upload through a presigned PUT URL",
                "description": "The `presigned_url` of prepare-upload on the local backend.",
                "requestBody": {"required": True, "content": _BYTES},
                "responses": {"204": {"description": "Stored (once: the URL writes no more); complete with "
                                                     "`PUT /v1/media/{id}`."},
                              **_UPLOAD_RESPONSES}},
        "post": {**_FILES, "operationId": "signed_file_post", "summary": "Upload through a presigned POST form",
                 "description": "The `presigned_post` of prepare-upload on the local backend: the `fields` "
                                "(`op`, `exp`, `len`, `ct`, `sig`), then the `file` as the last part.",
                 "parameters": [_SIGNED_PARAMS[0]],
                 "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                     "type": "object", "required": ["op", "exp", "sig", "file"],
                     "properties": {"op": {"type": "string", "enum": ["post"]}, "exp": {"type": "integer"},
                                    "len": {"type": "integer"}, "ct": {"type": "string"}, "sig": {"type": "string"},
                                    "file": {"type": "string", "format": "binary"}}}}}},
                 "responses": {"204": {"description": "Stored; complete with `PUT /v1/media/{id}`."},
                               **_UPLOAD_RESPONSES}},
    },
}
