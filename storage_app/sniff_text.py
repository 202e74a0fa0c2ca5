"""The text half of content sniffing: rules no signature library has.

`storage_app.sniff` hands over a head that decodes as text (or, failing every binary
signature, as legacy 8-bit text). Here it is told apart: `#!` scripts, markup (SVG and
HTML are active content and must be recognised however they hide, XML is not), JSON and
JSON Lines (valid prefixes count when the head is truncated), CSV/TSV, RTF, PostScript,
and plain text. Every answer is a `(mime, ext)` pair; the caller adds the kind.
"""
from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import re

__all__ = ["NDJSON", "SCRIPT_MIMES", "classify_text", "decode_legacy_text", "decode_text", "sniff_shebang"]

NDJSON = "application/x-ndjson"
Found = tuple[str, str]                            # (canonical mime, extension)

# --------------------------------------------------------------------------- #
# Decoding
# --------------------------------------------------------------------------- #

_BAD_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
_ASCII = bytes(range(0x80))


def _text_ok(text: str) -> bool:
    if "\x00" in text:
        return False
    return len(_BAD_CONTROLS.findall(text)) * 100 <= len(text)


def decode_text(head: bytes, complete: bool) -> str | None:
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


def decode_legacy_text(head: bytes) -> str | None:
    """Mostly-ASCII text in a legacy 8-bit encoding (Windows-1252 CSV exports)."""
    if b"\x00" in head:
        return None
    high = len(head.translate(None, _ASCII))       # counted in C: this runs on every unknown binary
    if high * 10 > len(head):
        return None
    text = head.decode("cp1252", "replace")
    return text if _text_ok(text) else None


# --------------------------------------------------------------------------- #
# Scripts
# --------------------------------------------------------------------------- #

_SH, _CSH, _PY, _JS, _AWK, _TCL = (
    ("application/x-sh", "sh"), ("application/x-csh", "csh"), ("text/x-python", "py"),
    ("text/javascript", "js"), ("application/x-awk", "awk"), ("application/x-tcl", "tcl"))
_INTERPRETERS: dict[str, Found] = {
    "sh": _SH, "bash": _SH, "dash": _SH, "zsh": _SH, "ksh": _SH, "ash": _SH, "busybox": _SH,
    "fish": _SH, "csh": _CSH, "tcsh": _CSH, "python": _PY, "pypy": _PY,
    "perl": ("application/x-perl", "pl"), "ruby": ("application/x-ruby", "rb"),
    "node": _JS, "nodejs": _JS, "deno": _JS, "bun": _JS, "php": ("application/x-httpd-php", "php"),
    "awk": _AWK, "gawk": _AWK, "lua": ("text/x-lua", "lua"), "tclsh": _TCL, "wish": _TCL,
    "pwsh": ("application/x-powershell", "ps1"),
}
SCRIPT_MIMES = frozenset(mime for mime, _ in _INTERPRETERS.values())

_SHEBANG = re.compile(rb"#![ \t]*(/[^\s\x00]*)(?:[ \t]+([^\r\n\x00]*))?")


def sniff_shebang(head: bytes) -> Found | None:
    """`#!/path/interpreter` (or `#!/usr/bin/env [-S] interpreter`) -> its script type."""
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
    return found


# --------------------------------------------------------------------------- #
# Markup, JSON, delimited text
# --------------------------------------------------------------------------- #

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


def _classify_markup(s: str, complete: bool) -> Found | None:
    """`s` starts with `<`: SVG, HTML, XML, or None when it is not markup after all."""
    pos = 0
    has_decl = s.startswith("<?xml")
    while True:
        while pos < len(s) and s[pos].isspace():
            pos += 1
        if _DOCTYPE_HTML.match(s, pos):
            return ("text/html", "html")
        m = _XML_PROLOG.match(s, pos)
        if not m:
            break
        pos = m.end()
    rest = s[pos:].lstrip()
    if not rest:
        # Only a prolog (or an unterminated comment/PI cut off by the head).
        return ("application/xml", "xml") if has_decl else None
    root = _ROOT_TAG.match(rest)
    if not root:
        return ("application/xml", "xml") if has_decl else None
    name = root.group(1)
    local = name.rsplit(":", 1)[-1].lower()
    if local == "svg":
        return ("image/svg+xml", "svg")
    if local == "html" or name.lower() in _HTML_ROOTS:
        return ("text/html", "html")
    if has_decl or _WELL_FORMED_START.match(rest) or (not complete and ">" not in rest):
        return ("application/xml", "xml")
    return None


def classify_text(text: str, complete: bool) -> Found:
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
        return ("text/html", "html")
    if s.startswith("{\\rtf"):
        return ("application/rtf", "rtf")
    if s.startswith("%!PS"):
        return ("application/postscript", "ps")
    found = _classify_delimited(text, complete)
    if found:
        return found
    return ("text/plain", "txt")


# ---- JSON ------------------------------------------------------------------ #
# The C decoder validates; when it fails, the error says whether the input merely ran
# out (a head cut inside a value still counts as JSON when the file goes on).

_COMPLETE, _PREFIX, _INVALID = "complete", "prefix", "invalid"
_PARTIAL_ESCAPES = re.compile(r"u[0-9a-fA-F]{0,4}(?:\\(?:u[0-9a-fA-F]{0,4})?)*")
_SCALAR_RUN = re.compile(r"[-+.\w]*\Z")
_SCALAR_PREFIX = re.compile(
    r"(?=[-\d])-?(?:0|[1-9]\d*)?(?:\.\d*)?(?:[eE][+-]?\d*)?|t(?:r(?:ue?)?)?|f(?:a(?:l(?:se?)?)?)?|n(?:u(?:ll?)?)?")


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def _scan_json(s: str) -> tuple[str, int]:
    """One JSON object/array at the start of `s`: (_COMPLETE, end), (_PREFIX, len) or (_INVALID, 0)."""
    if s[:1] not in ("{", "["):
        return _INVALID, 0
    try:
        return _COMPLETE, _DECODER.raw_decode(s)[1]
    except json.JSONDecodeError as err:
        return (_PREFIX, len(s)) if _ran_out(s, err) else (_INVALID, 0)
    except (ValueError, RecursionError):           # NaN/Infinity; nesting deeper than Python's stack
        return _INVALID, 0


def _ran_out(s: str, err: json.JSONDecodeError) -> bool:
    if err.pos >= len(s) or err.msg.startswith("Unterminated string"):
        return True
    if err.msg.startswith("Invalid \\uXXXX"):      # cut inside a \u escape
        return _PARTIAL_ESCAPES.fullmatch(s, err.pos) is not None
    run = _SCALAR_RUN.search(s)                    # a number or literal cut at the end
    inside = run.start() < err.pos or (run.start() == err.pos and err.msg == "Expecting value")
    return inside and _SCALAR_PREFIX.fullmatch(run.group()) is not None


def _classify_json(s: str, complete: bool) -> Found | None:
    status, end = _scan_json(s)
    if status == _PREFIX:
        return None if complete else ("application/json", "json")
    if status != _COMPLETE:
        return None
    if not s[end:].strip():
        return ("application/json", "json")
    # JSON Lines: one complete object/array per line (the last one may be cut by the head).
    lines = [ln.strip() for ln in s.splitlines() if ln.strip()]
    good = 0
    for idx, line in enumerate(lines):
        status, end = _scan_json(line)
        if status == _COMPLETE and end == len(line):
            good += 1
        elif not (status == _PREFIX and idx == len(lines) - 1 and not complete):
            return None
    return (NDJSON, "jsonl") if good >= 2 else None


# ---- CSV / TSV ------------------------------------------------------------- #

_MAX_ROWS = 50


def _classify_delimited(text: str, complete: bool) -> Found | None:
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
            return ("text/tab-separated-values", "tsv")
        if _looks_like_prose(rows, body, delim):
            continue
        if best is None or width > best[0]:
            best = (width, delim)
    if best:
        return ("text/csv", "csv")
    return None


def _looks_like_prose(rows: list[list[str]], body: str, delim: str) -> bool:
    """Sentences that happen to hold one comma per line are not a table: wordy cells
    and a space after (almost) every delimiter, as in written text."""
    cells = [cell for row in rows[1:] for cell in row]
    wordy = sum(1 for cell in cells if cell.strip().count(" ") >= 3)
    occurrences = body.count(delim)
    spaced = body.count(delim + " ")
    return bool(cells) and wordy * 2 > len(cells) and occurrences > 0 and spaced * 5 >= occurrences * 4
