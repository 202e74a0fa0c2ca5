"""Webhooks: signed (Standard Webhooks) deliveries of the media layer's events to a live receiver on
127.0.0.1 that verifies each signature, retries with every attempt recorded, and redelivery."""
import base64
import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth import get_user_model
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from events.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from events.services import webhook_endpoint_create, webhook_retry_delay
from events.signing import headers
from media_app import lifecycle
from media_app.models import MediaFile
from quotas.models import Quota


@dataclass
class Receiver:
    url: str
    status: int = 200
    secret: str = ""
    received: list = field(default_factory=list)  # (headers, payload) of every verified request
    unverified: int = 0

    def events(self) -> list[str]:
        return [payload["type"] for _, payload in self.received]


@pytest.fixture
def receiver(settings):
    """An HTTP server on 127.0.0.1 (allowed by WEBHOOK_ALLOW_NETWORKS) that verifies signatures."""
    settings.WEBHOOK_ALLOW_NETWORKS = ["127.0.0.1/32"]
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                payload = Webhook(state.secret).verify(body, dict(self.headers.items()))
                state.received.append((dict(self.headers.items()), payload))
            except WebhookVerificationError:
                state.unverified += 1
            self.send_response(state.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def subscribed(alice, receiver):
    """Alice's organization registers the receiver through the API."""
    def subscribe(*events: str) -> dict:
        response = alice.client.post("/v1/webhooks", {"url": receiver.url, "events": list(events)}, format="json")
        assert response.status_code == 201, response.content
        receiver.secret = response.json()["secret"]
        return response.json()

    return subscribe


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Runs what is sent on commit (signals, then deliveries) as the block's transaction commits."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


# -- /v1/webhooks ---------------------------------------------------------------------------
def test_an_owner_registers_a_webhook_and_sees_its_secret_only_once(alice, receiver):
    created = alice.client.post("/v1/webhooks", {"url": receiver.url, "events": ["media.created"]}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["id"].startswith("whe_") and body["secret"].startswith("whsec_") and body["events"] == ["media.created"]
    listed = alice.client.get("/v1/webhooks").json()["data"]
    assert [hook["id"] for hook in listed] == [body["id"]] and "secret" not in listed[0]
    assert "secret" not in alice.client.get(f"/v1/webhooks/{body['id']}").json()


def test_an_admin_may_register_a_webhook(carol, receiver):
    assert carol.client.post("/v1/webhooks", {"url": receiver.url}, format="json").status_code == 201


@pytest.mark.parametrize("who", ["bob", "acme_service"])
def test_a_member_or_a_service_key_may_not_see_or_register_webhooks(request, receiver, who):
    actor = request.getfixturevalue(who)
    assert error_of(actor.client.get("/v1/webhooks"), 403)["code"] == "permission_denied"
    refused = actor.client.post("/v1/webhooks", {"url": receiver.url}, format="json")
    assert error_of(refused, 403)["code"] == "permission_denied"


def test_another_organizations_webhooks_are_not_found(subscribed, charlie):
    hook = subscribed()
    assert charlie.client.get("/v1/webhooks").json()["data"] == []
    assert error_of(charlie.client.get(f"/v1/webhooks/{hook['id']}"), 404)["code"] == "not_found"
    assert error_of(charlie.client.delete(f"/v1/webhooks/{hook['id']}"), 404)["code"] == "not_found"
    assert WebhookEndpoint.objects.filter(pk=hook["id"]).exists()


def test_no_credentials_is_401(anon, db):
    assert error_of(anon.get("/v1/webhooks"), 401)["code"] == "not_authenticated"
    assert error_of(anon.post("/v1/webhooks", {"url": "https://example.com/"}, format="json"), 401)["code"] == \
        "not_authenticated"


def test_an_owner_deletes_a_webhook(alice, subscribed):
    hook = subscribed()
    assert alice.client.delete(f"/v1/webhooks/{hook['id']}").status_code == 204
    assert error_of(alice.client.get(f"/v1/webhooks/{hook['id']}"), 404)["code"] == "not_found"


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hooks", "http://169.254.169.254/latest", "http://10.0.0.1/",
                                 "http://[::1]/", "file:///etc/passwd"])
def test_internal_and_odd_urls_are_refused_by_the_ssrf_guard(alice, url):
    error = error_of(alice.client.post("/v1/webhooks", {"url": url}, format="json"), 400)
    assert (error["code"], error["param"]) == ("url_not_allowed", "url")
    assert not WebhookEndpoint.objects.exists()


def test_an_unknown_event_type_is_refused(alice, receiver):
    error = error_of(alice.client.post("/v1/webhooks", {"url": receiver.url, "events": ["media.eaten"]},
                                       format="json"), 400)
    assert error["param"].startswith("events")


# -- deliveries -----------------------------------------------------------------------------
def test_a_stored_file_is_delivered_as_media_created_with_a_signature_the_receiver_verifies(
        alice, post_file, subscribed, receiver, committed):
    subscribed()
    with committed():
        media = post_file(alice).json()
    assert receiver.unverified == 0 and receiver.events() == ["media.created"]
    headers, payload = receiver.received[0]
    assert payload["data"]["id"] == media["id"] and payload["data"]["status"] == "active"
    assert payload["data"]["organization"] == "acme" and payload["data"]["bytes"] == media["bytes"]
    assert headers["webhook-id"].startswith("msg_") and headers["webhook-signature"].startswith("v1,")
    message = WebhookMessage.objects.get(pk=headers["webhook-id"])
    assert message.status == "delivered" and message.attempts == 1
    assert list(message.deliveries.values_list("succeeded", "status_code")) == [(True, 200)]


def test_deleting_purging_and_expiring_are_delivered(alice, alices_media, subscribed, receiver, committed):
    subscribed()
    with committed():
        assert alice.client.delete(f"/v1/media/{alices_media['id']}").status_code in (200, 204)
        lifecycle.purge_media(grace=0)
    assert receiver.events() == ["media.deleted", "media.purged"]
    assert receiver.received[0][1]["data"]["reason"] == "deleted"


def test_an_abandoned_upload_is_delivered_as_upload_expired(alice, subscribed, receiver, committed):
    subscribed("upload.expired")
    prepared = alice.client.post("/v1/media/prepare-upload", {"content_type": "image/png", "bytes": 100},
                                  format="json").json()
    MediaFile.objects.filter(pk=prepared["id"]).update(upload_expires_at="2000-01-01T00:00:00Z")
    with committed():
        lifecycle.expire_uploads()
    assert receiver.events() == ["upload.expired"]
    assert receiver.received[0][1]["data"]["id"] == prepared["id"]


def test_an_upload_over_the_quota_is_delivered_as_quota_exceeded(alice, post_file, subscribed, receiver, committed):
    subscribed("quota.exceeded")
    Quota.objects.filter(organization=alice.organization).update(limit_override_bytes=10)
    with committed():
        assert post_file(alice).status_code == 413
    assert receiver.events() == ["quota.exceeded"]
    assert receiver.received[0][1]["data"]["limit_bytes"] == 10


def test_an_endpoint_gets_only_the_event_types_it_asked_for(alice, alices_media, subscribed, receiver, committed):
    subscribed("media.purged")
    with committed():
        alice.client.delete(f"/v1/media/{alices_media['id']}")
    assert receiver.received == [] and not WebhookMessage.objects.exists()


def test_a_failing_receiver_is_retried_with_every_attempt_recorded_until_the_message_fails(
        alice, post_file, subscribed, receiver, committed, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    receiver.status = 500
    subscribed()
    with committed():
        post_file(alice)
    message = WebhookMessage.objects.get()
    assert message.status == "failed" and message.attempts == 3
    attempts = WebhookDelivery.objects.filter(message=message).order_by("attempt")
    assert [(d.attempt, d.succeeded, d.status_code, d.error) for d in attempts] == \
        [(n, False, 500, "HTTP 500") for n in (1, 2, 3)]
    assert {headers["webhook-id"] for headers, _ in receiver.received} == {message.pk}  # the same id each time


def test_the_admin_redelivers_a_failed_message(alice, post_file, subscribed, receiver, committed, settings, client):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    receiver.status = 503
    subscribed()
    with committed():
        post_file(alice)
    message = WebhookMessage.objects.get()
    assert message.status == "failed"
    receiver.status = 200
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456-long"))
    with committed():
        response = client.post("/admin/events/webhookmessage/",
                               {"action": "redeliver", "_selected_action": [message.pk]})
    assert response.status_code == 302
    message.refresh_from_db()
    assert message.status == "delivered" and message.attempts == 2
    assert [d.succeeded for d in message.deliveries.order_by("attempt")] == [False, True]


@pytest.mark.parametrize("url", ["/admin/events/webhookendpoint/", "/admin/events/webhookmessage/",
                                 "/admin/events/webhookdelivery/"])
def test_the_admin_lists_endpoints_messages_and_deliveries(admin_client, alice, subscribed, url):
    subscribed()
    assert admin_client.get(url).status_code == 200


def test_a_url_no_longer_allowed_at_delivery_time_is_not_contacted(alice, post_file, subscribed, receiver, committed,
                                                                    settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    subscribed()
    settings.WEBHOOK_ALLOW_NETWORKS = []  # as if the name now resolved to a private address
    with committed():
        post_file(alice)
    delivery = WebhookDelivery.objects.get()
    assert not delivery.succeeded and delivery.status_code is None and "not allowed" in delivery.error
    assert receiver.received == [] and receiver.unverified == 0


def test_retries_back_off_exponentially_up_to_the_maximum(settings):
    settings.WEBHOOK_RETRY_BASE, settings.WEBHOOK_RETRY_MAX = 30, 600
    assert [webhook_retry_delay(attempts=n) for n in range(1, 7)] == [30, 60, 120, 240, 480, 600]


def test_the_signature_is_hmac_sha256_of_id_timestamp_and_body_with_the_secrets_bytes(alice, receiver):
    endpoint = webhook_endpoint_create(organization=alice.organization, url=receiver.url)
    body = json.dumps({"type": "media.created"}).encode()
    signed = headers(endpoint.secret, message_id="msg_1", timestamp=1_700_000_000, body=body)
    key = base64.b64decode(endpoint.secret.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, b"msg_1.1700000000." + body, hashlib.sha256).digest()).decode()
    assert signed == {"webhook-id": "msg_1", "webhook-timestamp": "1700000000", "webhook-signature": f"v1,{expected}"}


def test_without_a_webhook_an_event_reads_nothing_but_the_endpoints(alice, alices_media, django_assert_num_queries):
    from events.receivers import media_created

    with django_assert_num_queries(1):  # the organization's endpoints; not the file's row
        media_created(media_id=alices_media["id"], organization_id=alice.organization.pk)
    assert not WebhookMessage.objects.exists()
