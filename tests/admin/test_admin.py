"""The operators' admin, through Django's test client."""
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import ApiKey
from media_app.models import MediaFile
from quotas.models import Quota
from tests.factories import unique_png


@pytest.fixture
def operator(db, client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456-long")
    client.force_login(user)
    return client


@pytest.fixture
def files(alice, post_file):
    return [post_file(alice, prompt=f"picture {i}", model="stability/sdxl", provider="stability").json()["id"]
            for i in range(3)]


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    return len(captured)


@pytest.mark.parametrize("url", [
    "/admin/accounts/organization/", "/admin/accounts/apikey/", "/admin/accounts/membership/",
    "/admin/quotas/plan/", "/admin/quotas/quota/", "/admin/media_app/mediafile/",
    "/admin/media_app/sourcecleanup/", "/admin/media_app/jobrun/",
])
def test_every_list_page_opens(operator, files, url):
    assert operator.get(url).status_code == 200


def test_list_pages_run_a_fixed_number_of_queries(operator, alice, post_file):
    post_file(alice)
    few = {url: _queries(operator, url) for url in ("/admin/media_app/mediafile/", "/admin/accounts/organization/",
                                                     "/admin/quotas/quota/", "/admin/accounts/apikey/")}
    for _ in range(6):
        post_file(alice)
    from accounts.services import organization_create

    for i in range(4):
        organization_create(name=f"Org {i}")
    for url, count in few.items():
        assert _queries(operator, url) == count, url


def test_the_media_list_never_reads_file_bytes(operator, files, monkeypatch):
    from storage_app.backends import get_store

    def no_bytes(*args, **kwargs):
        raise AssertionError("the admin read file bytes")

    monkeypatch.setattr(type(get_store()), "_read", no_bytes)
    response = operator.get("/admin/media_app/mediafile/")
    assert response.status_code == 200
    assert response.content.count(b'loading="lazy"') == 3  # thumbnails: signed URLs the browser loads
    assert operator.get(f"/admin/media_app/mediafile/{files[0]}/change/").status_code == 200


def test_the_media_list_shows_128_px_variants_not_originals(operator, files):
    import html
    import re

    page = operator.get("/admin/media_app/mediafile/").content.decode()
    urls = [html.unescape(url) for url in re.findall(r'<img src="(http[^"]+)"', page)]
    assert len(urls) == 3 and all("tf=w128_h128_inside_q80_webp" in url for url in urls)
    thumbnail = operator.get(urls[0].removeprefix("http://testserver"))
    assert thumbnail.status_code == 200 and thumbnail["Content-Type"] == "image/webp"


@pytest.mark.parametrize("query", ["q=picture+1", "status__exact=active", "media_kind__exact=image",
                                   "provider=stability", "visibility__exact=private", "category__exact=general"])
def test_media_search_and_filters(operator, files, query):
    assert operator.get(f"/admin/media_app/mediafile/?{query}").status_code == 200


def test_search_by_sha256_and_id(operator, files):
    media = MediaFile.objects.get(pk=files[1])
    for term in (media.sha256, media.pk):
        content = operator.get(f"/admin/media_app/mediafile/?q={term}").content.decode()
        assert files[1] in content and files[0] not in content


def _act(client, action: str, ids: list[str], model: str = "media_app/mediafile"):
    return client.post(f"/admin/{model}/", {"action": action, "_selected_action": ids}, follow=True)


def test_delete_restore_and_visibility_actions_call_the_services(operator, alice, files):
    _act(operator, "delete_files", files[:2])
    assert set(MediaFile.objects.filter(pk__in=files).values_list("status", flat=True)) == {"active", "deleted"}
    assert Quota.objects.get(organization=alice.organization).file_count == 1
    _act(operator, "restore_files", files[:1])
    assert MediaFile.objects.get(pk=files[0]).status == "active"
    assert Quota.objects.get(organization=alice.organization).file_count == 2
    _act(operator, "make_public", files[:1])
    assert MediaFile.objects.get(pk=files[0]).visibility == "public"
    _act(operator, "make_private", files[:1])
    assert MediaFile.objects.get(pk=files[0]).visibility == "private"


def test_recalculate_quota_action(operator, alice, files):
    Quota.objects.filter(organization=alice.organization).update(used_bytes=1, file_count=99)
    _act(operator, "recalculate_quota", [alice.organization.pk], "accounts/organization")
    quota = Quota.objects.get(organization=alice.organization)
    assert quota.file_count == 3 and quota.used_bytes == sum(MediaFile.objects.values_list("bytes", flat=True))


def test_creating_an_api_key_shows_the_secret_once(operator, alice):
    response = operator.post("/admin/accounts/apikey/add/", {
        "organization": alice.organization.pk, "user": alice.user.pk, "kind": "service", "name": "ci"}, follow=True)
    assert response.status_code == 200
    text = response.content.decode()
    key = ApiKey.objects.get(name="ci")
    assert f"<code>{key.prefix}_" in text
    secret = text.split("<code>", 1)[1].split("</code>", 1)[0]
    from rest_framework.test import APIClient

    assert APIClient().get("/v1/media", HTTP_X_API_KEY=secret).status_code == 200
    assert secret not in operator.get(f"/admin/accounts/apikey/{key.pk}/change/").content.decode()


def test_revoking_keys(operator, alice):
    key = ApiKey.objects.get(user=alice.user)
    _act(operator, "revoke", [key.pk], "accounts/apikey")
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    assert alice.client.get("/v1/media").status_code == 401


def test_staff_without_superuser_rights_see_only_what_they_are_granted(client, files):
    staff = get_user_model().objects.create_user("support", password="pw-123456-long", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_mediafile"))
    client.force_login(staff)
    assert client.get("/admin/media_app/mediafile/").status_code == 200
    assert client.get("/admin/accounts/apikey/").status_code == 403
    assert client.get("/admin/accounts/organization/").status_code == 403
    _act(client, "delete_files", files[:1])
    assert MediaFile.objects.get(pk=files[0]).status == "active"  # view-only: no actions
    page = client.get("/admin/").content.decode()
    assert "Media files" in page and "API keys" not in page


def test_anonymous_visitors_are_sent_to_the_login(client, db):
    response = client.get("/admin/media_app/mediafile/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_purge_now_removes_the_objects_of_selected_deleted_files(operator, files, store_keys):
    _act(operator, "delete_files", files[:2])
    _act(operator, "purge_now", files)  # the active one is left alone
    statuses = dict(MediaFile.objects.values_list("pk", "status"))
    assert [statuses[i] for i in files] == ["purged", "purged", "active"]
    keys = store_keys("organizations/")
    assert keys == [MediaFile.objects.get(pk=files[2]).storage_key]


@pytest.mark.parametrize("path, target", [("/admin", "/admin/"), ("/admin/media_app/mediafile", "/admin/media_app/mediafile/")])
def test_an_admin_page_without_its_trailing_slash_redirects(operator, path, target):
    response = operator.get(path)
    assert response.status_code == 301 and response["Location"] == target


@pytest.mark.parametrize("path", ["/api/v1/storage/usage/", "/v1/media/", "/api/v1/storage/files/"])
def test_an_api_path_keeps_its_exact_route(alice, path):
    response = alice.client.get(path)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
