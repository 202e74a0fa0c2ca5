"""Each model provider's own content part for a media file (`POST /v1/media/resolve` with `format`).

A client writes a media reference in whatever part shape it knows (OpenAI's `image_url` most
often); resolution replaces the whole part with the one the named provider takes, for the file's
real type. A type the provider has no part for, or takes only inline when a URL was asked for,
is refused with the reference's JSON path: a provider would fail on it later, with less to go on.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from config.errors import InvalidRequest

PROVIDER_FORMATS = ("openai", "openai_responses", "anthropic", "gemini")

# What each provider documents for images; other image types are refused rather than sent.
_WEB_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_OPENAI_AUDIO = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/vnd.wave": "wav",
                 "audio/mpeg": "mp3", "audio/mp3": "mp3"}
PDF = "application/pdf"


class ProviderRefused(InvalidRequest):
    code = "unsupported_media_for_provider"


@dataclass(frozen=True)
class Resolved:
    """One media file as the payload will carry it: a signed URL, or its bytes as base64."""

    media_id: str
    mime: str
    name: str
    url: str = ""
    base64: str = ""

    @property
    def inline(self) -> bool:
        return not self.url

    @property
    def value(self) -> str:
        """What a bare reference becomes: the URL, or a `data:` URL of the bytes."""
        return self.url or f"data:{self.mime};base64,{self.base64}"


def native_part(fmt: str, part: dict, resolved: Resolved, *, param: str) -> dict:
    """The provider's part for `resolved`, keeping the options the client set on its own part."""
    built = _BUILDERS[fmt](resolved, part, param)
    if "cache_control" in part and fmt == "anthropic":
        built["cache_control"] = part["cache_control"]
    return built


def _refuse(resolved: Resolved, provider: str, param: str, hint: str = "") -> ProviderRefused:
    return ProviderRefused(f"{provider} has no content part for {resolved.mime or 'this file'}"
                           f"{hint}.", param=param)


def _detail(part: dict) -> str | None:
    """OpenAI's image `detail`, wherever the client's part had it."""
    nested = part.get("image_url")
    return part.get("detail") or (nested.get("detail") if isinstance(nested, dict) else None)


def _openai(resolved: Resolved, part: dict, param: str) -> dict:
    mime = resolved.mime
    if mime in _WEB_IMAGES:
        image = {"url": resolved.value}
        if detail := _detail(part):
            image["detail"] = detail
        return {"type": "image_url", "image_url": image}
    if mime in _OPENAI_AUDIO or mime == PDF:
        if not resolved.inline:
            raise _refuse(resolved, "OpenAI chat", param, ' as a URL; resolve with "as": "data_url"')
        if mime == PDF:
            return {"type": "file", "file": {"filename": resolved.name or "document.pdf", "file_data": resolved.value}}
        return {"type": "input_audio", "input_audio": {"data": resolved.base64, "format": _OPENAI_AUDIO[mime]}}
    raise _refuse(resolved, "OpenAI chat", param)


def _openai_responses(resolved: Resolved, part: dict, param: str) -> dict:
    if resolved.mime in _WEB_IMAGES:
        return {"type": "input_image", "image_url": resolved.value, "detail": _detail(part) or "auto"}
    if resolved.mime == PDF:
        if resolved.inline:
            return {"type": "input_file", "filename": resolved.name or "document.pdf", "file_data": resolved.value}
        return {"type": "input_file", "file_url": resolved.url}
    raise _refuse(resolved, "The OpenAI Responses API", param)


def _anthropic(resolved: Resolved, part: dict, param: str) -> dict:
    if resolved.mime not in _WEB_IMAGES and resolved.mime != PDF:
        raise _refuse(resolved, "Anthropic", param)
    if resolved.inline:
        source = {"type": "base64", "media_type": resolved.mime, "data": resolved.base64}
    else:
        source = {"type": "url", "url": resolved.url}
    return {"type": "document" if resolved.mime == PDF else "image", "source": source}


def _gemini(resolved: Resolved, part: dict, param: str) -> dict:
    mime = resolved.mime
    if not (mime.startswith(("image/", "audio/", "video/", "text/")) or mime == PDF):
        raise _refuse(resolved, "Gemini", param)
    if resolved.inline:
        return {"inline_data": {"mime_type": mime, "data": resolved.base64}}
    return {"file_data": {"mime_type": mime, "file_uri": resolved.url}}


_BUILDERS: dict[str, Callable[[Resolved, dict, str], dict]] = {
    "openai": _openai, "openai_responses": _openai_responses, "anthropic": _anthropic, "gemini": _gemini,
}
