"""The ways bytes come in besides a request body: data URLs and remote URLs."""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from config.errors import InvalidRequest, TooLarge

_DATA_URL = re.compile(r"^data:(?P<mime>[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+)?(?P<params>(?:;[^;,]*)*?),",
                       re.IGNORECASE)
_B64_CHUNK = 64 * 1024  # characters taken per decode step; what is decoded is a multiple of 4 of them
# As browsers read data URLs (WHATWG "forgiving-base64"): ASCII whitespace, such as the line
# breaks MIME puts every 76 characters, is not data, and the final `=` padding may be left out.
_WHITESPACE = " \t\n\f\r"
_STRIP = str.maketrans("", "", _WHITESPACE)


class InvalidDataUrl(InvalidRequest):
    code = "invalid_data_url"
    message = "The data URL is not valid."


@dataclass
class DataUrl:
    mime: str
    payload: str  # base64 text
    decoded_size: int


def parse_data_url(value: object, *, max_bytes: int) -> DataUrl:
    """Checks shape and size without decoding: too large is refused before any work."""
    if not isinstance(value, str):
        raise InvalidDataUrl("source.data_url must be a string.", param="source.data_url")
    match = _DATA_URL.match(value)
    if not match:
        raise InvalidDataUrl("This is not a data URL (data:<type>;base64,<data>).", param="source.data_url")
    if ";base64" not in (match.group("params") or "").lower():
        raise InvalidDataUrl("Only base64 data URLs are accepted.", code="data_url_not_base64",
                             param="source.data_url")
    payload = value[match.end():]
    length = len(payload) - sum(payload.count(space) for space in _WHITESPACE)
    padding = _last_chars(payload, 2).count("=")
    if length % 4 == 1 or (padding and length % 4):
        raise InvalidDataUrl("The base64 data is truncated or malformed.", param="source.data_url")
    if payload.count("=") != padding:
        raise InvalidDataUrl("The base64 data has padding before its end.", param="source.data_url")
    size = length // 4 * 3 - padding + max(length % 4 - 1, 0)  # unpadded: 2 or 3 characters left over
    if size > max_bytes:
        raise TooLarge(f"The data URL holds {size} bytes, more than the maximum of {max_bytes}.",
                       param="source.data_url")
    if size == 0:
        raise InvalidDataUrl("The data URL is empty.", code="empty_file", param="source.data_url")
    return DataUrl(mime=(match.group("mime") or "").lower(), payload=payload, decoded_size=size)


def _last_chars(payload: str, n: int) -> str:
    """The last `n` characters that are not whitespace, without copying the payload."""
    found, pos = "", len(payload)
    while len(found) < n and pos:
        pos -= 1
        if payload[pos] not in _WHITESPACE:
            found = payload[pos] + found
    return found


class Base64Reader:
    """Decodes base64 text a slice at a time, so a data URL is never decoded whole.

    A slice may end inside a quantum of four characters, or have whitespace in it: what is
    decoded is always a whole number of quanta, the rest waits for the next slice, and
    unpadded data is padded at its end. `parse_data_url` has made sure any padding ends
    the data: decoded slice by slice, `AA==AAAA` would otherwise pass.
    """

    def __init__(self, payload: str) -> None:
        self.payload = payload
        self.pos = 0
        self.pending = ""  # base64 characters not yet decoded, fewer than 4 between reads
        self.buffer = b""

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self.buffer) < n) and self.pos < len(self.payload):
            self.buffer += self._decode_next()
        if self.pos >= len(self.payload) and self.pending:  # unpadded data ends with 2 or 3 characters
            last, self.pending = self.pending + "=" * (-len(self.pending) % 4), ""
            self.buffer += _decode(last)
        if n < 0:
            data, self.buffer = self.buffer, b""
        else:
            data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def _decode_next(self) -> bytes:
        text = self.pending + self.payload[self.pos:self.pos + _B64_CHUNK].translate(_STRIP)
        self.pos += _B64_CHUNK
        whole = len(text) - len(text) % 4
        piece, self.pending = text[:whole], text[whole:]
        return _decode(piece)


def _decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidDataUrl("The data URL is not valid base64.", param="source.data_url") from None
