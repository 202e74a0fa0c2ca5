from datetime import datetime

import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st

from config.errors import InvalidPath
from storage_app.keys import (
    MAX_COMPUTE_PATH_LENGTH, MAX_KEY_LENGTH, MAX_NAME_STEM, build_user_key, compute_key, compute_prefix,
    parse_staging_key, safe_extension, safe_stem, upload_staging_key, user_prefix, validate_compute_path,
    validate_key,
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


@pytest.mark.parametrize("sha256", ["../../etc", "", "ab" * 31, "ab" * 33, "zz" * 32, "ab" * 32 + "/..",
                                    "ab" * 32 + "\n"])
def test_a_variant_of_anything_but_a_sha256_is_refused_under_the_sha256_parameter(sha256):
    from storage_app.keys import variant_prefix

    with pytest.raises(InvalidPath) as caught:
        variant_prefix(3, sha256)
    assert (caught.value.message, caught.value.param, caught.value.code, caught.value.status) == (
        "A variant needs the original's SHA-256.", "sha256", "invalid_path", 400)


def test_a_signed_transform_is_part_of_the_signature():
    from config.errors import SignatureInvalid
    from storage_app import signing

    grant = signing.make_grant("get", "organizations/1/files/1/a.png", 60, transform="w64_h0_inside_q80_webp")
    params = signing.grant_params(grant)
    assert signing.verify("get", grant.key, params).transform == "w64_h0_inside_q80_webp"
    for changed in ({"tf": "w2048_h0_inside_q80_webp"}, {"tf": ""}):
        with pytest.raises(SignatureInvalid):
            signing.verify("get", grant.key, {**params, **changed})


# Each rule answers with its own message, so a client (and a test) can tell which one refused
# the key: a rule that stopped matching would otherwise hide behind a later, broader one.
RULES = [
    ("", "The path is empty."),
    ("/abs.png", "The path must be relative."),
    ("a%2fb", "Percent-encoded characters are not allowed in paths."),
    ("a\\b.png", "The path contains a backslash or a control character."),
    ("a\x1fb.png", "The path contains a backslash or a control character."),
    ("a\x7fb.png", "The path contains a backslash or a control character."),
    ("a//b.png", "The path has an empty, '.' or '..' segment."),
    ("a/./b.png", "The path has an empty, '.' or '..' segment."),
    ("a/../b.png", "The path has an empty, '.' or '..' segment."),
    ("a b.png", "The path segment 'a b.png' has characters that are not allowed."),
    ("a\x80b.png", "The path segment 'a\\x80b.png' has characters that are not allowed."),
    (".hidden/x", "The path segment '.hidden' has characters that are not allowed."),
]


@pytest.mark.parametrize(("key", "message"), RULES)
def test_each_rule_refuses_with_its_own_message_naming_the_key_parameter(key, message):
    with pytest.raises(InvalidPath) as caught:
        validate_key(key)
    assert (caught.value.message, caught.value.param, caught.value.code) == (message, "key", "invalid_path")


@pytest.mark.parametrize("key", [None, 123, b"a.png"])
def test_a_key_that_is_not_a_string_is_refused_as_empty(key):
    with pytest.raises(InvalidPath) as caught:
        validate_key(key)
    assert caught.value.message == "The path is empty."


def test_compute_paths_are_refused_under_the_path_parameter():
    with pytest.raises(InvalidPath) as caught:
        validate_compute_path("../x.png")
    assert (caught.value.param, caught.value.message) == ("path", "The path has an empty, '.' or '..' segment.")


def test_a_refused_segment_is_quoted_up_to_forty_characters():
    with pytest.raises(InvalidPath) as caught:
        validate_key("a" * 50 + " b")
    assert caught.value.message == f"The path segment {'a' * 40!r} has characters that are not allowed."


def test_keys_may_be_exactly_as_long_as_the_limit_and_not_one_character_longer():
    at_limit = "a/" * 511 + "bc"
    assert len(at_limit) == MAX_KEY_LENGTH and validate_key(at_limit) == at_limit
    with pytest.raises(InvalidPath) as caught:
        validate_key(at_limit + "d")
    assert caught.value.message == f"The path is longer than {MAX_KEY_LENGTH} characters."


def test_compute_paths_have_their_own_shorter_limit():
    at_limit = "a" * MAX_COMPUTE_PATH_LENGTH
    assert validate_compute_path(at_limit) == at_limit
    with pytest.raises(InvalidPath) as caught:
        validate_compute_path(at_limit + "a")
    assert (caught.value.message, caught.value.param) == (
        f"The path is longer than {MAX_COMPUTE_PATH_LENGTH} characters.", "path")


def test_a_staging_key_is_the_organizations_uploads_folder_and_parses_back():
    key = upload_staging_key(7, "med_Ab-1")
    assert key == "organizations/7/uploads/med_Ab-1"
    assert parse_staging_key(key) == (7, "med_Ab-1")


@pytest.mark.parametrize("key", [
    "organizations/7/files/1/a.png", "organizations/7/uploads/a/b", "organizations/x/uploads/a",
    "compute/7/uploads/a", "organizations/7/uploads/a.png",
])
def test_any_other_key_is_not_a_staging_key(key):
    assert parse_staging_key(key) is None


@pytest.mark.parametrize(("name", "stem"), [
    ("My Cat (1).PNG", "My_Cat_1"),
    ("dir/sub/photo.png", "photo"),
    ("C:\\Users\\me\\photo.png", "photo"),
    ("my.holiday.cat.png", "my_holiday_cat"),
    ("Café crème.jpg", "Cafe_creme"),
    ("Xray_.png", "Xray"),
    ("--_a_--.png", "a"),
    ("…!!!.png", "file"),
    ("x" * 100 + ".png", "x" * MAX_NAME_STEM),
])
def test_the_stem_keeps_the_last_path_part_without_its_extension_in_plain_ascii(name, stem):
    assert safe_stem(name) == stem


@pytest.mark.parametrize(("ext", "name", "expected"), [
    ("webp", "x.png", "webp"),        # the sniffed extension wins
    ("PNG", "x", "png"),
    (None, "photo.JPG", "jpg"),       # else the original name's
    (None, "archive.tar.gz", "gz"),
    ("not an ext", "photo.png", "png"),
    (None, "noext", "bin"),           # else bin
    (None, "photo.p n g", "bin"),
    ("", "", "bin"),
])
def test_the_extension_is_the_sniffed_one_else_the_names_else_bin(ext, name, expected):
    assert safe_extension(ext, name) == expected


def test_user_keys_take_the_sniffed_extension_and_else_the_names():
    now = datetime(2025, 3, 25, 12, 0, 1)
    assert build_user_key(org_id=1, user_id=2, original_name="x.png", ext="webp", now=now).endswith(".webp")
    assert build_user_key(org_id=1, user_id=2, original_name="x.png", ext=None, now=now).endswith(".png")
    assert "/file_20250325_120001_" in build_user_key(org_id=1, user_id=2, original_name="...", ext=None, now=now)


def test_a_trailing_newline_is_not_part_of_any_pattern():
    # `$` matches before a final newline; the patterns must match the whole string.
    from storage_app.keys import parse_staging_key, safe_extension

    assert safe_extension(None, "cat.png\n") == "bin"
    assert safe_extension("png\n") == "bin"
    assert parse_staging_key("organizations/1/uploads/abc\n") is None
    assert parse_staging_key("organizations/1/uploads/abc") == (1, "abc")


def test_an_upload_named_with_a_trailing_newline_gets_a_valid_key():
    key = build_user_key(org_id=1, user_id=2, original_name="cat.png\n", ext=None, now=datetime(2025, 1, 2, 3, 4, 5))
    assert key.startswith("organizations/1/files/2/cat_20250102_030405_") and key.endswith(".bin")
