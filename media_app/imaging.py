"""Image dimensions from the header only: no pixel decoding, decompression-bomb safe.

    image_dimensions(head, "image/png")         # -> (1024, 768) | None
    image_dimensions(uploaded_file, sniffed.mime, max_pixels=50_000_000)
    dimensions_label(1024, 1024)                # -> "1024x1024"

Raster images are opened with Pillow, which parses the header and stops (`.load()`
is never called, so no pixel buffer is allocated). A small hand-written parser reads
the size fields of PNG, GIF, BMP, WebP, JPEG and ISO-BMFF images (AVIF/HEIC) first,
so a header that claims a huge canvas is refused before Pillow does any work, and so
dimensions are still known when the caller passed only a prefix of a file whose
metadata (EXIF, ICC, text chunks) is larger than that prefix.

Errors are client errors, never 500s:
- more than `max_pixels` pixels          -> InvalidRequest(code="image_too_large", param="file")
- a header Pillow cannot make sense of   -> InvalidRequest(code="invalid_image", param="file")
"""
from __future__ import annotations

import io
import math
import re
import struct
import warnings
from typing import BinaryIO

from PIL import Image

from config.errors import InvalidRequest, ServiceError
from storage_app.sniff import SNIFF_BYTES, normalize_mime

__all__ = [
    "MAX_IMAGE_PIXELS", "HEADER_BYTES", "RASTER_MIMES", "image_dimensions",
    "svg_dimensions", "dimensions_label", "is_raster_mime",
]

MAX_IMAGE_PIXELS = 178_956_970
"""Default pixel budget (w * h). Pillow's own hard limit is 2 * Image.MAX_IMAGE_PIXELS."""

HEADER_BYTES = 64 * 1024
"""How much of the head to pass as bytes: the header of almost every image fits."""

SVG_MIME = "image/svg+xml"

# Sniffed MIME type -> Pillow format names it may be opened as (nothing else is tried).
_PIL_FORMATS: dict[str, tuple[str, ...]] = {
    "image/png": ("PNG",),
    "image/jpeg": ("JPEG",),
    "image/gif": ("GIF",),
    "image/webp": ("WEBP",),
    "image/avif": ("AVIF",),
    "image/bmp": ("BMP", "DIB"),
    "image/tiff": ("TIFF",),
    "image/vnd.microsoft.icon": ("ICO",),
    "image/vnd.adobe.photoshop": ("PSD",),
    "image/jp2": ("JPEG2000",),
}
# ISO-BMFF images: dimensions come from the `ispe` property box.
_ISOBMFF = frozenset({"image/avif", "image/heic", "image/heif"})

RASTER_MIMES = frozenset(_PIL_FORMATS) | _ISOBMFF


def is_raster_mime(mime: str | None) -> bool:
    return normalize_mime(mime) in RASTER_MIMES


def dimensions_label(width: int, height: int) -> str:
    """`"1024x1024"`."""
    return f"{int(width)}x{int(height)}"


def image_dimensions(head: bytes | BinaryIO, mime: str | None, *,
                     max_pixels: int | None = None,
                     complete: bool | None = None) -> tuple[int, int] | None:
    """(width, height) of an image, read from its header only; None when unknown.

    `head` is either bytes (the first `HEADER_BYTES` of the file, or all of it) or a
    binary file object positioned at the start of the image; a seekable stream lets
    Pillow skip over metadata larger than `HEADER_BYTES`. The stream's position is
    restored afterwards. `mime` is the *sniffed* type: raster types are measured with
    Pillow, SVG from the root element's width/height/viewBox, anything else is None.

    `max_pixels` defaults to `MAX_IMAGE_PIXELS`; more pixels than that raises
    `image_too_large`. `complete` says whether bytes `head` is the whole file; by
    default it is assumed to be when shorter than `HEADER_BYTES` and not exactly
    `SNIFF_BYTES` long (a seekable stream is always taken as the whole file). A header Pillow rejects raises `invalid_image`, except
    when bytes `head` is only a prefix and ran out first: then the size read by the
    quick parser (or None) is returned, since the rest of the file may be fine.
    """
    m = normalize_mime(mime)
    if m != SVG_MIME and m not in RASTER_MIMES:
        return None
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels

    stream: BinaryIO | None = None
    start = 0
    if isinstance(head, (bytes, bytearray, memoryview)):
        data = bytes(head)
    else:
        stream = head
        try:
            start = stream.tell()
            seekable = stream.seekable() if hasattr(stream, "seekable") else True
        except (OSError, AttributeError, ValueError):
            seekable = False
        data = stream.read(HEADER_BYTES) or b""
        if seekable:
            stream.seek(start)
            complete = True if complete is None else complete
        else:
            stream = None                          # work on what we could read

    if complete is None:
        # Shorter than HEADER_BYTES means "the whole file", except for a head of exactly
        # SNIFF_BYTES: that is the sniffing prefix handed over as is.
        complete = len(data) < HEADER_BYTES and len(data) != SNIFF_BYTES

    if m == SVG_MIME:
        return svg_dimensions(data)

    quick = _quick_dimensions(data, m)
    if quick is not None:
        _check_size(quick, limit)

    formats = _PIL_FORMATS.get(m)
    if m in _ISOBMFF:
        if quick is not None:
            return quick
        # Pillow's AVIF plugin hands the whole file to libavif: only do that for a
        # complete, in-memory file.
        if stream is not None or not complete:
            return None
    if not formats or not _pillow_can_open(formats):
        return quick

    reader = _Reader(stream if stream is not None else io.BytesIO(data))
    try:
        size = _pillow_size(reader, formats, limit)
    except ServiceError:
        raise
    except Exception:  # noqa: BLE001 - Pillow raises many types on hostile input
        if reader.hit_eof and not complete:
            return quick                           # header continues past the prefix we got
        raise _invalid_image() from None
    finally:
        if stream is not None:
            try:
                stream.seek(start)
            except (OSError, ValueError):
                pass
    _check_size(size, limit)
    return size


# --------------------------------------------------------------------------- #
# Pillow
# --------------------------------------------------------------------------- #

def _pillow_can_open(formats: tuple[str, ...]) -> bool:
    Image.init()
    return any(f in Image.OPEN for f in formats)


def _pillow_size(fp: _Reader, formats: tuple[str, ...], limit: int) -> tuple[int, int]:
    """Open (header only) and return the size; bombs -> image_too_large."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # "Corrupt EXIF data" and the like
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _open_size(fp, formats)
    except Image.DecompressionBombError:
        raise _too_large(None, limit) from None
    except Image.DecompressionBombWarning:
        pass
    # Above Pillow's warning threshold but below its hard limit: `limit` may still
    # allow it, so read the size for real (Pillow's DecompressionBombError remains).
    fp.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return _open_size(fp, formats)
    except Image.DecompressionBombError:
        raise _too_large(None, limit) from None


def _open_size(fp: _Reader, formats: tuple[str, ...]) -> tuple[int, int]:
    im = Image.open(fp, formats=list(formats))
    try:
        width, height = im.size
        return int(width), int(height)
    finally:
        im.close()


class _Reader(io.RawIOBase):
    """Read-only view of a stream from its current position; records running dry."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._base = raw.tell()
        self.hit_eof = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            self.hit_eof = True
            return self._raw.read()
        data = self._raw.read(size)
        if len(data) < size:
            self.hit_eof = True
        return data

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        line = self._raw.readline(-1 if size is None else size)
        if not line.endswith(b"\n"):
            self.hit_eof = True
        return line

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            return self._raw.seek(self._base + max(0, offset)) - self._base
        return self._raw.seek(offset, whence) - self._base

    def tell(self) -> int:
        return self._raw.tell() - self._base

    def close(self) -> None:                       # never close the caller's stream
        pass


# --------------------------------------------------------------------------- #
# Quick header parsers (size fields only)
# --------------------------------------------------------------------------- #

_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _quick_dimensions(d: bytes, mime: str) -> tuple[int, int] | None:
    try:
        if mime == "image/png":
            if d[:8] == b"\x89PNG\r\n\x1a\n" and d[12:16] == b"IHDR" and len(d) >= 24:
                return struct.unpack(">II", d[16:24])
        elif mime == "image/gif":
            if d[:3] == b"GIF" and len(d) >= 10:
                return struct.unpack("<HH", d[6:10])
        elif mime == "image/bmp":
            if d[:2] == b"BM" and len(d) >= 26:
                if struct.unpack("<I", d[14:18])[0] == 12:
                    return struct.unpack("<HH", d[18:22])
                w, h = struct.unpack("<ii", d[18:26])
                return abs(w), abs(h)
        elif mime == "image/webp":
            return _webp_dimensions(d)
        elif mime == "image/jpeg":
            return _jpeg_dimensions(d)
        elif mime in _ISOBMFF:
            return _ispe_dimensions(d)
        elif mime == "image/vnd.adobe.photoshop":
            if d[:4] == b"8BPS" and len(d) >= 22:
                h, w = struct.unpack(">II", d[14:22])
                return w, h
    except (struct.error, IndexError):
        return None
    return None


def _webp_dimensions(d: bytes) -> tuple[int, int] | None:
    if d[:4] != b"RIFF" or d[8:12] != b"WEBP" or len(d) < 30:
        return None
    chunk = d[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(d[24:27], "little") + 1
        h = int.from_bytes(d[27:30], "little") + 1
        return w, h
    if chunk == b"VP8L" and d[20] == 0x2F:
        bits = struct.unpack("<I", d[21:25])[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and d[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", d[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


def _jpeg_dimensions(d: bytes) -> tuple[int, int] | None:
    if d[:2] != b"\xff\xd8":
        return None
    i, n = 2, len(d)
    while i < n:
        if d[i] != 0xFF:
            return None                            # lost sync: leave it to Pillow
        while i < n and d[i] == 0xFF:
            i += 1
        if i >= n:
            return None
        marker = d[i]
        i += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            continue                               # stand-alone markers
        if marker in (0xD9, 0xDA) or i + 2 > n:
            return None
        seg_len = struct.unpack(">H", d[i:i + 2])[0]
        if marker in _JPEG_SOF:
            if i + 7 > n:
                return None
            h, w = struct.unpack(">HH", d[i + 3:i + 7])
            return w, h
        if seg_len < 2:
            return None
        i += seg_len
    return None


def _ispe_dimensions(d: bytes) -> tuple[int, int] | None:
    """Largest `ispe` (image spatial extents) property: the primary image, not a tile
    or thumbnail."""
    best: tuple[int, int] | None = None
    pos = d.find(b"ispe")
    while pos >= 4 and pos + 16 <= len(d):
        w, h = struct.unpack(">II", d[pos + 8:pos + 16])
        if w and h and (best is None or w * h > best[0] * best[1]):
            best = (w, h)
        pos = d.find(b"ispe", pos + 4)
    return best


# --------------------------------------------------------------------------- #
# SVG
# --------------------------------------------------------------------------- #

_PROLOG = re.compile(
    r"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[[^\]]*\]\s*)?>)", re.DOTALL | re.IGNORECASE)
_SVG_START = re.compile(r"<(?:[A-Za-z_][\w.\-]*:)?svg(?=[\s/>])")
_ATTR = re.compile(r"""\s+([A-Za-z_][\w.:\-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_LENGTH = re.compile(r"\s*([+]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(?:px)?\s*")
_MAX_SVG_SIDE = 10 ** 9


def svg_dimensions(head: bytes | str) -> tuple[int, int] | None:
    """Size of an SVG from the root `<svg>` element's `width`/`height` (unitless or px)
    or `viewBox`; None when neither is usable. Pure regex over the head: no XML parser,
    no entity expansion, no external fetches."""
    text = _decode(head) if isinstance(head, (bytes, bytearray, memoryview)) else str(head)
    text = text.lstrip("\ufeff")
    pos = 0
    while True:
        m = _PROLOG.match(text, pos)
        if not m:
            break
        pos = m.end()
    while pos < len(text) and text[pos].isspace():
        pos += 1
    start = _SVG_START.match(text, pos)
    if not start:
        return None
    attrs: dict[str, str] = {}
    pos = start.end()
    while True:
        a = _ATTR.match(text, pos)
        if not a:
            break
        attrs.setdefault(a.group(1), a.group(2) if a.group(2) is not None else a.group(3))
        pos = a.end()

    width = _svg_length(attrs.get("width"))
    height = _svg_length(attrs.get("height"))
    box = _viewbox(attrs.get("viewBox"))
    if width is not None and height is not None:
        w, h = width, height
    elif box is not None:
        vw, vh = box
        if width is not None:
            w, h = width, width * vh / vw
        elif height is not None:
            w, h = height * vw / vh, height
        else:
            w, h = vw, vh
    else:
        return None
    if not (math.isfinite(w) and math.isfinite(h)) or max(w, h) > _MAX_SVG_SIDE:
        return None
    return max(1, round(w)), max(1, round(h))


def _decode(data: bytes) -> str:
    data = bytes(data)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace")
    return data.decode("utf-8", "replace")


def _svg_length(value: str | None) -> float | None:
    if value is None:
        return None
    m = _LENGTH.fullmatch(value)
    if not m:
        return None                                # %, em, mm, ... : not a pixel size
    n = float(m.group(1))
    return n if n > 0 and math.isfinite(n) else None


def _viewbox(value: str | None) -> tuple[float, float] | None:
    if not value:
        return None
    parts = [p for p in re.split(r"[\s,]+", value.strip()) if p]
    if len(parts) != 4:
        return None
    try:
        _, _, w, h = (float(p) for p in parts)
    except ValueError:
        return None
    if not (w > 0 and h > 0 and math.isfinite(w) and math.isfinite(h)):
        return None
    return w, h


# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #

def _check_size(size: tuple[int, int], limit: int) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise _invalid_image()
    if limit is not None and w * h > limit:
        raise _too_large(size, limit)


def _too_large(size: tuple[int, int] | None, limit: int) -> InvalidRequest:
    if size is None:                               # Pillow's own bomb guard fired
        message = f"Image is too large: its dimensions exceed the pixel limit ({limit:,} pixels)."
    else:
        w, h = size
        message = f"Image is too large: {w}x{h} is {w * h:,} pixels, the maximum is {limit:,}."
    return InvalidRequest(message, code="image_too_large", param="file")


def _invalid_image() -> InvalidRequest:
    return InvalidRequest("The image header could not be read: the file is corrupt or truncated.",
                          code="invalid_image", param="file")

