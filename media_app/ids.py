"""Media ids: `MEDIA_ID_PREFIX` + a lowercase 26-character ULID (sortable, opaque, unique)."""
from __future__ import annotations

import re

from django.conf import settings
from ulid import ULID

_ULID_BODY = re.compile(r"^[0-9a-hjkmnp-tv-z]{26}$")


def media_id_new() -> str:
    return f"{settings.MEDIA_ID_PREFIX}{str(ULID()).lower()}"


def media_id_valid(value: object) -> bool:
    """Shape check only: an id of the configured prefix and a Crockford base32 body."""
    prefix = settings.MEDIA_ID_PREFIX
    return isinstance(value, str) and value.startswith(prefix) and bool(_ULID_BODY.match(value[len(prefix):]))
