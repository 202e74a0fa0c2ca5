"""`/api/schema` (OpenAPI 3) and `/docs` (Swagger UI): valid, complete, and true to the API.

`.ci/schemathesis` checks the schema against a live server with generated requests; these
tests check its structure and a few real responses in the ordinary suite.
"""
from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec

SURFACES = ("v1/media", "api/v1/storage/", "files/", "healthz", "readyz")
# Plain Django views: the methods they answer (described by config.openapi.PLAIN_VIEW_PATHS).
PLAIN_VIEW_METHODS = {"/healthz": {"get"}, "/readyz": {"get"}, "/files/{key}": {"get", "head", "put", "post"}}
HTTP_METHODS = ("get", "post", "put", "patch", "delete", "head")


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema?format=json")
    assert response.status_code == 200, response.content[:500]
    return response.json()


def operations(schema: dict):  # noqa: ANN201
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def _routes(patterns, prefix: str = ""):  # noqa: ANN001, ANN202
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.callback


def surface_routes() -> dict[str, set[str]]:
    """`{openapi path: methods}` for every URL pattern of every API surface."""
    found: dict[str, set[str]] = {}
    for route, callback in _routes(get_resolver().url_patterns):
        if not route.startswith(SURFACES):
            continue
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        view_class = getattr(callback, "cls", None)
        if view_class is None:
            found[path] = PLAIN_VIEW_METHODS[path]
        else:
            found[path] = {method for method in HTTP_METHODS if hasattr(view_class, method)}
    return found


def test_the_schema_is_valid_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Mediastore API"
    validate_spec(schema)


def test_every_endpoint_of_every_surface_is_documented(schema):
    routes = surface_routes()
    assert len(routes) >= 20 and "/v1/media/ingest" in routes
    for path, methods in routes.items():
        assert path in schema["paths"], f"{path} is not documented"
        assert methods <= set(schema["paths"][path]), f"{path}: {methods - set(schema['paths'][path])} missing"


def test_every_operation_has_an_id_a_tag_and_a_success(schema):
    ids = [operation["operationId"] for _, _, operation in operations(schema)]
    assert len(ids) == len(set(ids))
    for path, method, operation in operations(schema):
        assert operation.get("tags"), (method, path)
        assert any(status < "400" for status in operation["responses"]), (method, path)


def test_both_authentication_schemes_are_declared(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["apiKeyBearer"]["type"] == "http" and schemes["apiKeyBearer"]["scheme"] == "bearer"
    assert schemes["apiKeyHeader"] == {**schemes["apiKeyHeader"], "type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["oidcBearer"]["bearerFormat"] == "JWT"
    media = schema["paths"]["/v1/media"]["get"]["security"]
    # Alternatives, not a combination: any one of them authenticates.
    for name in ("apiKeyBearer", "apiKeyHeader", "oidcBearer"):
        assert {name: []} in media
    assert {} in schema["paths"]["/v1/media/{media_id}/content"]["get"]["security"]  # public files


def test_the_error_envelope_is_a_component_every_error_response_uses(schema):
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert schema["components"]["schemas"]["ErrorDetail"]["required"] == ["message", "type", "code"]
    for path, method, operation in operations(schema):
        errors = {status: r for status, r in operation["responses"].items() if status >= "400"}
        assert errors or path == "/healthz", (method, path)  # liveness cannot fail while it answers
        for status, response in errors.items():
            if method == "head" or (path, status) == ("/readyz", "503"):
                continue
            assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, (
                method, path, status)
    # The statuses a create can answer, each with the envelope.
    assert {"400", "401", "403", "404", "413", "415", "502", "503"} <= set(
        schema["paths"]["/v1/media"]["post"]["responses"])


def test_responses_match_what_the_views_answer(schema):
    paths = schema["paths"]
    statuses = lambda path, method: set(paths[path][method]["responses"])  # noqa: E731
    assert {"200", "206", "302", "304", "416"} <= statuses("/v1/media/{media_id}/content", "get")
    assert "*/*" in paths["/v1/media/{media_id}/content"]["get"]["responses"]["200"]["content"]
    assert "content" not in paths["/v1/media/{media_id}/content"]["head"]["responses"]["200"]
    assert "200" in statuses("/v1/media", "post") and "201" not in statuses("/v1/media", "post")
    assert "204" in statuses("/api/v1/storage/objects/{object_name}", "delete")
    images = "/api/v1/storage/images/{path}"
    assert {"200", "302", "404"} <= statuses(images, "get")
    assert {"200", "404"} <= statuses(images, "head")
    assert {"201", "409"} <= statuses(images, "post")
    assert {"204", "404"} <= statuses(images, "delete")
    media = schema["components"]["schemas"]["Media"]["properties"]
    assert media["presigned_url"]["nullable"] and media["expires_at"]["nullable"]
    assert media["width"]["nullable"] and not media["id"].get("nullable")


def _examples(operation: dict, media_type: str = "application/json") -> list:
    return [e["value"] for e in operation["requestBody"]["content"][media_type].get("examples", {}).values()]


def test_the_seed_flows_have_examples(schema):
    paths = schema["paths"]
    create = _examples(paths["/v1/media"]["post"])
    assert {"source": {"type": "remote_url", "url": "https://example.com/image.jpg"}, "user_id": "user123"} in create
    assert {"source": {"type": "data_url", "data_url": "data:image/jpeg;base64,/9j/4AAQSkZJRg..."},
            "user_id": "user123"} in create
    assert {"content_type": "image/jpeg", "user_id": "user123"} in _examples(paths["/v1/media/prepare-upload"]["post"])
    assert len(_examples(paths["/v1/media/resolve"]["post"])[0]["ids"]) == 2
    assert {"name": "example.jpg", "mime": "image/jpeg"} in _examples(paths["/v1/media/upload"]["post"])
    completed = paths["/v1/media/{media_id}"]["put"]["responses"]["200"]["content"]["application/json"]["examples"]
    assert all("result" in example["value"] for example in completed.values())
    listing = {p["name"]: p for p in paths["/v1/media"]["get"]["parameters"]}
    assert [e["value"] for e in listing["user"]["examples"].values()] == ["me"]
    assert [e["value"] for e in listing["limit"]["examples"].values()] == [10]
    upload = _examples(paths["/api/v1/storage/upload"]["post"], "multipart/form-data")
    assert upload and upload[0]["category"] == "data_source"


# -- real responses against their documented shapes ------------------------------------------
def assert_matches(schema: dict, response, path: str, method: str) -> None:
    documented = schema["paths"][path][method]["responses"][str(response.status_code)]
    body_schema = documented["content"]["application/json"]["schema"]
    OAS30Validator({**body_schema, "components": schema["components"]}).validate(response.json())


@pytest.mark.django_db
def test_media_answers_match_the_schema(schema, alice, post_file, anon):
    stored = post_file(alice)
    assert stored.status_code == 201
    assert_matches(schema, stored, "/v1/media/upload", "post")
    media_id = stored.json()["id"]
    for path, response in [
        ("/v1/media/{media_id}", alice.client.get(f"/v1/media/{media_id}")),
        ("/v1/media", alice.client.get("/v1/media?user=me&limit=10")),
        ("/v1/media/resolve", alice.client.post("/v1/media/resolve", {"ids": [media_id, "med_x"]}, format="json")),
        ("/v1/media/{media_id}/presign", alice.client.get(f"/v1/media/{media_id}/presign")),
    ]:
        assert response.status_code == 200, response.content
        assert_matches(schema, response, path, "post" if path.endswith("resolve") else "get")
    legacy = alice.client.post("/v1/media/upload", {"name": "example.jpg", "mime": "image/jpeg"}, format="json")
    assert legacy.status_code == 201
    assert_matches(schema, legacy, "/v1/media/upload", "post")
    pending = alice.client.get(f"/v1/media/{legacy.json()['id']}")
    assert pending.json()["presigned_url"] is None
    assert_matches(schema, pending, "/v1/media/{media_id}", "get")
    assert_matches(schema, anon.get("/v1/media"), "/v1/media", "get")  # 401, the envelope


@pytest.mark.django_db
def test_storage_answers_match_the_schema(schema, alice):
    from tests.factories import unique_png, upload

    uploaded = alice.client.post("/api/v1/storage/upload", {"file": upload("a.png", unique_png())}, format="multipart")
    assert uploaded.status_code == 201
    assert_matches(schema, uploaded, "/api/v1/storage/upload", "post")
    for path in ("/api/v1/storage/usage", "/api/v1/storage/quota", "/api/v1/storage/files"):
        assert_matches(schema, alice.client.get(path), path, "get")


def test_healthz_matches_the_schema(schema, client):
    assert_matches(schema, client.get("/healthz"), "/healthz", "get")


# -- Swagger UI ---------------------------------------------------------------------------------
@pytest.mark.django_db
def test_docs_render_swagger_ui_from_local_files_only(client):
    response = client.get("/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html and "/api/schema" in html
    for host in ("cdn", "unpkg", "jsdelivr", "cloudflare", "googleapis"):  # in a URL (a random token may hold "cdn")
        assert not re.search(rf"(?:https?:)?//[^\s\"'<>]*{host}", html.lower()), host
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert assets and all(url.startswith("/static/") for url in assets), assets
    for url in assets:  # served by the app itself (WhiteNoise), also with DEBUG off
        assert client.get(url).status_code == 200, url


def test_resolve_documents_both_forms_with_an_example_per_provider_format(schema):
    operation = schema["paths"]["/v1/media/resolve"]["post"]
    examples = _examples(operation)
    assert {e["format"] for e in examples if "format" in e} == {"openai", "openai_responses", "anthropic", "gemini"}
    assert any("ids" in e for e in examples) and any("payload" in e and "format" not in e for e in examples)
    assert {"413", "404"} <= set(operation["responses"])
