"""Content sniffing, inline safety, declared-type conflicts and upload categories.

Plain pytest, no database: every sample is generated here (Pillow for rasters,
hand-built headers for everything else).
"""
from __future__ import annotations

import gzip
import io
import logging
import os
import struct
import zipfile
import zlib
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, features

from config.errors import InvalidRequest, TooLarge, UnsupportedMediaType
from storage_app.categories import (
    ALL_CATEGORIES, CATEGORIES, DATA_SOURCE, GENERAL, PROFILE_IMAGE, PROFILE_IMAGE_MAX_BYTES,
    Category, category_check, check_size, effective_max_bytes, get_category,
)
from storage_app.sniff import (
    DOCX, KINDS, PARQUET, PPTX, SNIFF_BYTES, XLSX, Sniffed, declared_conflicts, is_executable,
    is_inline_safe, normalize_mime, sniff,
)


# --------------------------------------------------------------------------- #
# Samples
# --------------------------------------------------------------------------- #

def raster(fmt: str, size=(64, 48), mode="RGB", **kw) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, (200, 30, 30)).save(buf, fmt, **kw)
    return buf.getvalue()


PDF = (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
       b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
       b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
       b"trailer\n<< /Root 1 0 R >>\n%%EOF\n")

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>'
SVG_WITH_PROLOG = (
    b'\xef\xbb\xbf  \n<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
    b"<!-- Generator: Some Editor 1.0 -->\n"
    b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
    b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
    b'<svg version="1.1" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 5 5"></svg>\n'
)
SVG_WITH_ENTITIES = (
    b'<?xml version="1.0"?>\n<!DOCTYPE svg [\n <!ENTITY a "aaaaaaaaaa">\n'
    b' <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">\n]>\n<svg>&b;</svg>'
)

ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + struct.pack("<HH", 2, 0x3E) + b"\x00" * 44


def pe(dll: bool = False) -> bytes:
    dos = bytearray(b"MZ" + b"\x90\x00" + b"\x00" * 56)
    dos[0x3C:0x40] = struct.pack("<I", 0x80)
    dos += b"This program cannot be run in DOS mode.\r\n$".ljust(0x80 - len(dos), b"\x00")
    coff = struct.pack("<HHIIIHH", 0x8664, 1, 0, 0, 0, 0xF0, 0x2022 if dll else 0x0022)
    return bytes(dos) + b"PE\x00\x00" + coff + b"\x00" * 256


MACHO = b"\xcf\xfa\xed\xfe\x07\x00\x00\x01\x03\x00\x00\x00\x02\x00\x00\x00" + b"\x00" * 32


def id3_mp3() -> bytes:
    tag = b"TIT2" + struct.pack(">I", 6) + b"\x00\x00" + b"\x00Song!"
    header = b"ID3\x03\x00\x00" + bytes([0, 0, 0, len(tag)])
    return header + tag + mp3_frames(2)


def mp3_frames(n: int) -> bytes:
    # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, no padding: 417-byte frames.
    frame = b"\xff\xfb\x90\x64" + b"\x00" * 413
    return frame * n


def wav() -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    data = b"\x00\x00" * 100
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    payload = major + b"\x00\x00\x02\x00" + b"".join(compatible)
    box = struct.pack(">I", 8 + len(payload)) + b"ftyp" + payload
    return box + struct.pack(">I", 8) + b"free" + struct.pack(">I", 16) + b"mdat" + b"\x00" * 8


WEBM = (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08"
        b"\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02" + b"\x18\x53\x80\x67" + b"\x00" * 16)
MKV = WEBM.replace(b"\x42\x82\x84webm", b"\x42\x82\x88matroska")


def ogg(first_packet: bytes) -> bytes:
    return b"OggS\x00\x02" + b"\x00" * 8 + b"\x01\x00\x00\x00" + b"\x00" * 8 + b"\x01" + \
        bytes([len(first_packet)]) + first_packet


FLAC = b"fLaC\x00\x00\x00\x22" + b"\x10\x00" * 17


def make_zip(entries: list[tuple[str, bytes]], method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def content_types(main: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/main.xml" ContentType="{main}"/></Types>'
    ).encode()


def xlsx_openpyxl_order() -> bytes:
    # openpyxl writes [Content_Types].xml *last*: the xl/ entries must be enough.
    return make_zip([
        ("docProps/app.xml", b"<Properties/>" * 50),
        ("docProps/core.xml", b"<cp:coreProperties/>"),
        ("xl/theme/theme1.xml", os.urandom(3000)),
        ("xl/worksheets/sheet1.xml", b"<worksheet/>"),
        ("xl/workbook.xml", b"<workbook/>"),
        ("[Content_Types].xml", content_types("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml")),
    ])


def docx() -> bytes:
    return make_zip([
        ("[Content_Types].xml", content_types(
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml")),
        ("_rels/.rels", b"<Relationships/>"),
        ("word/document.xml", b"<w:document/>"),
    ])


def pptx() -> bytes:
    return make_zip([
        ("[Content_Types].xml", content_types(
            "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml")),
        ("ppt/presentation.xml", b"<p:presentation/>"),
    ])


def xlsx_content_types_only() -> bytes:
    # Huge first entry pushes everything but [Content_Types].xml out of the head.
    return make_zip([
        ("[Content_Types].xml", content_types(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml")),
        ("docProps/thumbnail.jpeg", os.urandom(20000)),
        ("xl/workbook.xml", b"<workbook/>"),
    ])


CSV = b"id,name,score\n1,alice,3.5\n2,\"bob, jr\",4\n3,\"multi\nline\",5\n"
TSV = b"id\tname\tscore\n1\talice\t3.5\n2\tbob\t4\n"
SEMICOLON_CSV = "id;nom;prix\n1;café;3,50\n2;thé;2,00\n".encode()
JSON_OBJ = b'{"name": "x", "values": [1, -2.5e3, true, false, null], "nested": {"k": "\\u00e9"}}'
JSON_ARR = b'  [\n  {"a": 1},\n  {"a": 2}\n]\n'
NDJSON_SAMPLE = b'{"a": 1}\n{"a": 2}\n[3, 4]\n'
TEXT = "Hello world.\nThis is plain text: déjà vu.\nNothing tabular here\n".encode()


def sniffed(data: bytes) -> Sniffed:
    return sniff(data[:SNIFF_BYTES])


# --------------------------------------------------------------------------- #
# Type detection
# --------------------------------------------------------------------------- #

RASTERS = [
    ("PNG", {}, "image/png", "png"),
    ("PNG", {"mode": "RGBA"}, "image/png", "png"),
    ("JPEG", {}, "image/jpeg", "jpg"),
    ("GIF", {}, "image/gif", "gif"),
    ("WEBP", {}, "image/webp", "webp"),
    ("WEBP", {"lossless": True}, "image/webp", "webp"),
    ("BMP", {}, "image/bmp", "bmp"),
    ("TIFF", {}, "image/tiff", "tiff"),
    ("ICO", {}, "image/vnd.microsoft.icon", "ico"),
]


@pytest.mark.parametrize("fmt,kw,mime,ext", RASTERS)
def test_raster_images(fmt, kw, mime, ext):
    mode = kw.pop("mode", "RGB")
    assert sniffed(raster(fmt, mode=mode, **kw)) == Sniffed(mime, "image", ext)


@pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF")
def test_avif_from_pillow():
    assert sniffed(raster("AVIF")) == Sniffed("image/avif", "image", "avif")


@pytest.mark.parametrize("data,expected", [
    # binary documents and containers
    (PDF, ("application/pdf", "document", "pdf")),
    (b"\xef\xbb\xbf\r\n%PDF-1.7\n", ("application/pdf", "document", "pdf")),
    (b"PAR1\x15\x04\x15\x10\x15\x14L\x15\x02\x15\x00\x12\x00\x00", (PARQUET, "document", "parquet")),
    (gzip.compress(b"hello" * 100, mtime=0), ("application/gzip", "other", "gz")),
    (make_zip([("a.txt", b"hello"), ("b/c.bin", b"\x00\x01")]), ("application/zip", "other", "zip")),
    # audio / video
    (id3_mp3(), ("audio/mpeg", "audio", "mp3")),
    (mp3_frames(3), ("audio/mpeg", "audio", "mp3")),
    (wav(), ("audio/wav", "audio", "wav")),
    (FLAC, ("audio/flac", "audio", "flac")),
    (ogg(b"\x01vorbis\x00\x00\x00\x00\x01"), ("audio/ogg", "audio", "ogg")),
    (ogg(b"OpusHead\x01\x02"), ("audio/ogg", "audio", "opus")),
    (ogg(b"\x80theora\x03\x02"), ("video/ogg", "video", "ogv")),
    (ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), ("video/mp4", "video", "mp4")),
    (ftyp(b"mp42", b"mp42", b"isom"), ("video/mp4", "video", "mp4")),
    (ftyp(b"qt  ", b"qt  "), ("video/quicktime", "video", "mov")),
    (ftyp(b"M4A ", b"M4A ", b"mp42", b"isom"), ("audio/mp4", "audio", "m4a")),
    (ftyp(b"avif", b"avif", b"mif1", b"miaf"), ("image/avif", "image", "avif")),
    (ftyp(b"mif1", b"mif1", b"avif"), ("image/avif", "image", "avif")),
    (ftyp(b"heic", b"mif1", b"heic"), ("image/heic", "image", "heic")),
    (ftyp(b"mif1", b"mif1", b"heic"), ("image/heic", "image", "heic")),
    (ftyp(b"mif1", b"mif1"), ("image/heif", "image", "heif")),
    (WEBM, ("video/webm", "video", "webm")),
    (MKV, ("video/x-matroska", "video", "mkv")),
    # markup and text
    (SVG, ("image/svg+xml", "image", "svg")),
    (SVG_WITH_PROLOG, ("image/svg+xml", "image", "svg")),
    (SVG_WITH_ENTITIES, ("image/svg+xml", "image", "svg")),
    (b"<?xml version='1.0'?>\n<svg:svg xmlns:svg='http://www.w3.org/2000/svg'/>", ("image/svg+xml", "image", "svg")),
    (b"<!DOCTYPE html>\n<html><body>hi</body></html>", ("text/html", "document", "html")),
    (b"  \n<!doctype HTML><title>x</title>", ("text/html", "document", "html")),
    (b"<HTML><HEAD></HEAD></HTML>", ("text/html", "document", "html")),
    (b"<!-- comment -->\n<html lang=en>", ("text/html", "document", "html")),
    (b"<script>alert(document.cookie)</script>", ("text/html", "document", "html")),
    (b"<head><meta charset=utf-8></head>", ("text/html", "document", "html")),
    (b"<BODY onload=alert(1)>", ("text/html", "document", "html")),
    (b"Just some words first\n<ScRiPt src=//evil.example/x.js></script>", ("text/html", "document", "html")),
    (b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"></html>', ("text/html", "document", "html")),
    (b'<?xml version="1.0" encoding="UTF-8"?>\n<catalog><book id="1"/></catalog>', ("application/xml", "document", "xml")),
    (b'<rss version="2.0"><channel/></rss>', ("application/xml", "document", "xml")),
    (JSON_OBJ, ("application/json", "document", "json")),
    (JSON_ARR, ("application/json", "document", "json")),
    (b"\xef\xbb\xbf{}", ("application/json", "document", "json")),
    (NDJSON_SAMPLE, ("application/x-ndjson", "document", "jsonl")),
    (b'{"page": "<html><script>x()</script></html>"}', ("application/json", "document", "json")),
    (CSV, ("text/csv", "document", "csv")),
    (SEMICOLON_CSV, ("text/csv", "document", "csv")),
    (b"\xef\xbb\xbfa,b\r\n1,2\r\n", ("text/csv", "document", "csv")),
    (TSV, ("text/tab-separated-values", "document", "tsv")),
    (TEXT, ("text/plain", "document", "txt")),
    ("Unicode text: ünïcödé ✓ 漢字\n".encode(), ("text/plain", "document", "txt")),
    ("UTF-16 text\r\nwith BOM\r\n".encode("utf-16"), ("text/plain", "document", "txt")),
    (b"{not json at all}\n", ("text/plain", "document", "txt")),
    (b'{"truncated": [1, 2', ("text/plain", "document", "txt")),    # whole file, broken JSON
    (b"MZ is where this text starts, and it is only prose.\n" * 3, ("text/plain", "document", "txt")),
    (b"#!important: not a shebang\n", ("text/plain", "document", "txt")),
    (b"{\\rtf1\\ansi Hello}", ("application/rtf", "document", "rtf")),
    (b"", ("text/plain", "document", "txt")),
    # executables
    (ELF, ("application/x-executable", "other", "elf")),
    (pe(), ("application/vnd.microsoft.portable-executable", "other", "exe")),
    (pe(dll=True), ("application/vnd.microsoft.portable-executable", "other", "dll")),
    (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 100, ("application/x-dosexec", "other", "exe")),
    (MACHO, ("application/x-mach-binary", "other", "macho")),
    (b"\xca\xfe\xba\xbe\x00\x00\x00\x02" + b"\x00" * 40, ("application/x-mach-binary", "other", "macho")),
    (b"#!/bin/sh\necho hello\n", ("application/x-sh", "other", "sh")),
    (b"#! /bin/bash -e\nrm -rf /tmp/x\n", ("application/x-sh", "other", "sh")),
    (b"#!/usr/bin/env python3\nprint('hi')\n", ("text/x-python", "other", "py")),
    (b"#!/usr/bin/env -S node --harmony\nconsole.log(1)\n", ("text/javascript", "other", "js")),
    (b"#!/usr/local/bin/perl -w\n", ("application/x-perl", "other", "pl")),
    (b"#!/opt/bin/frobnicate\n", ("text/x-script.frobnicate", "other", "bin")),
    # unknown
    (bytes(range(256)) * 8, ("application/octet-stream", "other", "bin")),
    (b"\x00\x00\x00\x00garbage\x00\x01\x02", ("application/octet-stream", "other", "bin")),
], ids=lambda v: v[0] if isinstance(v, tuple) else None)
def test_sniff_types(data, expected):
    assert sniffed(data) == Sniffed(*expected)


def test_office_documents():
    assert sniffed(xlsx_openpyxl_order()) == Sniffed(XLSX, "document", "xlsx")
    assert sniffed(xlsx_content_types_only()) == Sniffed(XLSX, "document", "xlsx")
    assert sniffed(docx()) == Sniffed(DOCX, "document", "docx")
    assert sniffed(pptx()) == Sniffed(PPTX, "document", "pptx")
    stored = make_zip([("word/document.xml", b"<w:document/>")], method=zipfile.ZIP_STORED)
    assert sniffed(stored).mime == DOCX


def test_macro_enabled_workbook_is_not_xlsx():
    data = make_zip([("[Content_Types].xml", content_types("application/vnd.ms-excel.sheet.macroEnabled.main+xml")),
                     ("xl/vbaProject.bin", b"\x00" * 10)])
    assert sniffed(data).mime == "application/vnd.ms-excel.sheet.macroenabled.12"


def test_opendocument_mimetype_entry():
    data = make_zip([("mimetype", b"application/vnd.oasis.opendocument.text"), ("content.xml", b"<x/>")],
                    method=zipfile.ZIP_STORED)
    assert sniffed(data) == Sniffed("application/vnd.oasis.opendocument.text", "document", "odt")


def swf(compressed: bool) -> bytes:
    # One empty frame: RECT with 0-bit fields, 24 fps, 1 frame, End tag.
    body = b"\x00" + struct.pack("<HH", 24 << 8, 1) + b"\x00\x00"
    size = struct.pack("<I", 8 + len(body))
    return b"CWS\x0a" + size + zlib.compress(body) if compressed else b"FWS\x0a" + size + body


def unix_compress() -> bytes:
    # compress(1): magic, block mode + 16-bit codes, then 9-bit LZW codes for "ab".
    return b"\x1f\x9d\x90" + b"\x61\xc4\x00"


def lzop() -> bytes:
    name = b"a.txt"
    header = struct.pack(">HHHBBIIIIB", 0x1030, 0x2080, 0x0940, 1, 5, 0, 0o100644, 0, 0, len(name)) + name
    return b"\x89LZO\x00\r\n\x1a\n" + header + struct.pack(">I", zlib.adler32(header))


def crx3() -> bytes:
    # Chrome extension: magic, format version 3, header length, (empty) header, then the ZIP.
    return b"Cr24" + struct.pack("<II", 3, 0) + make_zip([("manifest.json", b'{"manifest_version": 3}')])


@pytest.mark.parametrize("data,expected", [
    (swf(compressed=False), ("application/x-shockwave-flash", "other", "swf")),
    (swf(compressed=True), ("application/x-shockwave-flash", "other", "swf")),
    (unix_compress(), ("application/x-compress", "other", "z")),
    (lzop(), ("application/x-lzop", "other", "lzo")),
    (crx3(), ("application/x-google-chrome-extension", "other", "crx")),
], ids=["swf", "swf-zlib", "unix-compress", "lzop", "crx3"])
def test_formats_filetype_knows(data, expected):
    assert sniffed(data) == Sniffed(*expected)


def test_pdf_renamed_png_is_still_pdf(tmp_path):
    path = tmp_path / "avatar.png"
    path.write_bytes(PDF)
    with open(path, "rb") as fh:
        result = sniff(fh.read(SNIFF_BYTES))
    assert result == Sniffed("application/pdf", "document", "pdf")
    assert declared_conflicts("image/png", result)


def test_truncated_head_json_and_text():
    big_json = b'[{"k": "' + b"v" * (SNIFF_BYTES * 2) + b'"}]'
    assert sniff(big_json[:SNIFF_BYTES]).mime == "application/json"
    # A multi-byte character cut at the end of the head is not "binary".
    text = ("é" * SNIFF_BYTES).encode()
    head = text[:SNIFF_BYTES - 1]
    assert head[-1:] == b"\xc3"
    assert sniff(head, complete=False).mime == "text/plain"
    big_csv = b"a,b,c\n" + b"1,2,3\n" * 5000
    assert sniff(big_csv[:SNIFF_BYTES]).mime == "text/csv"   # last, partial line ignored


def test_legacy_8bit_csv():
    data = ("name,city,amount\n" + "Müller,Köln,12\nDupont,Orléans,7\nSmith,London,3\n" * 20).encode("cp1252")
    assert sniffed(data).mime == "text/csv"


def test_mp3_frame_sync_needs_a_second_frame():
    broken = b"\xff\xfb\x90\x64" + b"\x00" * 413 + b"\x12\x34\x56\x78" + b"\x00" * 500
    assert sniffed(broken).mime == "application/octet-stream"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def no_sniff_failures():
    """`sniff()` swallows its own exceptions (logging them) so a hostile upload never becomes
    a 500: a test of totality must check that nothing was swallowed, not only that it returned."""
    handler = _Records()
    logger = logging.getLogger("mediastore.sniff")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    assert not handler.records, handler.records[0].getMessage()


# Bytes behind every signature the sniffer knows, so the arbitrary tail reaches the parsers.
SIGNATURES = [
    b"", b"PK\x03\x04", b"\x00\x00\x00\x18ftyp", b"MZ", b"ID3\x03\x00", b"OggS\x00", b"\xff\xfb",
    b"\xff\xf1", b"BM", b"\x00\x00\x01\x00", b"#!/", b"{", b"[", b"<", b"<?xml ", b"%PDF-", b"\x1a\x45\xdf\xa3",
    b"RIFF", b"\xca\xfe\xba\xbe", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"\x89PNG\r\n\x1a\n", b"Cr24",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SIGNATURES), st.binary(max_size=2048), st.booleans())
def test_sniff_ignores_declared_name_and_is_total(signature, tail, complete):
    data = signature + tail
    with no_sniff_failures():
        result = sniff(data, complete=complete)
    assert isinstance(result, Sniffed)
    assert result.kind in KINDS and result.mime == normalize_mime(result.mime) and "/" in result.mime
    # Content is the only input: the same bytes, however they are held, get the same answer.
    assert sniff(bytearray(data), complete=complete) == sniff(memoryview(data), complete=complete) == result


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_sniff_never_raises(data):
    result = sniff(data)
    assert result.kind in ("image", "video", "audio", "document", "other")
    assert result.mime and "/" in result.mime and result.ext and "." not in result.ext


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([
    (PDF, "application/pdf"), (ELF, "application/x-executable"), (FLAC, "audio/flac"),
    (raster("PNG"), "image/png"), (pe(), "application/vnd.microsoft.portable-executable"),
    (WEBM, "video/webm"), (make_zip([("word/document.xml", b"<w:document/>")]), DOCX),
]), st.binary(max_size=64))
def test_sniff_survives_trailing_garbage(sample, junk):
    prefix, mime = sample
    with no_sniff_failures():
        assert sniff(prefix + junk).mime == mime
        sniff(prefix[: len(prefix) // 2] + junk)


@settings(max_examples=100, deadline=None)
@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2fff, exclude_characters="\x7f"), max_size=64))
def test_svg_followed_by_any_text_is_still_svg(junk):
    assert sniff(SVG + junk.encode()).mime == "image/svg+xml"


# --------------------------------------------------------------------------- #
# is_inline_safe / is_executable
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("mime", [
    "image/png", "image/jpeg", "image/jpg", "image/gif", "image/webp", "image/avif", "image/bmp",
    "video/mp4", "video/webm", "video/quicktime", "audio/mpeg", "audio/wav", "audio/ogg",
    "application/pdf", "IMAGE/PNG; charset=binary",
])
def test_inline_safe(mime):
    assert is_inline_safe(mime)


@pytest.mark.parametrize("mime", [
    "image/svg+xml", "text/html", "application/xhtml+xml", "application/xml", "text/xml",
    "text/plain", "text/csv", "application/json", "application/javascript", "text/javascript",
    "application/octet-stream", "image/tiff", "image/heic", "image/vnd.microsoft.icon",
    "application/zip", "application/x-executable", "audio/x-mpegurl", "", None,
])
def test_not_inline_safe(mime):
    assert not is_inline_safe(mime)


def test_is_executable():
    for data in (ELF, pe(), MACHO, b"#!/bin/sh\n", b"#!/usr/bin/env ruby\n", b"#!/opt/x/custom\n"):
        assert is_executable(sniffed(data).mime), data[:16]
    for data in (PDF, CSV, TEXT, raster("PNG"), SVG):
        assert not is_executable(sniffed(data).mime)


# --------------------------------------------------------------------------- #
# declared_conflicts
# --------------------------------------------------------------------------- #

PNG_S = Sniffed("image/png", "image", "png")
JPEG_S = Sniffed("image/jpeg", "image", "jpg")
PDF_S = Sniffed("application/pdf", "document", "pdf")
CSV_S = Sniffed("text/csv", "document", "csv")
JSON_S = Sniffed("application/json", "document", "json")
HTML_S = Sniffed("text/html", "document", "html")
SVG_S = Sniffed("image/svg+xml", "image", "svg")
TEXT_S = Sniffed("text/plain", "document", "txt")
MP4_S = Sniffed("video/mp4", "video", "mp4")
XLSX_S = Sniffed(XLSX, "document", "xlsx")
UNKNOWN_S = Sniffed("application/octet-stream", "other", "bin")
SH_S = Sniffed("application/x-sh", "other", "sh")


@pytest.mark.parametrize("declared,sniffed_as", [
    (None, PDF_S), ("", PNG_S), ("application/octet-stream", PDF_S), ("binary/octet-stream", PNG_S),
    ("image/png", PNG_S), ("IMAGE/PNG", PNG_S), ("image/png; foo=bar", PNG_S),
    ("image/jpg", JPEG_S), ("image/pjpeg", JPEG_S), ("image/jpeg", JPEG_S),
    ("text/plain", CSV_S), ("text/plain", JSON_S), ("text/plain; charset=utf-8", TEXT_S),
    ("text/plain", SH_S),
    ("application/vnd.ms-excel", CSV_S), ("text/x-csv", CSV_S), ("text/json", JSON_S),
    ("application/zip", XLSX_S), ("application/x-zip-compressed", XLSX_S),
    ("audio/mp4", MP4_S), ("audio/x-m4a", MP4_S), ("video/quicktime", MP4_S),
    ("application/ld+json", JSON_S), ("text/xml", Sniffed("application/xml", "document", "xml")),
    ("text/markdown", TEXT_S), ("application/x-yaml", TEXT_S), ("image/*", PNG_S),
    ("model/gltf-binary", UNKNOWN_S),
])
def test_declared_does_not_conflict(declared, sniffed_as):
    assert not declared_conflicts(declared, sniffed_as)


@pytest.mark.parametrize("declared,sniffed_as", [
    ("image/png", PDF_S), ("image/jpeg", PNG_S), ("image/png", JPEG_S), ("image/jpg", PNG_S),
    ("image/gif", SVG_S), ("text/plain", HTML_S), ("text/plain", SVG_S), ("text/csv", PDF_S),
    ("application/pdf", HTML_S), ("image/png", UNKNOWN_S), ("text/plain", UNKNOWN_S),
    ("application/json", PNG_S), ("video/*", PNG_S), ("png", PNG_S), ("application/zip", PDF_S),
    ("image/svg+xml", HTML_S), (DOCX, XLSX_S),
])
def test_declared_conflicts(declared, sniffed_as):
    assert declared_conflicts(declared, sniffed_as)


# --------------------------------------------------------------------------- #
# Categories
# --------------------------------------------------------------------------- #

def test_category_registry():
    assert CATEGORIES == ("general", "data_source", "profile_image")
    assert tuple(c.name for c in ALL_CATEGORIES) == CATEGORIES
    assert get_category(None) is GENERAL
    assert get_category("") is GENERAL
    assert get_category("data_source") is DATA_SOURCE
    assert get_category(" Profile_Image ") is PROFILE_IMAGE
    assert PROFILE_IMAGE.max_bytes == PROFILE_IMAGE_MAX_BYTES == 5 * 1024 * 1024
    assert DATA_SOURCE.max_bytes == 100 * 1024 * 1024
    assert GENERAL.max_bytes is None
    with pytest.raises(Exception):
        PROFILE_IMAGE.max_bytes = 1  # frozen
    assert isinstance(GENERAL, Category)


@pytest.mark.parametrize("name", ["avatars", "profile-image", "../general", 42])
def test_unknown_category(name):
    with pytest.raises(InvalidRequest) as exc:
        get_category(name)
    err = exc.value
    assert err.status == 400
    assert err.code == "invalid_category"
    assert err.param == "category"
    for valid in CATEGORIES:
        assert valid in err.message


def _refused(category, data) -> UnsupportedMediaType:
    with pytest.raises(UnsupportedMediaType) as exc:
        category_check(category, sniffed(data))
    return exc.value


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_profile_image_accepts_rasters(fmt):
    category_check(PROFILE_IMAGE, sniffed(raster(fmt)))


def test_profile_image_accepts_avif():
    category_check(PROFILE_IMAGE, sniffed(ftyp(b"avif", b"avif", b"mif1")))


@pytest.mark.parametrize("data,mime", [
    (PDF, "application/pdf"), (SVG, "image/svg+xml"), (SVG_WITH_PROLOG, "image/svg+xml"),
    (raster("BMP"), "image/bmp"), (raster("TIFF"), "image/tiff"), (CSV, "text/csv"),
    (b"<html><body>x</body></html>", "text/html"), (ELF, "application/x-executable"),
])
def test_profile_image_refuses(data, mime):
    err = _refused(PROFILE_IMAGE, data)
    assert err.status == 415
    assert err.code == "unsupported_media_type"
    assert err.param == "file"
    assert mime in err.message and "profile_image" in err.message


@pytest.mark.parametrize("data", [
    ELF, pe(), pe(dll=True), MACHO, b"#!/bin/sh\necho pwned\n", b"#!/usr/bin/env python3\n",
    b"<!DOCTYPE html><html></html>", b"<script>alert(1)</script>",
    b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"/>',
])
def test_general_refuses_executables_and_html(data):
    err = _refused(GENERAL, data)
    assert err.status == 415 and err.code == "unsupported_media_type" and err.param == "file"
    assert "general" in err.message


@pytest.mark.parametrize("data", [
    PDF, SVG, CSV, JSON_OBJ, TEXT, raster("PNG"), raster("TIFF"), wav(), id3_mp3(),
    ftyp(b"isom", b"isom"), make_zip([("a", b"b")]), gzip.compress(b"x", mtime=0), bytes(range(256)) * 4,
    xlsx_openpyxl_order(), b'<?xml version="1.0"?><data/>',
])
def test_general_accepts_everything_else(data):
    category_check(GENERAL, sniffed(data))


@pytest.mark.parametrize("data", [
    CSV, TSV, SEMICOLON_CSV, JSON_OBJ, JSON_ARR, NDJSON_SAMPLE, TEXT, PDF,
    xlsx_openpyxl_order(), xlsx_content_types_only(), docx(), pptx(), b"PAR1\x15\x04",
    b'<?xml version="1.0"?><rows><row a="1"/></rows>',
])
def test_data_source_accepts_tabular_and_documents(data):
    category_check(DATA_SOURCE, sniffed(data))


@pytest.mark.parametrize("data", [
    raster("PNG"), SVG, make_zip([("a.txt", b"hello")]), gzip.compress(b"a,b\n1,2\n", mtime=0), ELF,
    b"<html></html>", wav(), bytes(range(256)) * 4,
])
def test_data_source_refuses_others(data):
    err = _refused(DATA_SOURCE, data)
    assert err.code == "unsupported_media_type" and "data_source" in err.message


def test_effective_max_bytes_and_check_size():
    mib = 1024 * 1024
    assert effective_max_bytes(GENERAL, 50 * mib) == 50 * mib
    assert effective_max_bytes(PROFILE_IMAGE, 50 * mib) == 5 * mib
    assert effective_max_bytes(PROFILE_IMAGE, 1 * mib) == 1 * mib
    assert effective_max_bytes(DATA_SOURCE, 1024 * mib) == 100 * mib
    check_size(PROFILE_IMAGE, 5 * mib, 50 * mib)
    with pytest.raises(TooLarge) as exc:
        check_size(PROFILE_IMAGE, 5 * mib + 1, 50 * mib)
    assert exc.value.status == 413 and exc.value.code == "max_size_exceeded" and exc.value.param == "file"
