"""Image dimensions from headers: Pillow header parsing, bombs, corrupt headers, SVG."""
from __future__ import annotations

import io
import struct
import time
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, features

from config.errors import InvalidRequest
from media_app import imaging
from media_app.imaging import (
    HEADER_BYTES, MAX_IMAGE_PIXELS, dimensions_label, image_dimensions, svg_dimensions,
)
from storage_app.sniff import SNIFF_BYTES, sniff


def raster(fmt: str, size=(321, 123), **kw) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buf, fmt, **kw)
    return buf.getvalue()


def png_chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


def crafted_png(width: int, height: int, *, good_crc: bool = True) -> bytes:
    """A structurally complete PNG whose IHDR claims width x height (hand-built, so
    nothing close to width*height bytes is ever allocated)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    crc = zlib.crc32(b"IHDR" + ihdr) if good_crc else zlib.crc32(b"IHDR" + ihdr) ^ 0xFFFF
    return (b"\x89PNG\r\n\x1a\n"
            + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", crc)
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
            + png_chunk(b"IEND", b""))


@pytest.fixture
def no_pixel_decoding(monkeypatch):
    """Fail the test if anything asks Pillow to decode an opened file's pixels."""
    def boom(self, *a, **kw):
        raise AssertionError("ImageFile.load() must not be called")
    monkeypatch.setattr(ImageFile.ImageFile, "load", boom)


# --------------------------------------------------------------------------- #
# Raster dimensions
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("fmt,kw,mime", [
    ("PNG", {}, "image/png"),
    ("JPEG", {"quality": 80}, "image/jpeg"),
    ("JPEG", {"progressive": True}, "image/jpg"),
    ("GIF", {}, "image/gif"),
    ("WEBP", {}, "image/webp"),
    ("WEBP", {"lossless": True}, "image/webp"),
    ("BMP", {}, "image/bmp"),
    ("TIFF", {}, "image/tiff"),
])
def test_dimensions_bytes_and_stream(fmt, kw, mime, no_pixel_decoding):
    data = raster(fmt, **kw)
    assert image_dimensions(data, mime) == (321, 123)
    stream = io.BytesIO(data)
    assert image_dimensions(stream, mime) == (321, 123)
    assert stream.tell() == 0                      # position restored


def test_dimensions_using_sniffed_type(no_pixel_decoding):
    for fmt in ("PNG", "JPEG", "GIF", "WEBP"):
        data = raster(fmt, size=(1024, 1024))
        w, h = image_dimensions(data, sniff(data[:8192]).mime)
        assert dimensions_label(w, h) == "1024x1024"


@pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF")
def test_avif_dimensions(no_pixel_decoding):
    data = raster("AVIF", size=(40, 30))
    assert image_dimensions(data, "image/avif") == (40, 30)


def test_heic_dimensions_from_ispe_box():
    ispe = struct.pack(">I", 20) + b"ispe" + b"\x00\x00\x00\x00" + struct.pack(">II", 4032, 3024)
    thumb = struct.pack(">I", 20) + b"ispe" + b"\x00\x00\x00\x00" + struct.pack(">II", 320, 240)
    head = struct.pack(">I", 24) + b"ftypheic\x00\x00\x00\x00mif1heic" + b"....meta" + thumb + ispe
    assert image_dimensions(head, "image/heic") == (4032, 3024)
    bomb = head.replace(struct.pack(">II", 4032, 3024), struct.pack(">II", 60000, 60000))
    with pytest.raises(InvalidRequest) as exc:
        image_dimensions(bomb, "image/heic")
    assert exc.value.code == "image_too_large"
    assert image_dimensions(head[:24], "image/heic") is None     # no ispe: unknown, not an error


def test_stream_read_from_current_position():
    data = raster("PNG")
    stream = io.BytesIO(b"JUNK-PREFIX" + data)
    stream.seek(11)
    assert image_dimensions(stream, "image/png") == (321, 123)
    assert stream.tell() == 11


def test_stream_reaches_header_beyond_head_bytes(no_pixel_decoding):
    # EXIF + ICC larger than HEADER_BYTES push the JPEG frame header out of the head.
    exif = Image.Exif()
    exif[0x010E] = "x" * 60000
    data = raster("JPEG", exif=exif.tobytes(), icc_profile=b"\x00" * 70000)
    assert len(data) > 2 * HEADER_BYTES
    assert image_dimensions(io.BytesIO(data), "image/jpeg") == (321, 123)
    # Only a prefix: unknown rather than "corrupt" (the rest of the file may be fine)...
    assert image_dimensions(data[:HEADER_BYTES], "image/jpeg") is None
    # ...but the same bytes presented as the whole file are a truncated image.
    with pytest.raises(InvalidRequest) as exc:
        image_dimensions(data[:HEADER_BYTES], "image/jpeg", complete=True)
    assert exc.value.code == "invalid_image"


def test_sniff_sized_head_is_a_prefix_not_a_truncated_file():
    exif = Image.Exif()
    exif[0x010E] = "x" * 20000
    data = raster("JPEG", exif=exif.tobytes())
    assert image_dimensions(data[:SNIFF_BYTES], "image/jpeg") is None
    assert image_dimensions(data, "image/jpeg") == (321, 123)


def test_jpeg_prefix_with_frame_header_but_no_scan():
    data = raster("JPEG")
    sof = data.index(b"\xff\xc0")
    seg_len = struct.unpack(">H", data[sof + 2:sof + 4])[0]
    after_sof = sof + 2 + seg_len
    comment = b"\xff\xfe" + struct.pack(">H", 65000) + b"c" * 64998
    padded = data[:after_sof] + comment + data[after_sof:]
    # Pillow needs to reach the scan; the quick parser already has the size.
    assert image_dimensions(padded[:HEADER_BYTES], "image/jpeg") == (321, 123)
    assert image_dimensions(padded, "image/jpeg") == (321, 123)


def test_non_images_have_no_dimensions():
    assert image_dimensions(b"%PDF-1.4\n", "application/pdf") is None
    assert image_dimensions(b"a,b\n1,2\n", "text/csv") is None
    assert image_dimensions(b"\x00" * 10, "video/mp4") is None
    assert image_dimensions(b"\x00" * 10, None) is None


def test_dimensions_label():
    assert dimensions_label(1024, 1024) == "1024x1024"
    assert dimensions_label(1, 2) == "1x2"


# --------------------------------------------------------------------------- #
# Decompression bombs
# --------------------------------------------------------------------------- #

def test_png_claiming_100000x100000_is_refused_without_decoding(no_pixel_decoding):
    data = crafted_png(100_000, 100_000)
    assert struct.unpack(">II", data[16:24]) == (100_000, 100_000)
    started = time.monotonic()
    for source in (data, io.BytesIO(data), data[:33]):
        with pytest.raises(InvalidRequest) as exc:
            image_dimensions(source, "image/png")
        err = exc.value
        assert (err.status, err.code, err.param) == (400, "image_too_large", "file")
        assert "100000x100000" in err.message
    assert time.monotonic() - started < 2


def test_pillow_bomb_guard_is_caught(monkeypatch, no_pixel_decoding):
    # Skip the quick parser: Pillow's own DecompressionBombError must become a 400 too.
    monkeypatch.setattr(imaging, "_quick_dimensions", lambda data, mime: None)
    with pytest.raises(InvalidRequest) as exc:
        image_dimensions(crafted_png(30_000, 30_000), "image/png", max_pixels=10 ** 12)
    assert exc.value.code == "image_too_large"


def test_pillow_bomb_warning_range_uses_our_limit(monkeypatch, no_pixel_decoding):
    monkeypatch.setattr(imaging, "_quick_dimensions", lambda data, mime: None)
    assert Image.MAX_IMAGE_PIXELS < 10_000 * 10_000 <= MAX_IMAGE_PIXELS
    # Between Pillow's warning threshold and our default limit: accepted, with a size...
    assert image_dimensions(crafted_png(10_000, 10_000), "image/png") == (10_000, 10_000)
    # ...and refused as soon as our limit says so.
    with pytest.raises(InvalidRequest) as exc:
        image_dimensions(crafted_png(10_000, 10_000), "image/png", max_pixels=50_000_000)
    assert exc.value.code == "image_too_large"


def test_max_pixels_argument_and_module_default(monkeypatch):
    data = raster("PNG", size=(300, 200))
    assert image_dimensions(data, "image/png", max_pixels=60_000) == (300, 200)
    with pytest.raises(InvalidRequest) as exc:
        image_dimensions(data, "image/png", max_pixels=59_999)
    assert exc.value.code == "image_too_large"
    monkeypatch.setattr(imaging, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(InvalidRequest):
        image_dimensions(data, "image/png")


@pytest.mark.parametrize("fmt,mime", [("GIF", "image/gif"), ("WEBP", "image/webp"), ("BMP", "image/bmp"),
                                      ("JPEG", "image/jpeg")])
def test_bomb_limit_applies_to_every_raster_format(fmt, mime):
    with pytest.raises(InvalidRequest) as exc:
        image_dimensions(raster(fmt, size=(100, 100)), mime, max_pixels=9_999)
    assert exc.value.code == "image_too_large"


# --------------------------------------------------------------------------- #
# Corrupt headers
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("name,data,mime", [
    ("bad IHDR CRC", crafted_png(100, 100, good_crc=False), "image/png"),
    ("garbage after signature", b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "image/png"),
    ("truncated IHDR", crafted_png(100, 100)[:20], "image/png"),
    ("zero width", crafted_png(0, 100), "image/png"),
    ("jpeg garbage", b"\xff\xd8\xff" + b"\x00" * 300, "image/jpeg"),
    ("gif garbage", b"GIF89a" + b"\xff" * 3, "image/gif"),
    ("pdf sniffed as png", b"%PDF-1.4\n" + b"x" * 100, "image/png"),
    ("webp garbage", b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 20, "image/webp"),
])
def test_corrupt_header_is_invalid_image(name, data, mime):
    with pytest.raises(InvalidRequest) as exc:
        image_dimensions(data, mime)
    err = exc.value
    assert (err.status, err.code, err.param) == (400, "invalid_image", "file"), name


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp",
                        "image/tiff", "image/avif", "image/heic", "image/svg+xml"]),
       st.binary(max_size=512),
       st.sampled_from([b"", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"\xff\xd8\xff\xe0", b"GIF89a",
                        b"RIFF\x00\x00\x00\x00WEBPVP8X", b"BM", b"II*\x00", b"<svg "]))
def test_never_anything_but_a_client_error(mime, junk, magic):
    try:
        result = image_dimensions(magic + junk, mime)
    except InvalidRequest as exc:
        assert exc.code in ("invalid_image", "image_too_large")
    else:
        assert result is None or (isinstance(result[0], int) and isinstance(result[1], int))


# --------------------------------------------------------------------------- #
# SVG
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("svg,expected", [
    (b'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="80"/>', (120, 80)),
    (b"<svg width='120px' height='80px'></svg>", (120, 80)),
    (b'<svg width="10.6" height="3.2"/>', (11, 3)),
    (b'<svg viewBox="0 0 640 480"/>', (640, 480)),
    (b'<svg viewBox="-10,-10, 20.5,  40"/>', (20, 40)),
    (b'<svg width="100%" height="100%" viewBox="0 0 64 48"/>', (64, 48)),
    (b'<svg width="320" viewBox="0 0 640 480"/>', (320, 240)),
    (b'<svg height="100" viewBox="0 0 200 50"/>', (400, 100)),
    (b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- <svg width="1" height="1"> -->\n'
     b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
     b'<svg\n  xmlns="http://www.w3.org/2000/svg"\n  width="24"\n  height="36">', (24, 36)),
    (b'<svg:svg xmlns:svg="http://www.w3.org/2000/svg" width="7" height="9"/>', (7, 9)),
    ('<svg width="5" height="6"/>'.encode("utf-16"), (5, 6)),
    (b'<svg width="10em" height="5cm"/>', None),
    (b'<svg width="100%"/>', None),
    (b'<svg viewBox="0 0 0 10"/>', None),
    (b'<svg viewBox="a b c d"/>', None),
    (b'<svg width="-5" height="5"/>', None),
    (b'<svg width="1e999" height="5"/>', None),
    (b"<svg/>", None),
    (b"<html><svg width='5' height='5'/></html>", None),   # svg must be the root
    (b"not svg at all", None),
])
def test_svg_dimensions(svg, expected):
    assert svg_dimensions(svg) == expected
    assert image_dimensions(svg, "image/svg+xml") == expected
    assert image_dimensions(io.BytesIO(svg), "image/svg+xml") == expected


def test_svg_entities_are_not_expanded():
    lol = b"".join(b'  <!ENTITY lol%d "%s">\n' % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10))
    svg = (b'<?xml version="1.0"?>\n<!DOCTYPE svg [\n  <!ENTITY lol0 "lol">\n' + lol +
           b']>\n<svg xmlns="http://www.w3.org/2000/svg" width="&lol9;" height="50" viewBox="0 0 100 50">'
           b"<text>&lol9;</text></svg>")
    started = time.monotonic()
    assert svg_dimensions(svg) == (100, 50)       # width is not numeric: taken from viewBox
    assert time.monotonic() - started < 1
