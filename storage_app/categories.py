"""Upload categories: which (sniffed) content types an upload may have, and how big.

    category = get_category(request.data.get("category"))   # None -> general
    category_check(category, sniffed)                        # 415 unsupported_media_type
    limit = effective_max_bytes(category, plan_max_bytes)

Decisions are made on the *sniffed* type (see `storage_app.sniff`), never on the
file name or the client's declared Content-Type.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from config.errors import InvalidRequest, TooLarge, UnsupportedMediaType
from storage_app.sniff import (
    DOCX, HTML_MIMES, NDJSON, PARQUET, PPTX, XLSX, Sniffed, as_declared, is_executable, normalize_mime,
)

__all__ = [
    "Category", "CATEGORIES", "ALL_CATEGORIES", "GENERAL", "DATA_SOURCE", "PROFILE_IMAGE",
    "PROFILE_IMAGE_MAX_BYTES", "DATA_SOURCE_MAX_BYTES", "PROFILE_IMAGE_MIMES", "DATA_SOURCE_MIMES",
    "get_category", "category_check", "category_check_declared", "effective_max_bytes", "check_size",
]

PROFILE_IMAGE_MAX_BYTES = 5 * 1024 * 1024
DATA_SOURCE_MAX_BYTES = 100 * 1024 * 1024

PROFILE_IMAGE_MIMES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"})

DATA_SOURCE_MIMES = frozenset({
    "text/csv", "text/tab-separated-values", "application/json", NDJSON, "text/plain",
    "application/pdf", XLSX, DOCX, PPTX, PARQUET, "application/xml",
})


@dataclass(frozen=True)
class Category:
    name: str
    allowed: Callable[[Sniffed], bool]   # decided on the sniffed type
    max_bytes: int | None                # None: only the plan's per-file limit applies
    description: str = ""                # what is allowed, for error messages and docs

    def allows(self, sniffed: Sniffed) -> bool:
        return bool(self.allowed(sniffed))


def _profile_image_allowed(sniffed: Sniffed) -> bool:
    return normalize_mime(sniffed.mime) in PROFILE_IMAGE_MIMES


def _data_source_allowed(sniffed: Sniffed) -> bool:
    return normalize_mime(sniffed.mime) in DATA_SOURCE_MIMES


def _general_allowed(sniffed: Sniffed) -> bool:
    mime = normalize_mime(sniffed.mime)
    return not is_executable(mime) and mime not in HTML_MIMES


GENERAL = Category(
    name="general",
    allowed=_general_allowed,
    max_bytes=None,
    description="any file except executables (ELF, PE, Mach-O, scripts) and HTML",
)
DATA_SOURCE = Category(
    name="data_source",
    allowed=_data_source_allowed,
    max_bytes=DATA_SOURCE_MAX_BYTES,
    description="CSV, TSV, JSON, JSON Lines, plain text, PDF, XLSX, DOCX, PPTX, Parquet or XML",
)
PROFILE_IMAGE = Category(
    name="profile_image",
    allowed=_profile_image_allowed,
    max_bytes=PROFILE_IMAGE_MAX_BYTES,
    description="PNG, JPEG, GIF, WebP or AVIF images",
)

ALL_CATEGORIES: tuple[Category, ...] = (GENERAL, DATA_SOURCE, PROFILE_IMAGE)
CATEGORIES: tuple[str, ...] = tuple(c.name for c in ALL_CATEGORIES)
"""Valid category names, default first: ("general", "data_source", "profile_image")."""

_BY_NAME = {c.name: c for c in ALL_CATEGORIES}


def get_category(name: str | None) -> Category:
    """The category called `name`; None or "" means `general`.

    Unknown names raise InvalidRequest(code="invalid_category", param="category").
    """
    if name is None:
        return GENERAL
    if isinstance(name, str):
        key = name.strip().lower()
        if not key:
            return GENERAL
        found = _BY_NAME.get(key)
        if found is not None:
            return found
        shown = name.strip()
        shown = shown if len(shown) <= 64 else shown[:61] + "..."
    else:
        shown = type(name).__name__
    raise InvalidRequest(
        f"Unknown category '{shown}'. Valid categories: {', '.join(CATEGORIES)}.",
        code="invalid_category", param="category",
    )


def category_check(category: Category, sniffed: Sniffed, *, param: str = "file",
                   what: str = "Detected file type") -> None:
    """Raise 415 `unsupported_media_type` (param "file") if the content is not allowed."""
    if category.allows(sniffed):
        return
    raise UnsupportedMediaType(
        f"{what} '{sniffed.mime}' is not allowed for category "
        f"'{category.name}'. Allowed: {category.description}.",
        param=param,
    )


def category_check_declared(category: Category, declared_mime: str | None, *, param: str) -> None:
    """Refuse, before any byte arrives, a declared type whose content `category_check` would
    refuse at completion (content of another type would be refused there as a mismatch)."""
    declared = as_declared(declared_mime)
    if declared is not None:
        category_check(category, declared, param=param, what="Declared type")


def effective_max_bytes(category: Category, plan_max: int | None) -> int | None:
    """The per-file size limit: the plan's limit, lowered to the category's if it has one."""
    if category.max_bytes is None:
        return plan_max
    if plan_max is None:
        return category.max_bytes
    return min(category.max_bytes, plan_max)


def check_size(category: Category, size: int, plan_max: int | None) -> None:
    """Raise 413 `max_size_exceeded` (param "file") if `size` bytes is over the limit."""
    limit = effective_max_bytes(category, plan_max)
    if limit is not None and size > limit:
        raise TooLarge(
            f"File size {size:,} bytes exceeds the maximum of {limit:,} bytes "
            f"for category '{category.name}'.",
            param="file",
        )
