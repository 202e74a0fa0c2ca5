"""MIME vocabulary and declared-type policy: what a client's Content-Type may say about
content that `storage_app.sniff` identified, and how such content may be served.

    normalize_mime("image/JPG; q=1")       # "image/jpeg"
    is_inline_safe(sniffed.mime)           # may it be served `Content-Disposition: inline`?
    declared_conflicts(declared, sniffed)  # does the client's Content-Type contradict it?
    declared_contradicts(declared, sniffed)  # ... badly enough to refuse the upload?
    is_executable(sniffed.mime)            # native binaries and `#!` scripts

Everything here is re-exported by `storage_app.sniff`, which callers import.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from storage_app.sniff_text import NDJSON, SCRIPT_MIMES

if TYPE_CHECKING:
    from storage_app.sniff import Sniffed

__all__ = [
    "normalize_mime", "is_inline_safe", "is_executable", "declared_conflicts", "declared_contradicts",
    "EXECUTABLE_MIMES", "HTML_MIMES", "OCTET_STREAM", "XLSX", "DOCX", "PPTX", "XLSM", "DOCM", "PPTM",
    "PARQUET", "NDJSON",
]

OCTET_STREAM = "application/octet-stream"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSM = "application/vnd.ms-excel.sheet.macroenabled.12"
DOCM = "application/vnd.ms-word.document.macroenabled.12"
PPTM = "application/vnd.ms-powerpoint.presentation.macroenabled.12"
PARQUET = "application/vnd.apache.parquet"

# Aliases seen in the wild (browsers, OS tables, filetype) -> canonical type.
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


def normalize_mime(mime: str | None) -> str:
    """Lower-case, drop parameters (`; charset=...`), map well-known aliases."""
    if not mime:
        return ""
    base = str(mime).split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)

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
