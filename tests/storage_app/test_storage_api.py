"""The Storage API on the configured backend: every endpoint for owner, member, admin, outsider, anonymous."""
import pytest

from media_app.models import MediaFile
from quotas.models import Quota
from tests.factories import pdf_bytes, unique_png, upload

API = "/api/v1/storage"


def do_upload(actor, data=None, name="cat.png", category=None):
    payload = {"file": upload(name, data if data is not None else unique_png())}
    if category:
        payload["category"] = category
    return actor.client.post(f"{API}/upload", payload, format="multipart")


def error_of(response, status):
    assert response.status_code == status, response.content[:500]
    return response.json()["error"]


@pytest.fixture
def alices_file(alice):
    response = do_upload(alice)
    assert response.status_code == 201, response.content
    return response.json()


# -- upload --------------------------------------------------------------------------------
def test_an_upload_gets_a_unique_name_in_the_users_folder(alice):
    data = unique_png()
    response = do_upload(alice, data, name="My Cat.png")
    assert response.status_code == 201
    body = response.json()
    prefix = f"organizations/{alice.organization.pk}/files/{alice.user.pk}/My_Cat_"
    assert body["object_name"].startswith(prefix) and body["object_name"].endswith(".png")
    assert body["original_name"] == "My Cat.png"
    assert body["size"] == len(data) and body["content_type"] == "image/png" and body["category"] == "general"
    quota = Quota.objects.get(organization=alice.organization)
    assert (quota.used_bytes, quota.reserved_bytes, quota.file_count) == (len(data), 0, 1)


def test_two_uploads_of_the_same_name_do_not_overwrite(alice):
    first = do_upload(alice, name="same.png").json()["object_name"]
    second = do_upload(alice, name="same.png").json()["object_name"]
    assert first != second


def test_it_refuses_a_file_over_the_category_limit(alice, settings):
    from storage_app import categories

    big = unique_png() + b"\0" * (categories.PROFILE_IMAGE_MAX_BYTES + 1)
    error = error_of(do_upload(alice, big, category="profile_image"), 413)
    assert error["code"] == "max_size_exceeded"
    assert not MediaFile.objects.exists()
    assert Quota.objects.get(organization=alice.organization).reserved_bytes == 0


def test_it_refuses_a_file_over_the_deployment_limit(alice, settings):
    settings.MEDIA_MAX_BYTES = 1000
    error = error_of(do_upload(alice, unique_png() + b"\0" * 2000), 413)
    assert error["code"] == "max_size_exceeded"
    assert not MediaFile.objects.exists()


def test_it_refuses_an_upload_past_the_quota_and_leaves_usage_unchanged(alice, store_keys):
    Quota.objects.filter(organization=alice.organization).update(limit_override_bytes=100)
    error = error_of(do_upload(alice), 413)
    assert error["code"] == "quota_exceeded"
    quota = Quota.objects.get(organization=alice.organization)
    assert (quota.used_bytes, quota.reserved_bytes, quota.file_count) == (0, 0, 0)
    assert store_keys() == []


def test_a_pdf_renamed_png_is_not_a_profile_image(alice):
    error = error_of(do_upload(alice, pdf_bytes(), name="avatar.png", category="profile_image"), 415)
    assert error["code"] == "unsupported_media_type"
    assert not MediaFile.objects.exists()


def test_data_sources_accept_csv(alice):
    response = do_upload(alice, b"a,b,c\n1,2,3\n4,5,6\n", name="t.csv", category="data_source")
    assert response.status_code == 201
    assert response.json()["content_type"] == "text/csv"


@pytest.mark.parametrize("payload,param,code", [
    ({"file": upload("empty.png", b"")}, "file", "empty_file"),
    ({"category": "general"}, "file", "required"),
    ({"file": upload("x.png", unique_png()), "category": "selfies"}, "category", "invalid_category"),
])
def test_bad_upload_input_is_a_400_with_param(alice, payload, param, code):
    error = error_of(alice.client.post(f"{API}/upload", payload, format="multipart"), 400)
    assert error["param"] == param and error["code"] == code
    assert not MediaFile.objects.exists()


def test_a_declared_length_past_the_quota_is_refused_before_the_body_is_read(alice):
    Quota.objects.filter(organization=alice.organization).update(limit_override_bytes=10)
    response = alice.client.generic("POST", f"{API}/upload", data=b"x" * 100,
                                    content_type="multipart/form-data; boundary=zz")
    assert error_of(response, 413)["code"] == "quota_exceeded"


def test_storage_failing_after_the_bytes_were_accepted_leaves_nothing(alice, monkeypatch):
    from config.errors import StorageUnavailable
    from storage_app.backends import get_store

    def broken(self, key, stream, *, content_type):
        stream.read(1024)
        raise StorageUnavailable()

    monkeypatch.setattr(type(get_store()), "_write", broken)
    error = error_of(do_upload(alice), 503)
    assert error["code"] == "storage_unavailable"
    assert not MediaFile.objects.exists()
    assert Quota.objects.get(organization=alice.organization).reserved_bytes == 0


def test_anonymous_upload_is_401(anon, db):
    assert error_of(anon.post(f"{API}/upload", {"file": upload("a.png", unique_png())}, format="multipart"),
                    401)["code"] == "not_authenticated"


# -- listing -------------------------------------------------------------------------------
def test_members_list_only_their_own_files(alice, bob, alices_file):
    do_upload(bob)
    assert [f["id"] for f in alice.client.get(f"{API}/files").json()["files"]] == [alices_file["id"]]
    assert len(bob.client.get(f"{API}/files").json()["files"]) == 1


def test_admins_list_every_file_of_their_organization(alice, bob, carol, alices_file):
    do_upload(bob)
    assert carol.client.get(f"{API}/files").json()["total"] == 0  # their own, by default
    assert carol.client.get(f"{API}/files?user=*").json()["total"] == 2
    assert alice.client.get(f"{API}/files?user=*").json()["total"] == 2
    assert carol.client.get(f"{API}/files?user=bob").json()["total"] == 1


def test_members_may_not_list_another_members_files(alice, bob, alices_file):
    assert error_of(bob.client.get(f"{API}/files?user=alice"), 403)["code"] == "permission_denied"
    assert error_of(bob.client.get(f"{API}/files?user=*"), 403)["code"] == "permission_denied"


def test_other_organizations_see_nothing(alice, charlie, alices_file):
    assert charlie.client.get(f"{API}/files").json()["total"] == 0
    assert charlie.client.get(f"{API}/files?user=*").json()["total"] == 0
    assert charlie.client.get(f"{API}/files?user=alice").json()["total"] == 0


def test_files_are_page_numbered_and_filter_by_category(alice):
    for _ in range(3):
        do_upload(alice)
    do_upload(alice, b"a,b\n1,2\n", name="d.csv", category="data_source")
    body = alice.client.get(f"{API}/files?page=2&page_size=3").json()
    assert (body["total"], body["total_pages"], body["page"], len(body["files"])) == (4, 2, 2, 1)
    assert alice.client.get(f"{API}/files?category=data_source").json()["total"] == 1


@pytest.mark.parametrize("query,param", [("page=0", "page"), ("page_size=1000", "page_size"), ("page=x", "page")])
def test_bad_paging_is_a_400_with_param(alice, query, param):
    assert error_of(alice.client.get(f"{API}/files?{query}"), 400)["param"] == param


def test_files_list_needs_credentials(anon, db):
    assert anon.get(f"{API}/files").status_code == 401


# -- buckets -------------------------------------------------------------------------------
def test_buckets_and_objects_come_from_the_real_bucket_restricted_to_the_caller(alice, bob, alices_file):
    do_upload(bob)
    bucket = alice.client.get(f"{API}/buckets").json()["buckets"][0]["name"]
    objects = alice.client.get(f"{API}/buckets/{bucket}/objects").json()["objects"]
    assert [o["key"] for o in objects] == [alices_file["object_name"]]
    assert objects[0]["size"] > 0


def test_an_unknown_bucket_is_404(alice):
    assert error_of(alice.client.get(f"{API}/buckets/someone-elses/objects"), 404)["code"] == "bucket_not_found"


def test_a_traversing_prefix_is_refused(alice):
    bucket = alice.client.get(f"{API}/buckets").json()["buckets"][0]["name"]
    assert error_of(alice.client.get(f"{API}/buckets/{bucket}/objects?prefix=../../"), 400)["code"] == "invalid_path"


def test_buckets_need_credentials(anon, db):
    assert anon.get(f"{API}/buckets").status_code == 401


# -- objects -------------------------------------------------------------------------------
def test_metadata_by_full_key_and_by_unique_name(alice, alices_file):
    by_key = alice.client.get(f"{API}/objects/{alices_file['object_name']}/metadata")
    by_name = alice.client.get(f"{API}/objects/{alices_file['file_name']}/metadata")
    stored = {k: v for k, v in alices_file.items() if k != "deduped"}  # said by the upload's answer only
    assert by_key.json() == by_name.json() == stored


@pytest.mark.parametrize("who", ["bob", "charlie"])
def test_another_users_object_is_404(request, alices_file, who):
    actor = request.getfixturevalue(who)
    for suffix in ("/metadata", "/presigned-url"):
        assert actor.client.get(f"{API}/objects/{alices_file['object_name']}{suffix}").status_code == 404
    assert actor.client.delete(f"{API}/objects/{alices_file['object_name']}").status_code == 404
    assert actor.client.get(f"{API}/objects/{alices_file['file_name']}/metadata").status_code == 404


def test_admins_can_read_members_objects_by_full_key(carol, alices_file):
    assert carol.client.get(f"{API}/objects/{alices_file['object_name']}/metadata").status_code == 200


@pytest.mark.parametrize(("name", "rule"), [
    ("..%2F..%2Fetc%2Fpasswd", "The path has an empty, '.' or '..' segment."),
    ("a\\b.png", "The path contains a backslash or a control character."),
    ("%2e%2e/x.png", "The path has an empty, '.' or '..' segment."),
])
def test_traversal_in_object_names_is_refused(alice, name, rule):
    # Refused by the key rules before any lookup: never a 404 that would say "checked, not there".
    response = alice.client.get(f"{API}/objects/{name}/metadata")
    assert response.status_code == 400
    assert response.json()["error"] == {"message": rule, "type": "invalid_request_error", "code": "invalid_path",
                                         "param": "object_name"}


def test_objects_need_credentials(anon, alices_file):
    assert anon.get(f"{API}/objects/{alices_file['object_name']}/metadata").status_code == 401


def test_a_presigned_url_serves_the_bytes(alice, alices_file, client):
    import requests

    body = alice.client.get(f"{API}/objects/{alices_file['file_name']}/presigned-url?expires_in=60").json()
    assert body["expires_in"] == 60
    url = body["url"]
    if url.startswith("http://testserver"):
        response = client.get(url.removeprefix("http://testserver"))
        data = b"".join(response.streaming_content)
    else:
        data = requests.get(url, timeout=10).content
    assert len(data) == alices_file["size"]


@pytest.mark.parametrize("value", ["0", "-5", str(10**9), "soon"])
def test_bad_expiry_is_a_400(alice, alices_file, value):
    error = error_of(alice.client.get(f"{API}/objects/{alices_file['file_name']}/presigned-url?expires_in={value}"), 400)
    assert error["param"] == "expires_in"


def test_delete_releases_the_quota_at_once(alice, alices_file):
    assert alice.client.delete(f"{API}/objects/{alices_file['file_name']}").status_code == 204
    quota = Quota.objects.get(organization=alice.organization)
    assert (quota.used_bytes, quota.file_count) == (0, 0)
    assert alice.client.get(f"{API}/objects/{alices_file['file_name']}/metadata").status_code == 404
    assert alice.client.get(f"{API}/files").json()["total"] == 0


# -- usage and quota -----------------------------------------------------------------------
def test_usage_reports_used_reserved_limit_available_and_categories(alice, alices_file):
    body = alice.client.get(f"{API}/usage").json()
    assert body["used_bytes"] == alices_file["size"] and body["file_count"] == 1
    assert body["available_bytes"] == body["limit_bytes"] - body["used_bytes"]
    assert body["by_category"]["general"] == {"bytes": alices_file["size"], "files": 1}


def test_quota_reports_the_plan(alice):
    body = alice.client.get(f"{API}/quota").json()
    assert body["plan"]["slug"] == "organization"
    assert set(body["allowed_categories"]) == {"general", "data_source", "profile_image"}
    assert body["categories"]["profile_image"]["max_file_bytes"] <= 5 * 1024 * 1024


@pytest.mark.parametrize("path", ["usage", "quota"])
def test_usage_and_quota_are_per_organization(charlie, alices_file, path):
    assert charlie.client.get(f"{API}/{path}").json()["organization"] == "globex"
    if path == "usage":
        assert charlie.client.get(f"{API}/usage").json()["used_bytes"] == 0


@pytest.mark.parametrize("path", ["usage", "quota"])
def test_usage_and_quota_need_credentials(anon, db, path):
    assert anon.get(f"{API}/{path}").status_code == 401


def test_admins_recalculate_and_see_the_drift(alice, carol, alices_file):
    Quota.objects.filter(organization=alice.organization).update(used_bytes=999_999, file_count=7)
    body = carol.client.post(f"{API}/quota/recalculate").json()
    assert body["changed"] is True
    assert body["before"]["used_bytes"] == 999_999
    assert body["after"] == {"used_bytes": alices_file["size"], "reserved_bytes": 0, "file_count": 1}


def test_members_may_not_recalculate(bob):
    assert error_of(bob.client.post(f"{API}/quota/recalculate"), 403)["code"] == "permission_denied"


def test_recalculate_needs_credentials(anon, db):
    assert anon.post(f"{API}/quota/recalculate").status_code == 401


def test_a_duplicate_upload_answers_the_existing_file_as_the_media_api_does(alice):
    data = unique_png()
    first = do_upload(alice, data, name="a.png")
    assert first.status_code == 201 and first.json()["deduped"] is False
    again = do_upload(alice, data, name="b.png")
    assert again.status_code == 200 and again.json()["deduped"] is True
    assert again.json()["id"] == first.json()["id"]
    assert MediaFile.objects.filter(status=MediaFile.Status.ACTIVE).count() == 1
    media = alice.client.post("/v1/media/upload", {"file": upload("c.png", data)}, format="multipart")
    assert (media.status_code, media.json()["deduped"]) == (200, True)


def test_the_schema_documents_both_answers_of_an_upload(anon):
    import yaml

    schema = yaml.safe_load(anon.get("/api/schema").content)
    responses = schema["paths"]["/api/v1/storage/upload"]["post"]["responses"]
    assert {"200", "201"} <= set(responses)
    stored = schema["components"]["schemas"]["StoredUpload"]
    assert stored["properties"]["deduped"]["type"] == "boolean"
