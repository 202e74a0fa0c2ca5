"""Rendering one image variant with libvips (pyvips, from the `pyvips-binary` wheel).

Chosen by measurement (docs/benchmarks.md, "Image variants"): libvips' `thumbnail` shrinks
JPEGs while decoding them and streams the rest, so a 256 px WebP of a 4096x4096 JPEG takes
a fraction of Pillow's time and memory. `thumbnail` also applies the EXIF orientation and
loads only the first frame of an animation; saving with `keep="none"` strips EXIF, XMP and
ICC metadata from the variant.

The caller has already refused sources over MEDIA_TRANSFORM_MAX_PIXELS from their header.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import pyvips

from config.errors import InvalidRequest
from media_app.transforms import Transform

# Variants are rendered once and stored: libvips' operation cache would only hold decoded images.
pyvips.cache_set_max(0)
# libvips narrates every operation at INFO: only its warnings belong in our logs.
logging.getLogger("pyvips").setLevel(logging.WARNING)

UNBOUNDED = 10_000_000  # a side that never binds: `thumbnail` scales to the other one
WHITE = [255, 255, 255]


@dataclass(frozen=True)
class Rendered:
    data: bytes
    width: int
    height: int


def render_variant(source: bytes, transform: Transform) -> Rendered:
    """The variant's encoded bytes; `invalid_image` when libvips cannot decode the source."""
    try:
        image = _scaled(source, transform)
        image = _as_8bit(image)
        if transform.fit == "contain":
            image = _padded(image, transform)
        data = _encoded(image, transform)
    except pyvips.Error as exc:
        raise InvalidRequest("The image could not be decoded.", code="invalid_image") from exc
    return Rendered(data=data, width=image.width, height=image.height)


def _scaled(source: bytes, transform: Transform) -> pyvips.Image:
    """Shrunk on load, never enlarged; `cover` crops to the box's centre."""
    options = {"height": transform.height or UNBOUNDED, "size": "down"}
    if transform.fit == "cover":
        options["crop"] = "centre"
    return pyvips.Image.thumbnail_buffer(source, transform.width or UNBOUNDED, **options)


def _as_8bit(image: pyvips.Image) -> pyvips.Image:
    """16-bit PNGs and TIFFs: every output format here takes 8 bits per channel."""
    if image.format == "uchar":
        return image
    grey = image.interpretation in ("b-w", "grey16")
    return image.colourspace("b-w" if grey else "srgb").cast("uchar")


def _padded(image: pyvips.Image, transform: Transform) -> pyvips.Image:
    """`contain`: the whole image, centred in the box; transparent where the format allows."""
    width, height = transform.width, transform.height
    if image.width == width and image.height == height:
        return image
    if transform.format != "jpeg" and not image.hasalpha():
        image = image.bandjoin(255)
    background = [*WHITE, 255][: image.bands] if image.hasalpha() else WHITE[: image.bands]
    if image.hasalpha():
        background[-1] = 0
    return image.gravity("centre", max(width, image.width), max(height, image.height),
                         extend="background", background=background)


def _encoded(image: pyvips.Image, transform: Transform) -> bytes:
    if transform.format == "jpeg":
        if image.hasalpha():
            image = image.flatten(background=WHITE[: image.bands - 1])
        return image.jpegsave_buffer(Q=transform.quality, keep="none", optimize_coding=True)
    if transform.format == "png":
        return image.pngsave_buffer(keep="none", compression=6)
    if transform.format == "webp":
        return image.webpsave_buffer(Q=transform.quality, keep="none")
    return image.heifsave_buffer(Q=transform.quality, compression="av1", keep="none", effort=2)
