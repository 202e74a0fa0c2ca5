import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from config.errors import QuotaExceeded


@api_view(["GET"])
@permission_classes([AllowAny])
def raises_service_error(request):
    raise QuotaExceeded(param="file")


@api_view(["POST"])
@permission_classes([AllowAny])
def post_only(request):
    return Response({})


def crashes(request):
    raise RuntimeError("boom")


def unsatisfiable_range(request):
    response = HttpResponse(status=416)  # as storage_app.http.serve_object answers
    response["Content-Range"] = "bytes */10"
    return response


urlpatterns = [
    path("api/test/quota", raises_service_error),
    path("api/test/post-only", post_only),
    path("api/test/crash", crashes),
    path("api/test/range", unsatisfiable_range),
]


@pytest.fixture
def client_here(settings):
    settings.ROOT_URLCONF = __name__
    return Client(raise_request_exception=False)


def assert_envelope(response, status, code):
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"] and body["error"]["type"]
    return body["error"]


def test_service_errors_use_the_envelope_with_param(client_here):
    error = assert_envelope(client_here.get("/api/test/quota"), 413, "quota_exceeded")
    assert error["param"] == "file"


def test_drf_method_not_allowed_uses_the_envelope(client_here):
    assert_envelope(client_here.get("/api/test/post-only"), 405, "method_not_allowed")


def test_django_404_on_api_paths_uses_the_envelope(client):
    assert_envelope(client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_envelope(client.get("/v1/media/nothing/here/either"), 404, "not_found")


def test_django_405_on_plain_views_uses_the_envelope(client):
    assert_envelope(client.post("/healthz"), 405, "method_not_allowed")


def test_unhandled_exceptions_become_an_enveloped_500(client_here):
    assert_envelope(client_here.get("/api/test/crash"), 500, "internal_error")


def test_every_response_has_a_request_id(client):
    assert len(client.get("/healthz")["X-Request-ID"]) == 32
    assert client.get("/api/v1/nothing")["X-Request-ID"]


def test_a_sane_caller_request_id_is_echoed_and_a_hostile_one_replaced(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    assert client.get("/healthz", HTTP_X_REQUEST_ID="bad id\r\nx")["X-Request-ID"] != "bad id\r\nx"


def test_a_416_keeps_its_content_range_in_the_envelope(client_here):
    # Found by schemathesis: the rewrite into the envelope dropped the header RFC 9110 asks for.
    response = client_here.get("/api/test/range")
    assert_envelope(response, 416, "range_not_satisfiable")
    assert response["Content-Range"] == "bytes */10"


def test_posting_to_the_health_checks_is_a_405_not_a_csrf_403(db):
    strict = Client(enforce_csrf_checks=True)
    assert_envelope(strict.post("/healthz"), 405, "method_not_allowed")
    assert_envelope(strict.delete("/readyz"), 405, "method_not_allowed")
