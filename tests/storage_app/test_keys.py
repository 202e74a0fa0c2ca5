from datetime import datetime

import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st

from config.errors import InvalidPath
from storage_app.keys import (
    build_user_key, compute_key, compute_prefix, user_prefix, validate_compute_path, validate_key,
)

HOSTILE = [
    "../x.png", "a/../b", "..", ".", "/etc/passwd", "a//b.png", "a/./b.png", "a\\b.png", "a\x00.png",
    "%2e%2e/x", "a%2fb", "%252e%252e/x", "a%00.png", "", "a/", "/", "a\nb", "a\x7fb", ".hidden/x",
    "x" * 2000,
]


@pytest.mark.parametrize("key", HOSTILE)
def test_it_rejects_hostile_keys(key):
    with pytest.raises(InvalidPath) as caught:
        validate_compute_path(key)
    assert caught.value.status == 400
    assert caught.value.code == "invalid_path"


def test_it_rejects_non_strings():
    with pytest.raises(InvalidPath):
        validate_key(None)


@pytest.mark.parametrize("key", ["a.png", "generations/2025/img_01.webp", "a-b_c~d+e=f@g,h/x.y.z"])
def test_it_accepts_plain_relative_paths(key):
    assert validate_compute_path(key) == key
    assert compute_key(key, 7) == f"compute/7/{key}"


@pytest.mark.parametrize("key", HOSTILE)
def test_compute_keys_refuse_hostile_paths_whatever_the_organization(key):
    with pytest.raises(InvalidPath):
        compute_key(key, 7)


def test_compute_prefixes_are_per_organization_and_slash_terminated_so_org1_is_not_org10():
    assert compute_prefix(1) == "compute/1/"
    assert not compute_prefix(10).startswith(compute_prefix(1))
    # Another organization's namespace named as a path stays inside the caller's.
    assert compute_key("2/gen/a.png", 1) == "compute/1/2/gen/a.png"


def test_user_keys_follow_the_documented_layout():
    key = build_user_key(org_id=7, user_id=42, original_name="My Cat (1).PNG", ext="png",
                         now=datetime(2025, 3, 25, 12, 0, 1))
    assert key.startswith("organizations/7/files/42/My_Cat_1_20250325_120001_")
    assert key.endswith(".png")
    assert len(key.rsplit("_", 1)[1]) == len("abcd1234.png")


def test_user_keys_survive_hostile_original_names():
    key = build_user_key(org_id=1, user_id=1, original_name="../../etc/passwd\x00.sh", ext=None)
    assert key.startswith("organizations/1/files/1/passwd_")
    validate_key(key)


def test_user_prefixes_are_slash_terminated_so_org1_is_not_org10():
    assert not user_prefix(10, 1).startswith(user_prefix(1, 1))


_segment_chars = st.sampled_from(list("abc./\\%\x00\n\t ~-_") + ["..", "%2e", "%2f", "%00", "//", "\u202e"])


@hsettings(max_examples=500, deadline=None)
@given(st.lists(_segment_chars, min_size=1, max_size=30).map("".join))
def test_no_generated_hostile_path_is_accepted(path):
    try:
        validate_compute_path(path)
    except InvalidPath:
        return
    # Whatever got through is a plain relative path with no traversal or encoding.
    segments = path.split("/")
    assert not path.startswith("/")
    assert all(s not in ("", ".", "..") and not s.startswith(".") for s in segments)
    assert not any(ch in path for ch in "\\%\x00\n\t \u202e")


def test_variant_keys_sit_under_their_originals_content_in_the_organization():
    from storage_app.keys import is_variant_key, variant_key

    key = variant_key(org_id=3, sha256="ab" * 32, name="w256_h0_inside_q80_webp", ext="webp")
    assert key == f"organizations/3/variants/{'ab' * 32}/w256_h0_inside_q80_webp.webp"
    assert is_variant_key(key) and not is_variant_key("organizations/3/files/1/x.png")
    with pytest.raises(InvalidPath):
        variant_key(org_id=3, sha256="../../etc", name="x", ext="png")


def test_a_signed_transform_is_part_of_the_signature():
    from config.errors import SignatureInvalid
    from storage_app import signing

    grant = signing.make_grant("get", "organizations/1/files/1/a.png", 60, transform="w64_h0_inside_q80_webp")
    params = signing.grant_params(grant)
    assert signing.verify("get", grant.key, params).transform == "w64_h0_inside_q80_webp"
    for changed in ({"tf": "w2048_h0_inside_q80_webp"}, {"tf": ""}):
        with pytest.raises(SignatureInvalid):
            signing.verify("get", grant.key, {**params, **changed})
