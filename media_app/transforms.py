"""Image transform parameters: parsed from a query, normalised, and named once.

    transform_parse({"width": "200", "format": "webp"}, accept="")  # -> Transform(256, 0, "inside", "webp", 80)
    transform.name                                                   # -> "w256_h0_inside_q80_webp"
    transform_from_name("w256_h0_inside_q80_webp")                   # the same Transform, from a signed URL

Sizes come only from MEDIA_TRANSFORM_WIDTHS (a request is rounded up to the next one), so a
client can make a bounded number of variants of a file (qualities go in steps of 10). The
`name` is both the variant's storage key segment and what a signed URL signs.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings

from config.errors import InvalidRequest, UnsupportedMediaType

FITS = ("cover", "contain", "inside")
FORMATS = ("webp", "avif", "jpeg", "png")
LOSSLESS = frozenset({"png"})
DEFAULT_QUALITY = 80
PARAMS = ("width", "height", "fit", "format", "quality")
MIME_OF = {"webp": "image/webp", "avif": "image/avif", "jpeg": "image/jpeg", "png": "image/png"}
EXTENSION_OF = {"webp": "webp", "avif": "avif", "jpeg": "jpg", "png": "png"}
# Originals a variant can be made from: raster formats libvips decodes (no SVG: it would run a renderer).
SOURCE_MIMES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp",
                          "image/tiff", "image/heic", "image/heif"})
_NAME = re.compile(r"^w(\d{1,5})_h(\d{1,5})_(cover|contain|inside)_q(\d{1,3})_(webp|avif|jpeg|png)$")


class TransformInvalid(InvalidRequest):
    code = "invalid_transform"
    message = "The image transform parameters are not valid."


class NotAnImage(UnsupportedMediaType):
    code = "not_an_image"
    message = "Only raster images (PNG, JPEG, GIF, WebP, AVIF, BMP, TIFF, HEIC) can be transformed."


@dataclass(frozen=True)
class Transform:
    width: int  # 0: follows from the height and the aspect ratio
    height: int
    fit: str
    format: str
    quality: int

    @property
    def name(self) -> str:
        return f"w{self.width}_h{self.height}_{self.fit}_q{self.quality}_{self.format}"

    @property
    def mime(self) -> str:
        return MIME_OF[self.format]

    @property
    def extension(self) -> str:
        return EXTENSION_OF[self.format]

    def query(self) -> dict[str, str]:
        """The normalised parameters, as a client sends them again."""
        params = {"width": self.width, "height": self.height, "fit": self.fit, "format": self.format,
                  "quality": self.quality}
        return {name: str(value) for name, value in params.items() if value}


def allowed_sizes() -> tuple[int, ...]:
    return tuple(settings.MEDIA_TRANSFORM_WIDTHS)


def wants_transform(query: Mapping[str, str]) -> bool:
    """Any transform parameter; `format` only when it names an image format (`?format=json` is DRF's)."""
    if query.get("format") in ("json", "api"):
        return any(name in query for name in PARAMS if name != "format")
    return any(name in query for name in PARAMS)


def transform_parse(query: Mapping[str, str], *, accept: str = "") -> Transform | None:
    """The transform a request's query asks for, normalised; None when it names none.

    `format=auto` (and no format) picks from `accept`, the Accept header of whoever will fetch it."""
    if not wants_transform(query):
        return None
    width, height = _size(query, "width"), _size(query, "height")
    if not width and not height:
        raise TransformInvalid("A transform needs a width or a height.", param="width")
    fit = query.get("fit") or "inside"
    if fit not in FITS:
        raise TransformInvalid(f"fit must be one of: {', '.join(FITS)}.", param="fit")
    if fit != "inside" and not (width and height):
        fit = "inside"  # with one side only, every fit is the same scaling
    fmt = query.get("format") or "auto"
    if fmt not in (*FORMATS, "auto"):
        raise TransformInvalid(f"format must be one of: {', '.join((*FORMATS, 'auto'))}.", param="format")
    fmt = format_for_accept(accept) if fmt == "auto" else fmt
    quality = 0 if fmt in LOSSLESS else _quality(query.get("quality"))
    return Transform(width=width, height=height, fit=fit, format=fmt, quality=quality)


def format_for_accept(accept: str) -> str:
    """AVIF or WebP when the client lists them; JPEG for one that lists image types but neither;
    WebP for API clients (`*/*`, JSON), which every current browser then displays."""
    accept = accept.lower()
    if "image/avif" in accept:
        return "avif"
    if "image/webp" in accept or "image/" not in accept:
        return "webp"
    return "jpeg"


def transform_from_name(name: str) -> Transform:
    """The transform a signed URL carries (its signature already checked)."""
    match = _NAME.match(name)
    if match is None:
        raise TransformInvalid(param="transform")
    width, height, fit, quality, fmt = match.groups()
    return Transform(width=int(width), height=int(height), fit=fit, format=fmt, quality=int(quality))


def transformable(mime: str | None) -> bool:
    return (mime or "").split(";")[0].strip().lower() in SOURCE_MIMES


def require_transformable(mime: str | None) -> None:
    if not transformable(mime):
        raise NotAnImage()


def _size(query: Mapping[str, str], name: str) -> int:
    raw = query.get(name)
    if raw in (None, "", "0"):
        return 0
    if not str(raw).isdigit():
        raise TransformInvalid(f"{name} must be a positive whole number of pixels.", param=name)
    sizes = allowed_sizes()
    wanted = int(raw)
    for size in sizes:
        if size >= wanted:
            return size
    raise TransformInvalid(f"{name} may be at most {sizes[-1]} pixels.", code="transform_too_large", param=name)


def _quality(raw: str | None) -> int:
    if raw in (None, ""):
        return DEFAULT_QUALITY
    if not str(raw).isdigit() or not 1 <= int(raw) <= 100:
        raise TransformInvalid("quality must be a whole number from 1 to 100.", param="quality")
    return -(-int(raw) // 10) * 10  # steps of 10: a tenth of the variants, a difference no eye sees
