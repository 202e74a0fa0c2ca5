"""Multipart uploads streamed straight into the storage layer: no temporary file, no second copy.

Django's upload handlers are push-based: the parser feeds every chunk to a handler, and the
file is only handed to the view once the whole body has been read (spooled to a temporary
file, then copied again into storage). `open_upload_form` pulls instead: it reads the body
part by part, keeps the small fields, and stops at the file part, which the view passes to a
service as a plain file-like. Every `read()` of it reads the request body as the client sends
it, so the storage layer hashes, sniffs, counts and writes each chunk once, and a body over
the limit is refused as soon as the limit is passed.

Fields may come after the file part (`curl -F file=@x.png -F user_id=bob`). The service
starts with the fields seen before the file; `UploadForm.finish()` reads the rest of the
body once the file part has been consumed, and the caller applies those late fields before
the file is activated (see `media_app.services.media_store_stream(late=...)`).

    form = open_upload_form(request._request)        # before anything touches request.data
    early = form.fields                               # fields before the file part
    upload = form.file                                # None when the body has no file part
    ...service reads upload to its end...
    everything = form.finish()                        # all fields, late ones included
"""
from __future__ import annotations

import base64
import binascii
import codecs
import html
import sys
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest
from django.utils.http import parse_header_parameters

from config.errors import InvalidRequest, LengthRequired, RequestTimeout, TooLarge, UnsupportedMediaType

READ_BLOCK = 1024 * 1024  # one recv-sized read of the body at a time
MAX_PART_HEADER_BYTES = 16 * 1024
_BOUNDARY_CHARS = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ")


class MalformedMultipart(InvalidRequest):
    code = "parse_error"
    message = "The multipart body is malformed."


class UploadInterrupted(InvalidRequest):
    code = "upload_interrupted"
    message = "The request body ended before the upload was complete."


@dataclass
class Part:
    name: str
    filename: str | None  # None for a plain field
    content_type: str
    transfer_encoding: str


class MultipartReader:
    """A pull parser for one `multipart/form-data` body (RFC 7578), read from `source`.

    `next_part()` skips whatever is left of the current part and answers the next part's
    headers; `read(n)` answers up to `n` bytes of the current part's body, b"" at its end.
    The body is read in `READ_BLOCK` pieces and part bodies are answered as memoryviews of
    those pieces, never copied: at most two pieces are held at a time, whatever the size
    of the parts.
    """

    def __init__(self, source, boundary: bytes, length: int | None) -> None:  # noqa: ANN001 - a readable
        self._source = source
        self._delimiter = b"\r\n--" + boundary
        self._margin = len(self._delimiter) - 1  # a delimiter cut by the end of a piece starts in its last bytes
        self._set(b"\r\n")  # so a boundary at the very start matches the delimiter too
        self._next: bytes | None = None  # the piece after the buffer, read ahead at a piece's end
        self._length = length
        self._received = 0
        self._eof = False
        self._in_body = False  # inside a part's body
        self._done = False  # past the closing delimiter

    @property
    def unread(self) -> int:
        """Bytes of the body not yet handed out: an upper bound for the rest of the current part
        (unbounded for a chunked body, whose length nobody declared)."""
        if self._length is None:
            return sys.maxsize
        return max(self._length - self._received, 0) + self._available() + len(self._next or b"")

    # -- the source ------------------------------------------------------------------------
    def _set(self, buf: bytes) -> None:
        self._buf, self._view, self._pos = buf, memoryview(buf), 0

    def _available(self) -> int:
        return len(self._buf) - self._pos

    def _piece(self) -> bytes:
        """The next piece of the body (b"" at its end)."""
        if self._next is not None:
            data, self._next = self._next, None
            return data
        if self._eof:
            return b""
        try:
            data = self._source.read(READ_BLOCK)
        except OSError as exc:  # a client that went away mid-body; not a storage failure
            if isinstance(exc, TimeoutError) or isinstance(exc.__cause__, TimeoutError):
                raise RequestTimeout() from exc  # a socket timeout (config.bodyguard answers most first)
            raise UploadInterrupted() from exc
        self._received += len(data)
        self._eof = not data
        return data

    def _fill(self) -> bool:
        """Append the next piece to what is left of the buffer; False at the end of the body."""
        data = self._piece()
        if not data:
            return False
        rest = self._buf[self._pos:]
        self._set(rest + data if rest else data)
        return True

    # -- part bodies -----------------------------------------------------------------------
    def read(self, n: int = -1) -> memoryview | bytes:
        """Up to `n` bytes of the current part's body (at least one unless it has ended)."""
        if not self._in_body:
            return b""
        n = n if n and n > 0 else READ_BLOCK
        while True:
            buf, pos = self._buf, self._pos
            found = buf.find(self._delimiter, pos, pos + n + self._margin)
            if found >= 0:  # the part ends within reach
                self._pos = pos + min(found - pos, n)
                self._in_body = self._pos != found
                return self._view[pos:self._pos]
            safe = len(buf) - self._margin  # from here on, a delimiter could be cut off
            if safe > pos:
                self._pos = min(safe, pos + n)
                return self._view[pos:self._pos]
            tail = self._next_piece_after_tail(n)
            if tail is not None:
                return tail

    def _next_piece_after_tail(self, n: int) -> bytes | None:
        """At a piece's last few bytes: move on to the next piece without copying it.

        Answers the tail, to be read on its own (a short read), when no delimiter starts in
        it; otherwise, and for tiny reads, joins tail and piece (once per part end) and
        answers None: look again.
        """
        tail = self._buf[self._pos:]
        ahead = self._piece()
        while len(ahead) < len(self._delimiter) and (more := self._piece()):
            ahead += more  # only when the body arrives in tiny pieces
        if not ahead:
            raise UploadInterrupted("The multipart body ends before its closing boundary.")
        self._next = ahead
        joint = tail + self._next[:len(self._delimiter)]
        if not tail or (len(tail) <= n and not 0 <= joint.find(self._delimiter) < len(tail)):
            self._set(self._piece())
            return tail or None
        self._fill()
        return None

    def _skip_body(self) -> None:
        while self._in_body:
            self.read(READ_BLOCK)

    # -- part headers ----------------------------------------------------------------------
    def next_part(self) -> Part | None:
        """The headers of the next part; None after the closing boundary."""
        if self._done:
            return None
        self._skip_body()
        self._find_delimiter()
        while self._available() < 2 and self._fill():
            pass
        if self._buf.startswith(b"--", self._pos):  # the closing delimiter
            self._done = True
            self._drain()
            return None
        headers = self._read_headers()
        self._in_body = True
        return _part_of(headers)

    def _find_delimiter(self) -> None:
        """Consume everything up to and including the next delimiter (the preamble at first)."""
        while True:
            found = self._buf.find(self._delimiter, self._pos)
            if found >= 0:
                self._pos = found + len(self._delimiter)
                return
            self._pos = max(self._pos, len(self._buf) - self._margin)
            if not self._fill():
                raise MalformedMultipart("The multipart body has no closing boundary.")

    def _read_headers(self) -> bytes:
        """The header block after a delimiter line (transport padding and CRLF skipped)."""
        while True:
            end = self._buf.find(b"\r\n\r\n", self._pos)
            if end >= 0:
                break
            if self._available() > MAX_PART_HEADER_BYTES:
                raise MalformedMultipart("A multipart part has too long a header.")
            if not self._fill():
                raise MalformedMultipart("The multipart body ends inside a part's header.")
        line_end = self._buf.find(b"\r\n", self._pos)
        if self._buf[self._pos:line_end].strip(b" \t"):  # the delimiter line must end here
            raise MalformedMultipart("A multipart boundary is followed by text.")
        if line_end == end:  # no headers at all
            self._pos = end + 4
            return b""
        headers = self._buf[line_end + 2:end]
        self._pos = end + 4
        return headers

    def _drain(self) -> None:
        """Read the epilogue, so the whole body has been consumed."""
        self._pos = len(self._buf)
        while self._fill():
            self._pos = len(self._buf)


def _part_of(block: bytes) -> Part:
    name, filename, content_type, encoding = None, None, "", ""
    for line in block.split(b"\r\n"):
        key, _, value = line.decode("utf-8", "replace").partition(":")
        key = key.strip().lower()
        if key == "content-disposition":
            try:
                _, params = parse_header_parameters(value.strip())
            except ValueError:
                raise MalformedMultipart("A multipart part has a malformed Content-Disposition.") from None
            name, filename = params.get("name"), params.get("filename")
        elif key == "content-type":
            content_type = value.strip()
        elif key == "content-transfer-encoding":
            encoding = value.strip().lower()
    if name is None:
        raise MalformedMultipart("A multipart part has no name.")
    return Part(name=name.strip(), filename=sanitize_file_name(filename) if filename else None,
                content_type=content_type, transfer_encoding=encoding)


def sanitize_file_name(name: str) -> str | None:
    """Django's rules: no directories, no control characters, not `.` or `..`."""
    name = html.unescape(name).rsplit("/")[-1].rsplit("\\")[-1]
    name = "".join(c for c in name if c.isprintable())
    return None if name in ("", ".", "..") else name


class FilePart:
    """The file part of a multipart body, as the file-like the storage layer reads from."""

    def __init__(self, reader: MultipartReader, part: Part) -> None:
        self._reader = reader
        self.name = part.filename or ""
        self.content_type = part.content_type
        # Everything left of the body: the file cannot be larger (what the quota reserves).
        self.bound = reader.unread

    def read(self, n: int = -1) -> memoryview | bytes:
        return self._reader.read(n)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


class _FieldBudget:
    """Django's limits on form fields (how many, how many bytes in all), and their decoding."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.count = 0
        self.bytes = 0

    def value(self, reader: MultipartReader, part: Part) -> str:
        self.count += 1
        most = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        if most is not None and self.count > most:
            raise InvalidRequest("Too many form fields.", code="too_many_fields")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        chunks = []
        while chunk := reader.read(READ_BLOCK):
            self.bytes += len(chunk)
            if limit is not None and self.bytes > limit:
                raise TooLarge("The form fields are too large.", code="fields_too_large")
            chunks.append(chunk)
        value = b"".join(chunks)
        if part.transfer_encoding == "base64":
            try:
                value = base64.b64decode(value)
            except binascii.Error:
                pass  # as Django does: keep the raw value
        return value.decode(self._charset(part), "replace")

    def _charset(self, part: Part) -> str:
        try:
            charset = parse_header_parameters(part.content_type)[1].get("charset") or self.encoding
            codecs.lookup(charset)
        except (ValueError, LookupError):
            return self.encoding
        return charset


@dataclass
class UploadForm:
    """A multipart form whose file part the caller reads from the request body."""

    fields: dict[str, str]  # the fields before the file part (the last value of a repeated name wins)
    file: FilePart | UploadedFile | None  # an UploadedFile when the body had already been parsed
    _reader: MultipartReader | None = None
    _budget: _FieldBudget | None = None
    _file_field: str = "file"
    _late: dict[str, str] = field(default_factory=dict)

    @property
    def bound(self) -> int:
        """The file has at most this many bytes (what is left of the body, or a parsed file's size)."""
        if isinstance(self.file, FilePart):
            return self.file.bound
        return self.file.size if self.file is not None else 0

    def finish(self) -> dict[str, str]:
        """Read the rest of the body; answer every field, late ones included (last value wins).

        Call once the file part has been read to its end. A second file in the file field is
        refused: one request stores one file.
        """
        if self._reader is not None:
            while (part := self._reader.next_part()) is not None:
                if part.filename is None:
                    self._late[part.name] = self._budget.value(self._reader, part)
                elif part.name == self._file_field:
                    raise InvalidRequest("Send one file per request.", code="multiple_files", param=self._file_field)
                # Another file field is read past, as a parsed form's unknown fields are ignored.
            self._reader = None
        return {**self.fields, **self._late}

    @property
    def late_fields(self) -> dict[str, str]:
        """The fields that came after the file part (once `finish()` has read them)."""
        return dict(self._late)


def open_upload_form(request: HttpRequest, *, file_field: str = "file", source: BinaryIO | None = None) -> UploadForm:
    """The fields before the file part and the file part itself, read from the body as it arrives.

    Call before anything reads `request.POST`/`request.data`. When the body was already
    parsed (a session-authenticated request whose CSRF check read the form), the parsed
    form is used as it is. `source` is the body to read (default: `request_body(request)`).
    """
    if request._read_started or hasattr(request, "_files"):
        return _parsed_form(request, file_field)
    content_type, params = parse_header_parameters(request.META.get("CONTENT_TYPE", ""))
    if content_type != "multipart/form-data":
        raise UnsupportedMediaType("Send the file as multipart/form-data.", code="unsupported_content_type")
    boundary = (params.get("boundary") or "").encode("latin-1", "replace")
    if not 1 <= len(boundary) <= 200 or not set(boundary) <= _BOUNDARY_CHARS:
        raise MalformedMultipart("The multipart boundary is missing or invalid.")
    reader = MultipartReader(source or request_body(request), boundary, declared_body_size(request))
    budget = _FieldBudget(request.encoding or settings.DEFAULT_CHARSET)
    fields: dict[str, str] = {}
    while (part := reader.next_part()) is not None:
        if part.filename is None:
            fields[part.name] = budget.value(reader, part)
        elif part.name == file_field:
            if part.transfer_encoding not in ("", "binary", "8bit", "7bit"):
                raise InvalidRequest("The file part may not use a Content-Transfer-Encoding.",
                                     code="unsupported_transfer_encoding", param=file_field)
            return UploadForm(fields=fields, file=FilePart(reader, part), _reader=reader, _budget=budget,
                              _file_field=file_field)
    return UploadForm(fields=fields, file=None)


def _parsed_form(request: HttpRequest, file_field: str) -> UploadForm:
    fields = {name: request.POST.get(name) for name in request.POST}
    return UploadForm(fields=fields, file=request.FILES.get(file_field))


def declared_body_size(request: HttpRequest) -> int | None:
    value = request.META.get("CONTENT_LENGTH") or ""
    return int(value) if value.isdigit() else None



def request_body(request: HttpRequest) -> BinaryIO:
    """The body to stream an upload from; `LengthRequired` (411) when its end cannot be known.

    Without a Content-Length Django reads a body as empty (its `LimitedStream` has a limit of 0),
    so a chunked body would be stored as nothing. A server that de-chunks and marks the end of
    the input (`wsgi.input_terminated`: gunicorn does) hands over the decoded body itself.
    """
    if declared_body_size(request) is not None:
        return request
    chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    if chunked and request.META.get("wsgi.input_terminated"):
        return _ServerInput(request.META["wsgi.input"])
    raise LengthRequired()


class _ServerInput:
    """The server's de-chunked input; a broken chunk framing (the server's own parse errors,
    not OSErrors) is an interrupted upload, not a server error."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source

    def read(self, n: int = -1) -> bytes:
        try:
            return self.source.read(n)
        except Exception as exc:  # noqa: BLE001 - gunicorn's ChunkMissingTerminator, NoMoreData, ...
            raise UploadInterrupted() from exc


class CappedBody:
    """A request body that refuses (413) to be read past `cap` bytes; the cap can be raised.

    Lets a handler bound what an unauthenticated client makes it read: a small cap until a
    signature is checked, then the signed size plus a little framing.
    """

    def __init__(self, source: BinaryIO, cap: int) -> None:
        self.source, self.cap, self.taken = source, cap, 0

    def read(self, n: int = -1) -> bytes:
        n = n if n and n > 0 else READ_BLOCK
        room = self.cap - self.taken
        data = self.source.read(min(n, room) if room > 0 else 1)  # at the cap: one byte tells if there is more
        self.taken += len(data)
        if self.taken > self.cap:
            raise TooLarge("The request body is larger than this upload allows.", param="file")
        return data


class NonEmpty:
    """Refuses an empty file before anything is written: no upload stores (or replaces with) 0 bytes."""

    def __init__(self, source) -> None:  # noqa: ANN001 - a readable
        self.source, self.started = source, False

    def read(self, n: int = -1) -> bytes:
        data = self.source.read(n)
        if not self.started and not data:
            raise InvalidRequest("The file is empty.", code="empty_file", param="file")
        self.started = True
        return data
