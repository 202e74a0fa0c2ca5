"""Content sniffing: what a file *is*, decided from its first bytes only.

The file name and the type a client declares are never trusted: `sniff()` looks at
the head of the content (the caller passes up to `SNIFF_BYTES`), runs explicit,
conservative checks for the formats the service cares about, and only then falls
back to puremagic's (noisy) signature tables for other binary formats.

    sniffed = sniff(head)                  # Sniffed(mime="image/png", kind="image", ext="png")
    is_inline_safe(sniffed.mime)           # may it be served `Content-Disposition: inline`?
    declared_conflicts(declared, sniffed)  # does the client's Content-Type contradict it?
    is_executable(sniffed.mime)            # native binaries and `#!` scripts
"""
from __future__ import annotations

import codecs
import csv
import io
import itertools
import logging
import re
import struct
import zlib
from dataclasses import dataclass

import puremagic

logger = logging.getLogger("mediastore.sniff")
__all__ = [
    "SNIFF_BYTES", "Sniffed", "sniff", "is_inline_safe", "declared_conflicts",
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
NDJSON = "application/x-ndjson"

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
    # `#!` scripts
    "application/x-sh", "application/x-csh", "text/x-python", "application/x-perl",
    "application/x-ruby", "text/javascript", "application/x-httpd-php", "application/x-awk",
    "text/x-lua", "application/x-tcl", "application/x-powershell",
})

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
_ACTIVE_TEXT = HTML_MIMES | {"image/svg+xml"}


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
        found = _sniff_magic(head)
        if found is not None:
            return found
        text = _decode_text(head, complete)
        if text is not None:
            return _classify_text(text, complete)
        found = _sniff_binary_fallback(head)
        if found is not None:
            return found
        text = _decode_legacy_text(head)
        if text is not None:
            return _classify_text(text, complete)
    except Exception:  # noqa: BLE001 - hostile input must never turn into a 500
        logger.warning("content sniffing failed; treating as %s", OCTET_STREAM, exc_info=True)
    return UNKNOWN


def as_declared(declared_mime: str | None) -> Sniffed | None:
    """What content of the declared type would sniff as, to judge a type before any byte has
    arrived; None when the declaration names no concrete type (generic, `image/*`, garbage)."""
    declared = normalize_mime(declared_mime)
    top, _, sub = declared.partition("/")
    if declared in _GENERIC_DECLARED or not top or not sub or "*" in declared:
        return None
    return _s(declared, "bin")


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
    return mime in _SCRIPT_MIMES or mime.startswith("text/x-script.")


def _is_textual(mime: str) -> bool:
    top, _, sub = mime.partition("/")
    if top == "text" or sub.endswith(("+xml", "+json")):
        return True
    return mime in _SCRIPT_MIMES or mime in {
        "application/json", NDJSON, "application/xml", "application/x-yaml", "application/yaml",
        "application/toml", "application/sql", "application/x-sql", "application/rtf",
        "application/x-tex", "application/x-latex", "application/x-subrip", "application/graphql",
    } or mime.startswith("text/x-script.")


# --------------------------------------------------------------------------- #
# Binary signatures
# --------------------------------------------------------------------------- #

_SCRIPT_MIMES = frozenset({
    "application/x-sh", "application/x-csh", "text/x-python", "application/x-perl",
    "application/x-ruby", "text/javascript", "application/x-httpd-php", "application/x-awk",
    "text/x-lua", "application/x-tcl", "application/x-powershell",
})

_INTERPRETERS = {
    "sh": ("application/x-sh", "sh"), "bash": ("application/x-sh", "sh"),
    "dash": ("application/x-sh", "sh"), "zsh": ("application/x-sh", "sh"),
    "ksh": ("application/x-sh", "sh"), "ash": ("application/x-sh", "sh"),
    "busybox": ("application/x-sh", "sh"), "fish": ("application/x-sh", "sh"),
    "csh": ("application/x-csh", "csh"), "tcsh": ("application/x-csh", "csh"),
    "python": ("text/x-python", "py"), "pypy": ("text/x-python", "py"),
    "perl": ("application/x-perl", "pl"), "ruby": ("application/x-ruby", "rb"),
    "node": ("text/javascript", "js"), "nodejs": ("text/javascript", "js"),
    "deno": ("text/javascript", "js"), "bun": ("text/javascript", "js"),
    "php": ("application/x-httpd-php", "php"), "awk": ("application/x-awk", "awk"),
    "gawk": ("application/x-awk", "awk"), "lua": ("text/x-lua", "lua"),
    "tclsh": ("application/x-tcl", "tcl"), "wish": ("application/x-tcl", "tcl"),
    "pwsh": ("application/x-powershell", "ps1"),
}

_SHEBANG = re.compile(rb"#![ \t]*(/[^\s\x00]*)(?:[ \t]+([^\r\n\x00]*))?")


def _sniff_shebang(head: bytes) -> Sniffed | None:
    m = _SHEBANG.match(head)
    if not m:
        return None
    prog = m.group(1).rsplit(b"/", 1)[-1].decode("latin-1").lower()
    if prog == "env":
        args = [a for a in (m.group(2) or b"").decode("latin-1").split()
                if not a.startswith("-") and "=" not in a]
        prog = args[0].rsplit("/", 1)[-1].lower() if args else ""
    base = re.sub(r"[\d.]+$", "", prog)            # python3.11 -> python
    found = _INTERPRETERS.get(prog) or _INTERPRETERS.get(base)
    if found is None:                              # libmagic's naming for other interpreters
        name = re.sub(r"[^a-z0-9_+-]", "", base or prog)[:32] or "unknown"
        found = (f"text/x-script.{name}", "bin")
    return _s(found[0], found[1], "other")


_FTYP_HEIC = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}


def _sniff_ftyp(head: bytes) -> Sniffed | None:
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    size = struct.unpack(">I", head[:4])[0]
    major = head[8:12]
    end = min(len(head), size if 16 <= size <= 4096 else 16)
    brands = {major} | {head[i:i + 4] for i in range(16, end - 3, 4)}
    if major in (b"avif", b"avis") or (major in (b"mif1", b"msf1") and brands & {b"avif", b"avis"}):
        return _s("image/avif", "avif")
    if major in _FTYP_HEIC or (major in (b"mif1", b"msf1") and brands & _FTYP_HEIC):
        return _s("image/heic", "heic")
    if major in (b"mif1", b"msf1", b"heif"):
        return _s("image/heif", "heif")
    if major == b"crx ":
        return _s("image/x-canon-cr3", "cr3")
    if major == b"qt  ":
        return _s("video/quicktime", "mov")
    if major in (b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B ") or (b"M4A " in brands and major in (b"isom", b"mp42", b"mp41")):
        return _s("audio/mp4", "m4a")
    if major in (b"M4V ", b"M4VH", b"M4VP"):
        return _s("video/x-m4v", "m4v")
    if major.startswith(b"3gp") or major.startswith(b"3ge") or major.startswith(b"3gg"):
        return _s("video/3gpp", "3gp")
    if major.startswith(b"3g2"):
        return _s("video/3gpp2", "3g2")
    if re.fullmatch(rb"[\x20-\x7e]{4}", major):
        return _s("video/mp4", "mp4")
    return None


def _sniff_ebml(head: bytes) -> Sniffed:
    window = head[:512]
    if b"\x42\x82" in window and b"webm" in window:
        return _s("video/webm", "webm")
    return _s("video/x-matroska", "mkv")


def _sniff_ogg(head: bytes) -> Sniffed:
    start = 27 + head[26] if len(head) > 26 else 28
    packet = head[start:start + 8]
    if packet.startswith(b"\x80theora"):
        return _s("video/ogg", "ogv")
    if packet.startswith(b"OpusHead"):
        return _s("audio/ogg", "opus")
    return _s("audio/ogg", "ogg")


def _sniff_id3(head: bytes) -> Sniffed:
    if len(head) >= 10:
        size = 0
        for b in head[6:10]:
            size = (size << 7) | (b & 0x7F)
        end = 10 + size + (10 if head[5] & 0x10 else 0)
        after = head[end:end + 4]
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


_DIB_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}


def _sniff_bmp(head: bytes) -> Sniffed | None:
    if len(head) >= 18 and head[:2] == b"BM" and struct.unpack("<I", head[14:18])[0] in _DIB_SIZES:
        return _s("image/bmp", "bmp")
    return None


def _sniff_ico(head: bytes) -> Sniffed | None:
    if len(head) >= 22 and head[:4] == b"\x00\x00\x01\x00":
        count = struct.unpack("<H", head[4:6])[0]
        if 0 < count <= 256 and head[9] == 0 and struct.unpack("<H", head[10:12])[0] in (0, 1):
            return _s("image/vnd.microsoft.icon", "ico")
    return None


_OLE_NAMES = (
    ("W\x00o\x00r\x00d\x00D\x00o\x00c\x00u\x00m\x00e\x00n\x00t\x00", "application/msword", "doc"),
    ("W\x00o\x00r\x00k\x00b\x00o\x00o\x00k\x00", "application/vnd.ms-excel", "xls"),
    ("B\x00o\x00o\x00k\x00\x00\x00", "application/vnd.ms-excel", "xls"),
    ("P\x00o\x00w\x00e\x00r\x00P\x00o\x00i\x00n\x00t\x00 \x00D\x00o\x00c\x00", "application/vnd.ms-powerpoint", "ppt"),
)
_MSI_CLSID = bytes.fromhex("84100c0000000000c000000000000046")


def _sniff_ole(head: bytes) -> Sniffed:
    if _MSI_CLSID in head:
        return _s("application/x-msi", "msi", "other")
    for name, mime, ext in _OLE_NAMES:
        if name.encode("latin-1") in head:
            return _s(mime, ext)
    return _s("application/x-ole-storage", "bin", "other")


def _sniff_pe(head: bytes) -> Sniffed | None:
    if len(head) < 64:
        return None
    lfanew = struct.unpack("<I", head[0x3C:0x40])[0]
    if 0x40 <= lfanew <= len(head) - 24 and head[lfanew:lfanew + 4] == b"PE\x00\x00":
        characteristics = struct.unpack("<H", head[lfanew + 22:lfanew + 24])[0]
        ext = "dll" if characteristics & 0x2000 else "exe"
        return _s("application/vnd.microsoft.portable-executable", ext, "other")
    if _decode_text(head, complete=False) is None:  # "MZ..." prose is not a program
        return _s("application/x-dosexec", "exe", "other")
    return None


def _sniff_zip(head: bytes) -> Sniffed:
    names: list[str] = []
    content_types = b""
    first_mimetype: bytes | None = None
    pos = head.find(b"PK\x03\x04")
    while 0 <= pos and pos + 30 <= len(head):
        (flags, method, csize, nlen, xlen) = (
            struct.unpack("<H", head[pos + 6:pos + 8])[0], struct.unpack("<H", head[pos + 8:pos + 10])[0],
            struct.unpack("<I", head[pos + 18:pos + 22])[0], struct.unpack("<H", head[pos + 26:pos + 28])[0],
            struct.unpack("<H", head[pos + 28:pos + 30])[0])
        raw_name = head[pos + 30:pos + 30 + nlen]
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        if len(raw_name) == nlen and 0 < nlen < 1024:
            names.append(name)
            data_start = pos + 30 + nlen + xlen
            data = head[data_start:data_start + csize] if csize else head[data_start:]
            if name == "[Content_Types].xml":
                content_types = _inflate_prefix(data, method)
            elif name == "mimetype" and len(names) == 1 and method == 0:
                first_mimetype = data[:80]
        pos = head.find(b"PK\x03\x04", pos + 4)
    blob = content_types.lower()
    if b"macroenabled" in blob:
        if b"ms-excel" in blob:
            return _s(XLSM, "xlsm")
        if b"ms-word" in blob:
            return _s(DOCM, "docm")
        if b"ms-powerpoint" in blob:
            return _s(PPTM, "pptm")
    if b"spreadsheetml" in blob:
        return _s(XLSX, "xlsx")
    if b"wordprocessingml" in blob:
        return _s(DOCX, "docx")
    if b"presentationml" in blob:
        return _s(PPTX, "pptx")
    if any(n == "xl/vbaProject.bin" for n in names):
        return _s(XLSM, "xlsm")
    if any(n == "word/vbaProject.bin" for n in names):
        return _s(DOCM, "docm")
    if any(n == "ppt/vbaProject.bin" for n in names):
        return _s(PPTM, "pptm")
    for prefix, mime, ext in (("xl/", XLSX, "xlsx"), ("word/", DOCX, "docx"), ("ppt/", PPTX, "pptx")):
        if any(n.startswith(prefix) for n in names):
            return _s(mime, ext)
    if first_mimetype:
        declared = first_mimetype.decode("ascii", "replace").strip()
        if declared in _ZIP_MIMETYPES:
            return _s(declared, _ZIP_MIMETYPES[declared])
    return _s("application/zip", "zip", "other")


_ZIP_MIMETYPES = {                                 # the stored `mimetype` entry of ODF / EPUB
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.presentation": "odp",
    "application/vnd.oasis.opendocument.graphics": "odg",
    "application/epub+zip": "epub",
}


def _inflate_prefix(data: bytes, method: int) -> bytes:
    if method == 0:
        return data[:65536]
    if method == 8:
        try:
            return zlib.decompressobj(-15).decompress(data, 65536)
        except zlib.error:
            return b""
    return b""


_MACHO = {b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe"}


def _sniff_magic(head: bytes) -> Sniffed | None:
    """Explicit, anchored signatures (no guessing)."""
    h = head
    if h.startswith(b"\x89PNG\r\n\x1a\n"):
        return _s("image/png", "png")
    if h.startswith(b"\xff\xd8\xff"):
        return _s("image/jpeg", "jpg")
    if h.startswith((b"GIF87a", b"GIF89a")):
        return _s("image/gif", "gif")
    if h.startswith(b"RIFF") and len(h) >= 12:
        form = h[8:12]
        if form == b"WEBP":
            return _s("image/webp", "webp")
        if form == b"WAVE":
            return _s("audio/wav", "wav")
        if form == b"AVI ":
            return _s("video/x-msvideo", "avi")
    found = _sniff_ftyp(h)
    if found:
        return found
    if h.startswith(b"\x1a\x45\xdf\xa3"):
        return _sniff_ebml(h)
    if h.startswith(b"OggS\x00"):
        return _sniff_ogg(h)
    if h.startswith(b"fLaC"):
        return _s("audio/flac", "flac")
    if h.startswith(b"ID3") and len(h) >= 5 and h[3] in (2, 3, 4):
        return _sniff_id3(h)
    if h.startswith(b"FORM") and h[8:12] in (b"AIFF", b"AIFC"):
        return _s("audio/aiff", "aiff")
    if h.startswith(b"MThd\x00\x00\x00\x06"):
        return _s("audio/midi", "mid")
    if h.startswith(b"#!AMR"):
        return _s("audio/amr", "amr")
    if h.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"%PDF-"):
        return _s("application/pdf", "pdf")
    if h.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return _sniff_zip(h)
    if h.startswith(b"PAR1"):
        return _s(PARQUET, "parquet")
    if h.startswith(b"\x1f\x8b\x08"):
        return _s("application/gzip", "gz", "other")
    if h.startswith(b"BZh") and h[4:10] in (b"1AY&SY", b"\x17rE8P\x90"):
        return _s("application/x-bzip2", "bz2", "other")
    if h.startswith(b"\xfd7zXZ\x00"):
        return _s("application/x-xz", "xz", "other")
    if h.startswith(b"\x28\xb5\x2f\xfd"):
        return _s("application/zstd", "zst", "other")
    if h.startswith(b"7z\xbc\xaf\x27\x1c"):
        return _s("application/x-7z-compressed", "7z", "other")
    if h.startswith((b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01\x00")):
        return _s("application/vnd.rar", "rar", "other")
    if h[257:262] == b"ustar" and b"\x00" in h[:100]:
        return _s("application/x-tar", "tar", "other")
    if h.startswith(b"SQLite format 3\x00"):
        return _s("application/vnd.sqlite3", "sqlite", "other")
    if h.startswith(b"\x7fELF"):
        return _s("application/x-executable", "elf", "other")
    if h[:4] in _MACHO:
        return _s("application/x-mach-binary", "macho", "other")
    if h.startswith(b"\xca\xfe\xba\xbe") and len(h) >= 8:
        if struct.unpack(">I", h[4:8])[0] < 45:   # fat Mach-O: arch count; Java: version >= 45
            return _s("application/x-mach-binary", "macho", "other")
        return _s("application/java-vm", "class", "other")
    if h.startswith(b"MZ"):
        found = _sniff_pe(h)
        if found:
            return found
    if h.startswith(b"\x00asm\x01\x00\x00\x00"):
        return _s("application/wasm", "wasm", "other")
    if h.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return _sniff_ole(h)
    found = _sniff_bmp(h)
    if found:
        return found
    if h.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return _s("image/tiff", "tiff")
    found = _sniff_ico(h)
    if found:
        return found
    if h.startswith(b"8BPS\x00"):
        return _s("image/vnd.adobe.photoshop", "psd")
    if h.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return _s("image/jxl", "jxl")
    if h.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n"):
        return _s("image/jp2", "jp2")
    if h.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return _s("video/mpeg", "mpg")
    if h.startswith(b"FLV\x01"):
        return _s("video/x-flv", "flv")
    if h.startswith(b"#!"):
        return _sniff_shebang(h)
    return None


def _sniff_binary_fallback(head: bytes) -> Sniffed | None:
    """Content that is not text: frame-synced audio, then puremagic's tables."""
    found = _sniff_frame_sync(head)
    if found:
        return found
    if len(head) >= 377 and head[0] == head[188] == head[376] == 0x47:
        return _s("video/mp2t", "ts")
    pdf_at = head.find(b"%PDF-", 0, 1024)
    if pdf_at > 0:                                 # junk before the header, as readers tolerate
        return _s("application/pdf", "pdf")
    try:
        candidates = puremagic.magic_string(head)
    except Exception:  # noqa: BLE001 - PureError when nothing matches
        return None
    for c in candidates:
        if c.confidence < 0.4 or len(c.byte_match or b"") < 4:
            break                                  # sorted best first; the rest is noise
        mime = normalize_mime(c.mime_type)
        if not mime or mime == OCTET_STREAM or "/" not in mime:
            continue
        if mime.startswith("text/") or mime in HTML_MIMES or mime.endswith(("+xml", "/xml", "json")):
            continue                               # textual verdicts are ours to make
        ext = (c.extension or "").lstrip(".").lower() or "bin"
        return _s(mime, ext)
    return None


# --------------------------------------------------------------------------- #
# Text
# --------------------------------------------------------------------------- #

_BAD_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")


def _text_ok(text: str) -> bool:
    if "\x00" in text:
        return False
    bad = len(_BAD_CONTROLS.findall(text))
    return bad * 100 <= len(text)


def _decode_text(head: bytes, complete: bool) -> str | None:
    """UTF-8 (optional BOM) or BOM-marked UTF-16 text without NULs, else None."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) and not head.startswith(b"\xff\xfe\x00\x00"):
        codec = "utf-16"
    else:
        codec = "utf-8-sig"
    try:
        text = codecs.getincrementaldecoder(codec)().decode(head, final=complete)
    except (UnicodeDecodeError, ValueError):
        return None
    text = text.lstrip("\ufeff")
    return text if _text_ok(text) else None


def _decode_legacy_text(head: bytes) -> str | None:
    """Mostly-ASCII text in a legacy 8-bit encoding (Windows-1252 CSV exports)."""
    if b"\x00" in head:
        return None
    high = sum(1 for b in head if b >= 0x80)
    if high * 10 > len(head):
        return None
    text = head.decode("cp1252", "replace")
    return text if _text_ok(text) else None


_XML_PROLOG = re.compile(
    r"""\s*(?:<\?.*?\?>|<!--.*?-->|<!doctype(?!\s+html\b)[^>\[]*(?:\[[^\]]*\]\s*)?>)""",
    re.IGNORECASE | re.DOTALL,
)
_ROOT_TAG = re.compile(r"<([A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)(?=[\s/>])")
_WELL_FORMED_START = re.compile(
    r"""<[A-Za-z_][\w.:\-]*(?:\s+[A-Za-z_][\w.:\-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*\s*/?>""")
_HTML_ROOTS = frozenset({
    "html", "head", "body", "script", "iframe", "h1", "h2", "h3", "h4", "h5", "h6", "div",
    "font", "table", "a", "style", "title", "b", "br", "p", "meta", "link", "img", "form",
    "object", "embed", "frameset", "frame", "base", "noscript", "template", "span", "center",
    "input", "button", "textarea", "select", "video", "audio", "marquee", "applet", "math",
})
_HTML_NEAR_START = re.compile(r"<(?:!doctype\s+html|html|head|body|script|iframe)(?=[\s>/])", re.IGNORECASE)
_DOCTYPE_HTML = re.compile(r"<!doctype\s+html(?=[\s>])", re.IGNORECASE)


def _classify_markup(s: str, complete: bool) -> Sniffed | None:
    """`s` starts with `<`: SVG, HTML, XML, or None when it is not markup after all."""
    pos = 0
    has_decl = s.startswith("<?xml")
    while True:
        while pos < len(s) and s[pos].isspace():
            pos += 1
        if _DOCTYPE_HTML.match(s, pos):
            return _s("text/html", "html")
        m = _XML_PROLOG.match(s, pos)
        if not m:
            break
        pos = m.end()
    rest = s[pos:].lstrip()
    if not rest:
        # Only a prolog (or an unterminated comment/PI cut off by the head).
        return _s("application/xml", "xml") if has_decl else None
    root = _ROOT_TAG.match(rest)
    if not root:
        return _s("application/xml", "xml") if has_decl else None
    name = root.group(1)
    local = name.rsplit(":", 1)[-1].lower()
    if local == "svg":
        return _s("image/svg+xml", "svg")
    if local == "html" or name.lower() in _HTML_ROOTS:
        return _s("text/html", "html")
    if has_decl or _WELL_FORMED_START.match(rest) or (not complete and ">" not in rest):
        return _s("application/xml", "xml")
    return None


def _classify_text(text: str, complete: bool) -> Sniffed:
    s = text.lstrip()
    if s.startswith("<"):
        found = _classify_markup(s, complete)
        if found:
            return found
    if s[:1] in ("{", "["):
        found = _classify_json(s, complete)
        if found:
            return found
    if _HTML_NEAR_START.search(text[:1024]):
        return _s("text/html", "html")
    if s.startswith("{\\rtf"):
        return _s("application/rtf", "rtf")
    if s.startswith("%!PS"):
        return _s("application/postscript", "ps")
    found = _classify_delimited(text, complete)
    if found:
        return found
    return _s("text/plain", "txt")


# ---- JSON ------------------------------------------------------------------ #

_JSON_WS = " \t\r\n"
_JSON_STRING_BODY = re.compile(r'(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*')
_JSON_PARTIAL_ESCAPE = re.compile(r'\\(?:u[0-9a-fA-F]{0,3})?')
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_JSON_NUMBER_CHARS = re.compile(r"[-+0-9.eE]*")
_JSON_NUMBER_PREFIX = re.compile(r"-?(?:0|[1-9]\d*)?(?:\.\d*)?(?:[eE][+-]?\d*)?")

_COMPLETE, _PREFIX, _INVALID = "complete", "prefix", "invalid"


def _scan_json(s: str, i: int = 0) -> tuple[str, int]:
    """Validate one JSON object/array starting at `s[i]` (after whitespace).

    Returns (_COMPLETE, end) when a whole value was read, (_PREFIX, len(s)) when the
    input ends inside a value that is valid so far, (_INVALID, i) otherwise.
    """
    n = len(s)
    stack: list[str] = []
    state = "top"                                  # top | value | value_or_close | key | key_or_close | colon | next
    while True:
        while i < n and s[i] in _JSON_WS:
            i += 1
        if i >= n:
            return (_PREFIX, n) if stack else (_INVALID, i)
        c = s[i]
        if state in ("top", "value", "value_or_close"):
            if state == "value_or_close" and c == "]":
                stack.pop()
                i += 1
            elif c == "{":
                stack.append("{")
                i += 1
                state = "key_or_close"
                continue
            elif c == "[":
                stack.append("[")
                i += 1
                state = "value_or_close"
                continue
            elif state == "top":
                return _INVALID, i
            elif c == '"':
                r, i = _scan_json_string(s, i)
                if r != _COMPLETE:
                    return r, i
            elif c == "-" or c.isdigit():
                m = _JSON_NUMBER_CHARS.match(s, i)
                token = m.group()
                if m.end() >= n:
                    if not _JSON_NUMBER_PREFIX.fullmatch(token):
                        return _INVALID, i
                    return _PREFIX, n
                if not _JSON_NUMBER.fullmatch(token):
                    return _INVALID, i
                i = m.end()
            elif c in "tfn":
                for lit in ("true", "false", "null"):
                    chunk = s[i:i + len(lit)]
                    if chunk == lit:
                        i += len(lit)
                        break
                    if i + len(chunk) == n and lit.startswith(chunk):
                        return _PREFIX, n
                else:
                    return _INVALID, i
            else:
                return _INVALID, i
        elif state in ("key", "key_or_close"):
            if state == "key_or_close" and c == "}":
                stack.pop()
                i += 1
            elif c == '"':
                r, i = _scan_json_string(s, i)
                if r != _COMPLETE:
                    return r, i
                state = "colon"
                continue
            else:
                return _INVALID, i
        elif state == "colon":
            if c != ":":
                return _INVALID, i
            i += 1
            state = "value"
            continue
        elif state == "next":
            if c == ",":
                i += 1
                state = "key" if stack[-1] == "{" else "value"
                continue
            if (c == "}" and stack[-1] == "{") or (c == "]" and stack[-1] == "["):
                stack.pop()
                i += 1
            else:
                return _INVALID, i
        # A value (or a container) just ended.
        if not stack:
            return _COMPLETE, i
        state = "next"


def _scan_json_string(s: str, i: int) -> tuple[str, int]:
    m = _JSON_STRING_BODY.match(s, i + 1)
    j = m.end()
    if j >= len(s):
        return _PREFIX, len(s)
    if s[j] == '"':
        return _COMPLETE, j + 1
    if s[j] == "\\" and _JSON_PARTIAL_ESCAPE.fullmatch(s, j):
        return _PREFIX, len(s)
    return _INVALID, j


def _classify_json(s: str, complete: bool) -> Sniffed | None:
    status, end = _scan_json(s)
    if status == _PREFIX:
        return None if complete else _s("application/json", "json")
    if status != _COMPLETE:
        return None
    if not s[end:].strip():
        return _s("application/json", "json")
    # JSON Lines: one complete object/array per line.
    lines = [ln for ln in s.splitlines() if ln.strip()]
    good = 0
    for idx, line in enumerate(lines):
        line = line.strip()
        status, end = _scan_json(line)
        if status == _COMPLETE and end == len(line):
            good += 1
        elif status == _PREFIX and idx == len(lines) - 1 and not complete:
            pass
        else:
            return None
    return _s(NDJSON, "jsonl") if good >= 2 else None


# ---- CSV / TSV ------------------------------------------------------------- #

_MAX_ROWS = 50


def _classify_delimited(text: str, complete: bool) -> Sniffed | None:
    body = text
    if not complete:
        cut = max(body.rfind("\n"), body.rfind("\r"))
        if cut <= 0:
            return None
        body = body[:cut + 1]
    if "\n" not in body.strip("\r\n") and "\r" not in body.strip("\r\n"):
        return None                                # a single line is not a table
    best: tuple[int, str] | None = None
    for delim in ("\t", ",", ";", "|"):
        if delim not in body:
            continue
        try:
            reader = csv.reader(io.StringIO(body, newline=""), delimiter=delim)
            rows = [row for row in itertools.islice(reader, _MAX_ROWS * 4)
                    if row and any(cell.strip() for cell in row)][:_MAX_ROWS]
        except csv.Error:
            continue
        if len(rows) < 2:
            continue
        counts = [len(r) for r in rows]
        check = counts if complete or len(counts) < 3 else counts[:-1]
        width = check[0]
        if width < 2 or any(c != width for c in check):
            continue
        if delim == "\t":
            return _s("text/tab-separated-values", "tsv")
        if _looks_like_prose(rows, body, delim):
            continue
        if best is None or width > best[0]:
            best = (width, delim)
    if best:
        return _s("text/csv", "csv")
    return None


def _looks_like_prose(rows: list[list[str]], body: str, delim: str) -> bool:
    """Sentences that happen to hold one comma per line are not a table: wordy cells
    and a space after (almost) every delimiter, as in written text."""
    cells = [cell for row in rows[1:] for cell in row]
    wordy = sum(1 for cell in cells if cell.strip().count(" ") >= 3)
    occurrences = body.count(delim)
    spaced = body.count(delim + " ")
    return bool(cells) and wordy * 2 > len(cells) and occurrences > 0 and spaced * 5 >= occurrences * 4


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
