"""Content sniffing: what a file *is*, decided from its first bytes only.

The file name and the type a client declares are never trusted: `sniff()` looks at
the head of the content (the caller passes up to `SNIFF_BYTES`). Binary formats are
identified by the `filetype` package's matchers, refined where they lump formats
together (OOXML/ODF inside ZIP, ISO-BMFF brands, Ogg codecs, PE vs DOS, MPEG audio) and
supplemented by the few signatures it lacks; text is told apart by `sniff_text`.

    sniffed = sniff(head)                  # Sniffed(mime="image/png", kind="image", ext="png")

What a declared type may say about sniffed content, and how it may be served, is
`storage_app.mime_policy` (re-exported here: callers import everything from this module).
"""
from __future__ import annotations

import logging
import re
import struct
import zlib
from dataclasses import dataclass
from collections.abc import Callable

import filetype

from storage_app.mime_policy import (
    DOCM, DOCX, EXECUTABLE_MIMES, HTML_MIMES, OCTET_STREAM, PARQUET, PPTM, PPTX, XLSM, XLSX,
    _GENERIC_DECLARED, declared_conflicts, declared_contradicts, is_executable, is_inline_safe, normalize_mime,
)
from storage_app.sniff_text import NDJSON, classify_text, decode_legacy_text, decode_text, sniff_shebang

logger = logging.getLogger("mediastore.sniff")
__all__ = [
    "as_declared",
    "SNIFF_BYTES", "Sniffed", "sniff", "is_inline_safe", "declared_conflicts", "declared_contradicts",
    "is_executable", "normalize_mime", "EXECUTABLE_MIMES", "HTML_MIMES", "OCTET_STREAM",
    "XLSX", "DOCX", "PPTX", "PARQUET", "NDJSON",
]

SNIFF_BYTES = 8192
"""How much of the head callers pass to `sniff()` (less only when the file is shorter)."""

KINDS = ("image", "video", "audio", "document", "other")


@dataclass(frozen=True)
class Sniffed:
    mime: str   # canonical, lower case, no parameters
    kind: str   # image | video | audio | document | other
    ext: str    # canonical extension without the dot; "bin" when unknown


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


def _kind_of(mime: str) -> str:
    top = mime.split("/", 1)[0]
    if top in ("image", "video", "audio"):
        return top
    if mime in _DOCUMENT_MIMES:
        return "document"
    return "other"


def _s(mime: str, ext: str) -> Sniffed:
    return Sniffed(mime=mime, kind=_kind_of(mime), ext=ext)


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
    found = _sniff_anchored(head)
    if found:
        return found
    text = decode_text(head, complete)
    if text is None:                               # filetype's signatures are trusted on binary heads only
        found = _sniff_binary(head) or _sniff_unanchored(head)
        if found:
            return found
        text = decode_legacy_text(head)
    return _s(*classify_text(text, complete)) if text is not None else None


def as_declared(declared_mime: str | None) -> Sniffed | None:
    """What content of the declared type would sniff as, to judge a type before any byte has
    arrived; None when the declaration names no concrete type (generic, `image/*`, garbage)."""
    declared = normalize_mime(declared_mime)
    top, _, sub = declared.partition("/")
    if declared in _GENERIC_DECLARED or not top or not sub or "*" in declared:
        return None
    return _s(declared, "bin")


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
_MSI_CLSID = bytes.fromhex("84100c0000000000c000000000000046")
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
    a few brands), MSI installers, Java classes vs fat Mach-O, Parquet, JPEG XL."""
    if h[4:8] == b"ftyp":
        return _sniff_ftyp(h)
    if h.startswith(_OLE) and _MSI_CLSID in h:     # filetype knows Word/Excel/PowerPoint only
        return _s("application/x-msi", "msi")
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


def _sniff_pe(head: bytes) -> Sniffed | None:
    """filetype's "MZ" covers PE images (exe/dll) and bare DOS programs alike."""
    if len(head) < 64:
        return None
    lfanew = struct.unpack("<I", head[0x3C:0x40])[0]
    if 0x40 <= lfanew <= len(head) - 24 and head[lfanew:lfanew + 4] == b"PE\x00\x00":
        characteristics = struct.unpack("<H", head[lfanew + 22:lfanew + 24])[0]
        return _s("application/vnd.microsoft.portable-executable", "dll" if characteristics & 0x2000 else "exe")
    return _s("application/x-dosexec", "exe")


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
    "bmp": _sniff_bmp,
    **dict.fromkeys(("zip", "docx", "xlsx", "pptx", "odt", "ods", "odp", "epub"), _sniff_zip),
}
_FILETYPE_NAMES = {                                # filetype's naming -> ours, where they differ
    "apng": ("image/png", "png"), "tif": ("image/tiff", "tiff"), "midi": ("audio/midi", "mid"),
    "jpx": ("image/jp2", "jp2"), "woff": ("font/woff", "woff"), "woff2": ("font/woff2", "woff2"),
    "ttf": ("font/ttf", "ttf"), "otf": ("font/otf", "otf"),
    "eot": ("application/vnd.ms-fontobject", "eot"), "Z": ("application/x-compress", "z"),
}
