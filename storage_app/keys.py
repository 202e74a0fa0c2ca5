"""Storage keys: one builder, one validator, called before every storage call.

User files: `organizations/{org_id}/files/{user_id}/{name}_{YYYYMMDD_HHMMSS}_{uuid8}.{ext}`.
Presigned uploads land first under `organizations/{org_id}/uploads/{media_id}` (their staging
key); completion moves them to the file's key, so no upload URL can ever write a live file.
Image variants (thumbnails, transforms): `organizations/{org_id}/variants/{sha256}/{transform}.{ext}`,
one folder per original's content, so purging an original removes its folder.
Compute images: `compute/{org_id}/{path}`, one namespace per organization; clients name them
by `{path}` alone (`compute/{path}` when ingesting).
"""
from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import datetime

from config.errors import InvalidPath

MAX_KEY_LENGTH = 1024
MAX_COMPUTE_PATH_LENGTH = 512
MAX_NAME_STEM = 80
COMPUTE_PREFIX = "compute/"
ORGANIZATIONS_PREFIX = "organizations/"
UPLOADS_SEGMENT = "uploads"
VARIANTS_SEGMENT = "variants"

# ASCII only: letters, digits and a few punctuation marks that need no escaping anywhere.
# Matched with fullmatch: `$` would also match before a trailing newline.
_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9_\-~+=@,][A-Za-z0-9._\-~+=@,]*")
_UNSAFE_CHARACTER = re.compile(r"[\\\x00-\x1f\x7f]")  # a backslash, a control character or DEL
_STEM_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_EXT = re.compile(r"[a-z0-9]{1,10}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_VARIANT = re.compile(r"organizations/[0-9]{1,18}/variants/[0-9a-f]{64}/[^/]+")
_STAGING = re.compile(r"organizations/(?P<org>[0-9]{1,18})/uploads/(?P<media>[A-Za-z0-9_-]{1,64})")


def validate_key(key: object, *, max_length: int = MAX_KEY_LENGTH, param: str = "key") -> str:
    """Return `key` if it is a safe relative key, else raise `InvalidPath`.

    Refused: non-strings, empty, too long, absolute, backslashes, NUL and control characters,
    any `%` (so no percent-encoded form of these can slip through a later decode), empty,
    `.`/`..` and hidden segments, and characters outside a conservative ASCII set.
    """
    if not isinstance(key, str) or not key:
        raise InvalidPath("The path is empty.", param=param)
    if len(key) > max_length:
        raise InvalidPath(f"The path is longer than {max_length} characters.", param=param)
    if key.startswith("/"):
        raise InvalidPath("The path must be relative.", param=param)
    if "%" in key:
        raise InvalidPath("Percent-encoded characters are not allowed in paths.", param=param)
    if _UNSAFE_CHARACTER.search(key):
        raise InvalidPath("The path contains a backslash or a control character.", param=param)
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidPath("The path has an empty, '.' or '..' segment.", param=param)
        if not _SAFE_SEGMENT.fullmatch(segment):
            raise InvalidPath(f"The path segment {segment[:40]!r} has characters that are not allowed.", param=param)
    return key


def validate_compute_path(path: object) -> str:
    return validate_key(path, max_length=MAX_COMPUTE_PATH_LENGTH, param="path")


def compute_prefix(org_id: int) -> str:
    """An organization's compute namespace: one organization's service keys never see another's."""
    return f"{COMPUTE_PREFIX}{org_id}/"


def compute_key(path: str, org_id: int) -> str:
    """The real storage key of the client-facing compute `path`, inside the organization's namespace."""
    return compute_prefix(org_id) + validate_compute_path(path)


def user_prefix(org_id: int, user_id: int) -> str:
    """The caller's folder, slash-terminated so `1/` never matches `10/`."""
    return f"{ORGANIZATIONS_PREFIX}{org_id}/files/{user_id}/"


def organization_prefix(org_id: int) -> str:
    return f"{ORGANIZATIONS_PREFIX}{org_id}/"


def upload_staging_key(org_id: int, media_id: str) -> str:
    """Where a presigned upload's bytes arrive, until completion moves them to the file's key."""
    return validate_key(f"{organization_prefix(org_id)}{UPLOADS_SEGMENT}/{media_id}")


def parse_staging_key(key: str) -> tuple[int, str] | None:
    """(org_id, media_id) of a staging key; None for any other key."""
    match = _STAGING.fullmatch(key)
    return (int(match["org"]), match["media"]) if match else None


def variant_prefix(org_id: int, sha256: str) -> str:
    """The folder of every variant of one original's content in an organization."""
    if not _SHA256.fullmatch(sha256):
        raise InvalidPath("A variant needs the original's SHA-256.", param="sha256")
    return f"{organization_prefix(org_id)}{VARIANTS_SEGMENT}/{sha256}/"


def variant_key(*, org_id: int, sha256: str, name: str, ext: str) -> str:
    """A variant's key: its original's content and its normalised transform name."""
    return validate_key(f"{variant_prefix(org_id, sha256)}{name}.{safe_extension(ext)}")


def is_variant_key(key: str) -> bool:
    return bool(_VARIANT.fullmatch(key))


def safe_stem(original_name: str) -> str:
    stem = original_name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    if "." in stem:
        stem = stem.rsplit(".", 1)[0]
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    cleaned = _STEM_UNSAFE.sub("_", ascii_stem).strip("_-")[:MAX_NAME_STEM]
    return cleaned or "file"


def safe_extension(ext: str | None, original_name: str = "") -> str:
    """The sniffed extension wins; else the original name's, if plain; else `bin`."""
    for candidate in (ext, original_name.rsplit(".", 1)[-1] if "." in original_name else None):
        if candidate and _EXT.fullmatch(candidate.lower()):
            return candidate.lower()
    return "bin"


def build_user_key(*, org_id: int, user_id: int, original_name: str, ext: str | None,
                   now: datetime | None = None) -> str:
    now = now or datetime.utcnow()
    unique = f"{safe_stem(original_name)}_{now:%Y%m%d_%H%M%S}_{uuid.uuid4().hex[:8]}"
    key = f"{user_prefix(org_id, user_id)}{unique}.{safe_extension(ext, original_name)}"
    return validate_key(key)
