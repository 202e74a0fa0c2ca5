"""Media references inside a model request, replaced by what a provider can read (`POST /v1/media/resolve`).

A reference is a string that is exactly a media id (seed 004's `"image_url": {"url": "med_..."}`)
or Jan's placeholder `data:<mime>;<id>` anywhere inside a string. Every id of the payload is
looked up in one query among the files the caller may read; any other id fails the whole call
(404 naming where it was) so an answer never tells which of someone else's ids exist. Each
file then becomes a signed URL or, for providers that cannot reach the store, its bytes inline;
with a `format`, each content part holding a reference becomes the provider's own part.
"""
from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings

from accounts.principal import Principal
from config.errors import InvalidRequest, NotFound, TooLarge
from media_app.links import MediaLinks
from media_app.models import MediaFile
from media_app.providers import Resolved, native_part
from media_app.selectors import media_resolve

MAX_REFERENCES = 1000
_ID_BODY = "[0-9a-hjkmnp-tv-z]{26}"
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
Path = tuple[str | int, ...]


class PayloadTooLarge(TooLarge):
    code = "payload_too_large"
    message = "The payload is larger than MEDIA_RESOLVE_MAX_PAYLOAD_BYTES."


class InlineTooLarge(TooLarge):
    code = "inline_too_large"


class TooManyReferences(InvalidRequest):
    code = "too_many_references"


@dataclass(frozen=True)
class ResolveOptions:
    inline: bool = False  # "as": "data_url"
    ttl: int | None = None
    format: str | None = None


@lru_cache(maxsize=4)
def _patterns(prefix: str) -> tuple[re.Pattern, re.Pattern]:
    """(a whole id, a placeholder) for the configured id prefix; the id must not run on."""
    media_id = re.escape(prefix) + _ID_BODY
    whole = re.compile(media_id)
    placeholder = re.compile(rf"data:([A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+);({media_id})(?![0-9A-Za-z])")
    return whole, placeholder


def json_path(path: Path) -> str:
    """`payload.messages[0].content[1].image_url.url`: where a reference was, for `param`."""
    out = "payload"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if _KEY.match(part) else f"[{json.dumps(part)}]"
    return out


def media_resolve_check_size(*, size: int) -> None:
    """Refused before it is parsed: walking and rewriting cost in proportion to the payload."""
    limit = settings.MEDIA_RESOLVE_MAX_PAYLOAD_BYTES
    if size > limit:
        raise PayloadTooLarge(f"The request has {size} bytes; resolve takes at most {limit}.", param="payload")


def media_payload_resolve(*, principal: Principal, payload: Any, options: ResolveOptions,
                          links: MediaLinks) -> Any:
    """`payload` with every reference replaced; one query for all of its ids."""
    whole, placeholder = _patterns(settings.MEDIA_ID_PREFIX)
    references = _collect(payload, whole, placeholder)
    if not references:
        return payload
    if len(references) > MAX_REFERENCES:
        raise TooManyReferences(f"The payload references {len(references)} files; at most {MAX_REFERENCES}.",
                                param="payload")
    found, missing = media_resolve(principal, list(references))
    if missing:  # the first in document order; nothing about the others
        raise NotFound("No such media file.", code="media_not_found", param=json_path(references[missing[0]]))
    resolved = _resolved(found, options, links)
    return _Rewriter(resolved, options.format, whole, placeholder).value(payload, ())


# -- finding references -----------------------------------------------------------------------
def _strings(value: Any, path: Path) -> Iterator[tuple[str, Path]]:
    """Every string value in document order (the parser bounds the nesting)."""
    if isinstance(value, str):
        yield value, path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _collect(payload: Any, whole: re.Pattern, placeholder: re.Pattern) -> dict[str, Path]:
    """Each referenced id and the first place it appears."""
    prefix = settings.MEDIA_ID_PREFIX
    found: dict[str, Path] = {}
    for text, path in _strings(payload, ()):
        if prefix not in text:
            continue  # most strings: no regex at all
        if whole.fullmatch(text):
            found.setdefault(text, path)
            continue
        for match in placeholder.finditer(text):
            found.setdefault(match.group(2), path)
    return found


# -- what each file becomes -------------------------------------------------------------------
def _resolved(found: list[MediaFile], options: ResolveOptions, links: MediaLinks) -> dict[str, Resolved]:
    if not options.inline:
        return {m.pk: Resolved(m.pk, m.mime, m.original_name, url=links.download(m, options.ttl)[0]) for m in found}
    total, limit = sum(m.bytes for m in found), settings.MEDIA_RESOLVE_INLINE_MAX_BYTES
    if total > limit:  # checked before any byte is read
        raise InlineTooLarge(f"Inlining these files takes {total} bytes; at most {limit} "
                             f"(MEDIA_RESOLVE_INLINE_MAX_BYTES). Resolve them as URLs.", param="as")
    return {m.pk: Resolved(m.pk, m.mime, m.original_name, base64=_read_base64(links, m)) for m in found}


def _read_base64(links: MediaLinks, media: MediaFile) -> str:
    """The plaintext bytes through the storage layer, decrypted as `/content` serves them."""
    chunks = links.store.open_range(media.object_key, 0, media.bytes - 1,
                                    encrypted=media.encryption == MediaFile.Encryption.APP, plain_size=media.bytes)
    return base64.b64encode(b"".join(chunks)).decode("ascii")


# -- rewriting ----------------------------------------------------------------------------------
class _Rewriter:
    def __init__(self, resolved: dict[str, Resolved], fmt: str | None, whole: re.Pattern,
                 placeholder: re.Pattern) -> None:
        self.resolved, self.format = resolved, fmt
        self.whole, self.placeholder = whole, placeholder

    def value(self, value: Any, path: Path) -> Any:
        if isinstance(value, str):
            return self.string(value)
        if isinstance(value, dict):
            return {key: self.value(item, (*path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [self.item(item, (*path, index)) for index, item in enumerate(value)]
        return value

    def item(self, item: Any, path: Path) -> Any:
        """A list element: with a format, a content part holding one reference is rebuilt."""
        if self.format and isinstance(item, dict):
            found = self.part_reference(item)
            if found is not None:
                media_id, inner = found
                return native_part(self.format, item, self.resolved[media_id], param=json_path((*path, *inner)))
        return self.value(item, path)

    def reference(self, text: str) -> str | None:
        """The id when `text` is nothing but a reference."""
        if self.whole.fullmatch(text):
            return text
        match = self.placeholder.fullmatch(text)
        return match.group(2) if match else None

    def part_reference(self, part: dict) -> tuple[str, Path] | None:
        """The one reference in a part's own fields or one level down (`image_url.url`,
        `source.url`, `file_data.file_uri`); text is never a media reference."""
        hits = []
        for key, item in part.items():
            if key == "text":
                continue
            children = item.items() if isinstance(item, dict) else [(None, item)]
            for inner, child in children:
                if isinstance(child, str) and inner != "text" and (media_id := self.reference(child)):
                    hits.append((media_id, (key,) if inner is None else (key, inner)))
        return hits[0] if len(hits) == 1 else None

    def string(self, text: str) -> str:
        if settings.MEDIA_ID_PREFIX not in text:
            return text
        if self.whole.fullmatch(text):
            return self.resolved[text].value
        return self.placeholder.sub(lambda match: self.resolved[match.group(2)].value, text)
