"""Content sniffing: what a file *is*, decided from its first bytes only.

The file name and the type a client declares are never trusted: `sniff()` looks at
the head of the content (the caller passes up to `SNIFF_BYTES`). Binary formats are
identified by the `filetype` package's matchers, refined where they lump formats
together (OOXML/ODF inside ZIP, ISO-BMFF brands, Ogg codecs, PE vs DOS, OLE) and
supplemented by the few signatures it lacks; text is told apart by `sniff_text`.

    sniffed = sniff(head)                  # Sniffed(mime="image/png", kind="image", ext="png")
    is_inline_safe(sniffed.mime)           # may it be served `Content-Disposition: inline`?
    declared_conflicts(declared, sniffed)  # does the client's Content-Type contradict it?
    is_executable(sniffed.mime)            # native binaries and `#!` scripts
"""
from __future__ import annotations

import logging
import re
import struct
import zlib
from dataclasses import dataclass
from typing import Callable

import filetype

from storage_app.sniff_text import (
    NDJSON, SCRIPT_MIMES, classify_text, decode_legacy_text, decode_text, sniff_shebang,
)

logger = logging.getLogger("mediastore.sniff")
__all__ = [
    "SNIFF_BYTES", "Sniffed", "sniff", "is_inline_safe", "declared_conflicts", "declared_contradicts",
    "is_executable", "normalize_mime", "EXECUTABLE_MIMES", "HTML_MIMES", "OCTET_STREAM",
    "XLSX", "DOCX", "PPTX", "PARQUET", "NDJSON",
]

SNIFF_BYTES = 8192
"""How much of the head callers pass to `sniff()` (less only when the file is shorter)."""

OCTET_STREAM = "application/octet-stream"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSM = "application/vnd.ms-excel.sheet.macroenabled.12"
DOCM = "application/vnd.ms-word.document.macroenabled.12"
PPTM = "application/vnd.ms-powerpoint.presentation.macroenabled.12"
PARQUET = "application/vnd.apache.parquet"

KINDS = ("image", "video", "audio", "document", "other")


@dataclass(frozen=True)
class Sniffed:
    mime: str   # canonical, lower case, no parameters
    kind: str   # image | video | audio | document | other
    ext: str    # canonical extension without the dot; "bin" when unknown


# --------------------------------------------------------------------------- #
# MIME vocabulary
# --------------------------------------------------------------------------- #

_DOCUMENT_MIMES = frozenset({
    "application/pdf", "text/plain", "text/csv", "text/tab-separated-values",
    "application/json", NDJSON, "application/xml", "text/html", "application/rtf",
    "application/postscript", XLSX, DOCX, PPTX, XLSM, DOCM, PPTM, PARQUET,
    "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/vnd.oasis.opendocument.graphics",
    "application/epub+zip",
})

# Aliases seen in the wild (browsers, OS tables, puremagic) -> canonical type.
_ALIASES = {
    "image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/jpe": "image/jpeg",
    "image/x-png": "image/png", "image/apng": "image/png",
    "image/x-ms-bmp": "image/bmp", "image/x-bmp": "image/bmp", "image/x-windows-bmp": "image/bmp",
    "image/x-icon": "image/vnd.microsoft.icon", "image/ico": "image/vnd.microsoft.icon",
    "image/tif": "image/tiff", "image/x-tiff": "image/tiff",
    "image/heic-sequence": "image/heic", "image/heif-sequence": "image/heif",
    "image/avif-sequence": "image/avif",
    "audio/mp3": "audio/mpeg", "audio/x-mp3": "audio/mpeg", "audio/mpeg3": "audio/mpeg",
    "audio/x-mpeg": "audio/mpeg", "audio/x-mpeg-3": "audio/mpeg", "audio/mpg": "audio/mpeg",
    "audio/x-wav": "audio/wav", "audio/wave": "audio/wav", "audio/vnd.wave": "audio/wav",
    "audio/x-pn-wav": "audio/wav",
    "audio/x-flac": "audio/flac", "audio/x-m4a": "audio/mp4", "audio/m4a": "audio/mp4",
    "audio/x-aac": "audio/aac", "audio/aacp": "audio/aac", "audio/x-aiff": "audio/aiff",
    "audio/mid": "audio/midi", "audio/x-midi": "audio/midi",
    "audio/x-ogg": "audio/ogg", "application/x-ogg": "application/ogg",
    "video/avi": "video/x-msvideo", "video/msvideo": "video/x-msvideo",
    "video/x-mkv": "video/x-matroska", "video/mpeg4": "video/mp4",
    "application/x-pdf": "application/pdf", "application/acrobat": "application/pdf",
    "text/json": "application/json", "application/x-json": "application/json",
    "application/jsonl": NDJSON, "application/jsonlines": NDJSON,
    "application/x-jsonlines": NDJSON, "application/json-lines": NDJSON,
    "text/x-csv": "text/csv", "application/csv": "text/csv", "text/comma-separated-values": "text/csv",
    "application/x-csv": "text/csv",
    "text/tsv": "text/tab-separated-values", "text/x-tsv": "text/tab-separated-values",
    "text/xml": "application/xml", "application/x-xml": "application/xml",
    "text/rtf": "application/rtf", "application/x-rtf": "application/rtf",
    "application/x-zip-compressed": "application/zip", "application/x-zip": "application/zip",
    "application/x-gzip": "application/gzip", "application/gzip-compressed": "application/gzip",
    "application/x-bzip": "application/x-bzip2", "application/x-7z": "application/x-7z-compressed",
    "application/x-rar-compressed": "application/vnd.rar", "application/x-rar": "application/vnd.rar",
    "application/parquet": PARQUET, "application/x-parquet": PARQUET,
    "application/x-sqlite3": "application/vnd.sqlite3",
    "application/x-msdownload": "application/vnd.microsoft.portable-executable",
    "application/x-ms-dos-executable": "application/x-dosexec",
    "application/x-msdos-program": "application/x-dosexec",
    "application/x-elf": "application/x-executable",
    "application/x-mach-o": "application/x-mach-binary",
    "application/x-shellscript": "application/x-sh", "text/x-shellscript": "application/x-sh",
    "text/x-sh": "application/x-sh",
    "text/x-script.python": "text/x-python", "application/x-python": "text/x-python",
    "application/x-python-code": "text/x-python",
    "text/x-perl": "application/x-perl", "text/x-ruby": "application/x-ruby",
    "application/x-php": "application/x-httpd-php", "text/x-php": "application/x-httpd-php",
    "application/javascript": "text/javascript", "application/x-javascript": "text/javascript",
    "application/ecmascript": "text/javascript", "text/ecmascript": "text/javascript",
    "image/svg": "image/svg+xml",
}

# Declared types that say nothing about the content.
_GENERIC_DECLARED = frozenset({
    "", OCTET_STREAM, "binary/octet-stream", "application/unknown", "application/binary",
    "application/x-unknown", "application/force-download", "application/download",
    "application/x-download", "*/*", "unknown/unknown", "application/x-binary",
})

HTML_MIMES = frozenset({"text/html", "application/xhtml+xml"})

EXECUTABLE_MIMES = frozenset({
    "application/x-executable", "application/x-sharedlib", "application/x-object",
    "application/x-pie-executable", "application/x-coredump",
    "application/x-mach-binary",
    "application/vnd.microsoft.portable-executable", "application/x-dosexec",
    "application/x-msi", "application/java-vm", "application/java-archive-class",
}) | SCRIPT_MIMES                                  # `#!` scripts

_INLINE_SAFE_IMAGES = frozenset({
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp",
})

# Types that are interchangeable as declarations (container families the head
# cannot always tell apart, well-known sub/super types).
_COMPAT_GROUPS = (
    frozenset({"video/mp4", "audio/mp4", "video/quicktime", "video/x-m4v", "video/3gpp",
               "video/3gpp2", "audio/3gpp", "audio/3gpp2", "application/mp4"}),
    frozenset({"video/webm", "audio/webm", "video/x-matroska", "audio/x-matroska"}),
    frozenset({"audio/ogg", "video/ogg", "application/ogg", "audio/opus"}),
    frozenset({"image/heic", "image/heif"}),
    frozenset({"text/html", "application/xhtml+xml"}),
    frozenset({"application/json", NDJSON}),
    frozenset({"text/csv", "text/tab-separated-values"}),
    frozenset({"image/tiff", "image/x-adobe-dng", "image/dng", "image/x-canon-cr2",
               "image/x-nikon-nef", "image/x-sony-arw", "image/x-panasonic-rw2",
               "image/x-olympus-orf", "image/x-pentax-pef", "image/x-fuji-raf"}),
    frozenset({"application/x-ole-storage", "application/msword", "application/vnd.ms-excel",
               "application/vnd.ms-powerpoint", "application/x-msi", "application/vnd.ms-outlook",
               "application/vnd.visio"}),
    frozenset({"application/gzip", "application/x-gtar", "application/x-tgz",
               "application/x-compressed-tar", "application/x-tar+gzip"}),
)

# Everything stored as a ZIP container.
_ZIP_FAMILY = frozenset({
    "application/zip", XLSX, DOCX, PPTX, XLSM, DOCM, PPTM,
    "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/vnd.oasis.opendocument.graphics", "application/epub+zip",
    "application/java-archive", "application/vnd.android.package-archive",
})

# Types the explicit checks always recognise: declaring one of them for content we
# cannot identify is a contradiction.
_RECOGNIZED = frozenset({
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/heic", "image/heif",
    "image/bmp", "image/tiff", "image/vnd.microsoft.icon", "image/svg+xml", "image/jxl", "image/jp2",
    "image/vnd.adobe.photoshop", "application/pdf", "video/mp4", "video/quicktime", "video/webm",
    "video/x-matroska", "video/x-msvideo", "video/x-m4v", "video/3gpp", "video/ogg", "video/mpeg",
    "audio/mpeg", "audio/wav", "audio/ogg", "audio/flac", "audio/mp4", "audio/aac", "audio/aiff",
    "audio/midi", "audio/webm", "application/zip", XLSX, DOCX, PPTX, PARQUET, "application/gzip",
    "application/x-bzip2", "application/x-xz", "application/zstd", "application/x-7z-compressed",
    "application/vnd.rar", "application/x-tar", "application/vnd.sqlite3", "application/wasm",
}) | EXECUTABLE_MIMES

# Benign structured text a client may reasonably label `text/plain`.
_PLAIN_TEXT_COMPATIBLE = frozenset({
    "text/plain", "text/csv", "text/tab-separated-values", "application/json", NDJSON,
    "application/xml", "application/rtf", "application/postscript",
})
# Textual types we never accept under a `text/plain` label: active content.


def normalize_mime(mime: str | None) -> str:
    """Lower-case, drop parameters (`; charset=...`), map well-known aliases."""
    if not mime:
        return ""
    base = str(mime).split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)


def _kind_of(mime: str) -> str:
    top = mime.split("/", 1)[0]
    if top in ("image", "video", "audio"):
        return top
    if mime in _DOCUMENT_MIMES:
        return "document"
    return "other"


def _s(mime: str, ext: str, kind: str | None = None) -> Sniffed:
    return Sniffed(mime=mime, kind=kind or _kind_of(mime), ext=ext)


UNKNOWN = Sniffed(mime=OCTET_STREAM, kind="other", ext="bin")


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #

def sniff(head: bytes, *, complete: bool | None = None) -> Sniffed:
    """Identify content from its first bytes.

    `head` is the start of the file (up to `SNIFF_BYTES`). `complete` says whether
    `head` is the whole file; by default it is inferred (`len(head) < SNIFF_BYTES`).
    It only matters for text formats (a JSON prefix cut mid-value still counts as
    JSON when the head is truncated). Never raises on any input.
    """
    head = bytes(head or b"")
    if complete is None:
        complete = len(head) < SNIFF_BYTES
    if not head:
        return _s("text/plain", "txt")
    try:
        return _identify(head, complete) or UNKNOWN
    except Exception:  # noqa: BLE001 - hostile input must never turn into a 500
        logger.warning("content sniffing failed; treating as %s", OCTET_STREAM, exc_info=True)
    return UNKNOWN


def _identify(head: bytes, complete: bool) -> Sniffed | None:
    text = decode_text(head, complete)
    found = _sniff_anchored(head)
    if found is None and text is None:             # filetype's signatures are only trusted on binary heads
        found = _sniff_binary(head) or _sniff_unanchored(head)
        text = None if found else decode_legacy_text(head)
    if found is None and text is not None:
        found = _s(*classify_text(text, complete))
    return found


def is_inline_safe(mime: str | None) -> bool:
    """May content of this (sniffed) type be served inline?

    Only plain raster images (PNG, JPEG, GIF, WebP, AVIF, BMP), audio/video and PDF.
    SVG, HTML, XML, text, JSON and everything else must be served as attachments.
    """
    m = normalize_mime(mime)
    if m in _INLINE_SAFE_IMAGES or m == "application/pdf":
        return True
    top, _, sub = m.partition("/")
    if top in ("audio", "video") and sub:
        # Playlists and XML-based "media" types are text that browsers may parse.
        return not (sub.endswith("+xml") or "mpegurl" in sub or sub in ("x-scpls", "vnd.dlna.mpeg-tts"))
    return False


def is_executable(mime: str | None) -> bool:
    """Native executables (ELF, PE/DOS, Mach-O, Java classes, MSI) and `#!` scripts."""
    m = normalize_mime(mime)
    return m in EXECUTABLE_MIMES or m.startswith("text/x-script.")


def declared_conflicts(declared_mime: str | None, sniffed: Sniffed) -> bool:
    """True when the client declared a concrete type the content contradicts.

    A missing or generic declaration (`application/octet-stream`, ...) never conflicts;
    aliases (`image/jpg`) are normalised; container families the head cannot split
    (mp4/m4a/mov, webm/mkv, ogg audio/video, heic/heif, zip/xlsx) and `text/plain` for
    benign structured text (csv, json, xml) are accepted. Different concrete types,
    even within one family (declared `image/jpeg`, content PNG), conflict.
    """
    declared = normalize_mime(declared_mime)
    if declared in _GENERIC_DECLARED:
        return False
    actual = normalize_mime(sniffed.mime)
    if declared == actual:
        return False
    d_top, _, d_sub = declared.partition("/")
    a_top, _, a_sub = actual.partition("/")
    if not d_sub:                                  # garbage like "png"
        return True
    if d_sub == "*":                               # "image/*"
        return d_top != a_top
    if actual == OCTET_STREAM:
        # We could not identify the content: only a type we *would* have recognised
        # (or any text) is contradicted by it.
        return declared in _RECOGNIZED or _is_textual(declared)
    for group in _COMPAT_GROUPS:
        if declared in group and actual in group:
            return False
    if declared in _ZIP_FAMILY and actual in _ZIP_FAMILY and "application/zip" in (declared, actual):
        return False
    if declared == "application/vnd.ms-excel" and actual in ("text/csv", "text/tab-separated-values", XLSX):
        return False                               # what Windows browsers send for .csv
    if declared == "text/plain":
        return actual not in _PLAIN_TEXT_COMPATIBLE and not _is_script_text(actual)
    if actual == "application/json" and d_sub.endswith("+json"):
        return False                               # application/ld+json, geo+json, ...
    if actual == "application/xml" and d_sub.endswith("+xml"):
        return False                               # rss+xml, atom+xml, ...
    if declared == "application/xml" and a_sub.endswith("+xml"):
        return False                               # SVG is XML
    if actual == "text/plain" and _is_textual(declared):
        return False                               # our weakest verdict: "some text"
    return True


def _is_script_text(mime: str) -> bool:
    return mime in SCRIPT_MIMES or mime.startswith("text/x-script.")


def _is_textual(mime: str) -> bool:
    top, _, sub = mime.partition("/")
    if top == "text" or sub.endswith(("+xml", "+json")):
        return True
    return mime in SCRIPT_MIMES or mime in {
        "application/json", NDJSON, "application/xml", "application/x-yaml", "application/yaml",
        "application/toml", "application/sql", "application/x-sql", "application/rtf",
        "application/x-tex", "application/x-latex", "application/x-subrip", "application/graphql",
    } or mime.startswith("text/x-script.")



# --------------------------------------------------------------------------- #
# Binary formats: filetype's matchers, refined and supplemented
# --------------------------------------------------------------------------- #

def _sniff_binary(head: bytes) -> Sniffed | None:
    """A head that is not text: our supplementary signatures, then filetype's."""
    found = _sniff_supplement(head)
    if found:
        return found
    match = filetype.match(head)
    if match is None:
        return None
    refine = _REFINERS.get(match.extension)
    if refine:                                     # None: filetype's loose signature did not hold
        return refine(head)
    mime, ext = _FILETYPE_NAMES.get(match.extension) or (normalize_mime(match.mime), match.extension)
    return _s(mime, ext)


def _sniff_anchored(head: bytes) -> Sniffed | None:
    """Signatures that hold on text heads too: `#!` scripts and PDF after a BOM/blank lines."""
    if head.startswith(b"#!"):
        found = sniff_shebang(head)
        if found:
            return _s(*found)
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"%PDF-"):
        return _s("application/pdf", "pdf")
    return None


def _sniff_unanchored(head: bytes) -> Sniffed | None:
    """Binary content without a signature at offset 0."""
    found = _sniff_frame_sync(head)
    if found:
        return found
    if len(head) >= 377 and head[0] == head[188] == head[376] == 0x47:
        return _s("video/mp2t", "ts")
    if 0 < head.find(b"%PDF-", 0, 1024):          # junk before the header, as readers tolerate
        return _s("application/pdf", "pdf")
    return None


_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MACHO = "application/x-mach-binary"
_PREFIXES = (                                      # anchored signatures filetype 1.2 lacks
    (b"PAR1", PARQUET, "parquet"),
    (b"\xfe\xed\xfa\xce", _MACHO, "macho"), (b"\xfe\xed\xfa\xcf", _MACHO, "macho"),
    (b"\xce\xfa\xed\xfe", _MACHO, "macho"), (b"\xcf\xfa\xed\xfe", _MACHO, "macho"),
    (b"\xff\x0a", "image/jxl", "jxl"), (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "image/jxl", "jxl"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "image/jp2", "jp2"),
)


def _sniff_supplement(h: bytes) -> Sniffed | None:
    """What filetype cannot see or cannot split: the whole ISO-BMFF brand family (it knows
    a few brands), OLE compound files by content, Java classes vs fat Mach-O, Parquet."""
    if h[4:8] == b"ftyp":
        return _sniff_ftyp(h)
    if h.startswith(_OLE):
        return _sniff_ole(h)
    if h.startswith(b"\xca\xfe\xba\xbe") and len(h) >= 8:
        if struct.unpack(">I", h[4:8])[0] < 45:   # fat Mach-O: arch count; Java: version >= 45
            return _s(_MACHO, "macho")
        return _s("application/java-vm", "class")
    for prefix, mime, ext in _PREFIXES:
        if h.startswith(prefix):
            return _s(mime, ext)
    return None


_FTYP_HEIC = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_FTYP_SIMPLE = {b"crx ": ("image/x-canon-cr3", "cr3"), b"qt  ": ("video/quicktime", "mov"),
                b"M4A ": ("audio/mp4", "m4a"), b"M4B ": ("audio/mp4", "m4a"), b"M4P ": ("audio/mp4", "m4a"),
                b"F4A ": ("audio/mp4", "m4a"), b"F4B ": ("audio/mp4", "m4a"), b"M4V ": ("video/x-m4v", "m4v"),
                b"M4VH": ("video/x-m4v", "m4v"), b"M4VP": ("video/x-m4v", "m4v")}


def _sniff_ftyp(head: bytes) -> Sniffed | None:
    if len(head) < 12:
        return None
    size = struct.unpack(">I", head[:4])[0]
    major = head[8:12]
    end = min(len(head), size if 16 <= size <= 4096 else 16)
    brands = {major} | {head[i:i + 4] for i in range(16, end - 3, 4)}
    image_box = major in (b"mif1", b"msf1")
    if major in (b"avif", b"avis") or (image_box and brands & {b"avif", b"avis"}):
        return _s("image/avif", "avif")
    if major in _FTYP_HEIC or (image_box and brands & _FTYP_HEIC):
        return _s("image/heic", "heic")
    if image_box or major == b"heif":
        return _s("image/heif", "heif")
    if major in _FTYP_SIMPLE:
        return _s(*_FTYP_SIMPLE[major])
    if b"M4A " in brands and major in (b"isom", b"mp42", b"mp41"):
        return _s("audio/mp4", "m4a")
    if major[:3] in (b"3gp", b"3ge", b"3gg", b"3g2"):
        return _s("video/3gpp2", "3g2") if major.startswith(b"3g2") else _s("video/3gpp", "3gp")
    if re.fullmatch(rb"[\x20-\x7e]{4}", major):
        return _s("video/mp4", "mp4")
    return None


def _sniff_ogg(head: bytes) -> Sniffed:
    start = 27 + head[26] if len(head) > 26 else 28
    packet = head[start:start + 8]
    if packet.startswith(b"\x80theora"):
        return _s("video/ogg", "ogv")
    if packet.startswith(b"OpusHead"):
        return _s("audio/ogg", "opus")
    return _s("audio/ogg", "ogg")


def _sniff_mpeg_audio(head: bytes) -> Sniffed | None:
    """filetype says MP3/AAC from two bytes: check the ID3 tag, or a second frame."""
    if not head.startswith(b"ID3"):
        return _sniff_frame_sync(head)
    if len(head) < 10 or head[3] not in (2, 3, 4):
        return None
    size = 0
    for b in head[6:10]:                           # syncsafe integer
        size = (size << 7) | (b & 0x7F)
    after = head[10 + size + (10 if head[5] & 0x10 else 0):][:4]
    if after == b"fLaC":
        return _s("audio/flac", "flac")
    if len(after) >= 2 and after[0] == 0xFF and (after[1] & 0xF6) == 0xF0:
        return _s("audio/aac", "aac")
    return _s("audio/mpeg", "mp3")


# MPEG audio frame sync, checked against a second frame when the head reaches it.
_MP3_BITRATES = {
    (3, 3): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (3, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (3, 1): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 3): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (2, 1): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mpeg_frame_len(h: bytes, pos: int) -> int | None:
    if pos + 4 > len(h) or h[pos] != 0xFF or (h[pos + 1] & 0xE0) != 0xE0:
        return None
    version = (h[pos + 1] >> 3) & 3                # 3 = MPEG1, 2 = MPEG2, 0 = MPEG2.5
    layer = (h[pos + 1] >> 1) & 3                  # 3 = I, 2 = II, 1 = III
    br_idx = h[pos + 2] >> 4
    sr_idx = (h[pos + 2] >> 2) & 3
    if version == 1 or layer == 0 or br_idx in (0, 15) or sr_idx == 3:
        return None
    bitrate = _MP3_BITRATES[(3 if version == 3 else 2, layer)][br_idx] * 1000
    rate = _MP3_RATES[version][sr_idx]
    pad = (h[pos + 2] >> 1) & 1
    if layer == 3:
        return (12 * bitrate // rate + pad) * 4
    if layer == 1 and version != 3:
        return 72 * bitrate // rate + pad
    return 144 * bitrate // rate + pad


def _adts_frame_len(h: bytes, pos: int) -> int | None:
    if pos + 7 > len(h) or h[pos] != 0xFF or (h[pos + 1] & 0xF6) != 0xF0:
        return None
    if ((h[pos + 2] >> 2) & 0xF) >= 13:
        return None
    length = ((h[pos + 3] & 0x03) << 11) | (h[pos + 4] << 3) | (h[pos + 5] >> 5)
    return length if length >= 7 else None


def _sniff_frame_sync(head: bytes) -> Sniffed | None:
    for measure, result in ((_adts_frame_len, ("audio/aac", "aac")), (_mpeg_frame_len, ("audio/mpeg", "mp3"))):
        n = measure(head, 0)
        if n is None:
            continue
        if n + 4 <= len(head) and measure(head, n) is None:
            continue                               # no second frame where it must be
        return _s(*result)
    return None


def _sniff_bmp(head: bytes) -> Sniffed | None:
    """filetype takes any "BM": also require a known DIB header size."""
    if len(head) >= 18 and struct.unpack("<I", head[14:18])[0] in {12, 16, 40, 52, 56, 64, 108, 124}:
        return _s("image/bmp", "bmp")
    return None


def _sniff_ico(head: bytes) -> Sniffed | None:
    """filetype takes any 00 00 01 00: also require a sane image count and reserved bytes."""
    if len(head) >= 22 and 0 < struct.unpack("<H", head[4:6])[0] <= 256 and head[9] == 0 \
            and struct.unpack("<H", head[10:12])[0] in (0, 1):
        return _s("image/vnd.microsoft.icon", "ico")
    return None


def _sniff_pe(head: bytes) -> Sniffed | None:
    """filetype's "MZ" covers PE images (exe/dll) and bare DOS programs alike."""
    if len(head) < 64:
        return None
    lfanew = struct.unpack("<I", head[0x3C:0x40])[0]
    if 0x40 <= lfanew <= len(head) - 24 and head[lfanew:lfanew + 4] == b"PE\x00\x00":
        characteristics = struct.unpack("<H", head[lfanew + 22:lfanew + 24])[0]
        return _s("application/vnd.microsoft.portable-executable", "dll" if characteristics & 0x2000 else "exe")
    return _s("application/x-dosexec", "exe")


_OLE_NAMES = (                                     # directory entry names, UTF-16LE
    ("WordDocument", "application/msword", "doc"), ("Workbook", "application/vnd.ms-excel", "xls"),
    ("Book\x00", "application/vnd.ms-excel", "xls"),
    ("PowerPoint Doc", "application/vnd.ms-powerpoint", "ppt"),
)
_MSI_CLSID = bytes.fromhex("84100c0000000000c000000000000046")


def _sniff_ole(head: bytes) -> Sniffed:
    """filetype knows Word/Excel/PowerPoint only by bytes at fixed offsets, and not MSI."""
    if _MSI_CLSID in head:
        return _s("application/x-msi", "msi")
    for name, mime, ext in _OLE_NAMES:
        if name.encode("utf-16-le") in head:
            return _s(mime, ext)
    return _s("application/x-ole-storage", "bin")


# ---- ZIP containers -------------------------------------------------------- #
# filetype spots OOXML only when word/, xl/ or ppt/ is among the first five entries and
# never tells macro-enabled files apart; the [Content_Types].xml part says both.

_ZIP_LOCAL = struct.Struct("<HH8xI4xHH")           # flags, method, csize, name len, extra len
_OOXML_MAIN_PARTS = (                              # content type of the main part
    (b"sheet.macroenabled.main", XLSM, "xlsm"), (b"document.macroenabled.main", DOCM, "docm"),
    (b"presentation.macroenabled.main", PPTM, "pptm"), (b"spreadsheetml.sheet.main", XLSX, "xlsx"),
    (b"wordprocessingml.document.main", DOCX, "docx"), (b"presentationml.presentation.main", PPTX, "pptx"),
)
_OOXML_ENTRIES = (                                 # when [Content_Types].xml is not in the head
    ("xl/vbaProject.bin", XLSM, "xlsm"), ("word/vbaProject.bin", DOCM, "docm"),
    ("ppt/vbaProject.bin", PPTM, "pptm"), ("xl/", XLSX, "xlsx"), ("word/", DOCX, "docx"),
    ("ppt/", PPTX, "pptx"),
)
_ZIP_MIMETYPES = {                                 # the stored `mimetype` entry of ODF / EPUB
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.presentation": "odp",
    "application/vnd.oasis.opendocument.graphics": "odg",
    "application/epub+zip": "epub",
}


def _sniff_zip(head: bytes) -> Sniffed:
    names, content_types = _zip_entries(head)
    for marker, mime, ext in _OOXML_MAIN_PARTS:
        if marker in content_types:
            return _s(mime, ext)
    for prefix, mime, ext in _OOXML_ENTRIES:
        if any(n.startswith(prefix) for n in names):
            return _s(mime, ext)
    if names[:1] == ["mimetype"]:
        declared = head[38:38 + 80].split(b"PK", 1)[0].decode("ascii", "replace").strip()
        if declared in _ZIP_MIMETYPES:
            return _s(declared, _ZIP_MIMETYPES[declared])
    return _s("application/zip", "zip")


def _zip_entries(head: bytes) -> tuple[list[str], bytes]:
    """Names of the local entries in the head, and the (lower-cased) start of [Content_Types].xml."""
    names: list[str] = []
    content_types = b""
    pos = head.find(b"PK\x03\x04")
    while 0 <= pos and pos + 30 <= len(head):
        flags, method, csize, nlen, xlen = _ZIP_LOCAL.unpack_from(head, pos + 6)
        raw_name = head[pos + 30:pos + 30 + nlen]
        if len(raw_name) == nlen and 0 < nlen < 1024:
            names.append(raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace"))
            if names[-1] == "[Content_Types].xml":
                start = pos + 30 + nlen + xlen
                content_types = _inflate_prefix(head[start:start + csize] if csize else head[start:], method)
        pos = head.find(b"PK\x03\x04", pos + 4)
    return names, content_types.lower()


def _inflate_prefix(data: bytes, method: int) -> bytes:
    if method == 0:
        return data[:65536]
    if method == 8:
        try:
            return zlib.decompressobj(-15).decompress(data, 65536)
        except zlib.error:
            return b""
    return b""


_REFINERS: dict[str, Callable[[bytes], Sniffed | None]] = {
    "exe": _sniff_pe, "ogg": _sniff_ogg, "mp3": _sniff_mpeg_audio, "aac": _sniff_mpeg_audio,
    "bmp": _sniff_bmp, "ico": _sniff_ico,
    **dict.fromkeys(("zip", "docx", "xlsx", "pptx", "odt", "ods", "odp", "epub"), _sniff_zip),
}
_FILETYPE_NAMES = {                                # filetype's naming -> ours, where they differ
    "apng": ("image/png", "png"), "tif": ("image/tiff", "tiff"), "midi": ("audio/midi", "mid"),
    "jpx": ("image/jp2", "jp2"), "woff": ("font/woff", "woff"), "woff2": ("font/woff2", "woff2"),
    "ttf": ("font/ttf", "ttf"), "otf": ("font/otf", "otf"),
    "eot": ("application/vnd.ms-fontobject", "eot"), "Z": ("application/x-compress", "z"),
}



def declared_contradicts(declared_mime: str | None, sniffed: Sniffed) -> bool:
    """Whether to refuse content whose declared type it contradicts, or quietly correct it.

    A harmless mislabel within one media family (PNG bytes declared `image/jpeg`, MP4 as
    `video/quicktime`) is corrected to the sniffed type. Anything else that conflicts is
    refused: an executable or HTML declared as an image, an SVG declared as a PNG (active
    content hiding behind a raster type), an image declared as a PDF.
    """
    if not declared_conflicts(declared_mime, sniffed):
        return False
    declared_top = normalize_mime(declared_mime).partition("/")[0]
    actual_top = normalize_mime(sniffed.mime).partition("/")[0]
    same_family = declared_top == actual_top and declared_top in ("image", "audio", "video")
    return not (same_family and is_inline_safe(sniffed.mime))
