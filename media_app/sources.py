"""The ways bytes come in besides a request body: data URLs and remote URLs."""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from config.errors import InvalidRequest, TooLarge

_DATA_URL = re.compile(r"^data:(?P<mime>[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+)?(?P<params>(?:;[^;,]*)*?),",
                       re.IGNORECASE)
_B64_CHUNK = 64 * 1024 * 4 // 3  # characters per decode step, a multiple of 4


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
    if len(payload) % 4:
        raise InvalidDataUrl("The base64 data is truncated or malformed.", param="source.data_url")
    size = len(payload) // 4 * 3 - payload[-2:].count("=")
    if size > max_bytes:
        raise TooLarge(f"The data URL holds {size} bytes, more than the maximum of {max_bytes}.",
                       param="source.data_url")
    if size == 0:
        raise InvalidDataUrl("The data URL is empty.", code="empty_file", param="source.data_url")
    return DataUrl(mime=(match.group("mime") or "").lower(), payload=payload, decoded_size=size)


class Base64Reader:
    """Decodes base64 text a slice at a time, so a data URL is never decoded whole."""

    def __init__(self, payload: str) -> None:
        self.payload = payload
        self.pos = 0
        self.buffer = b""

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self.buffer) < n) and self.pos < len(self.payload):
            piece = self.payload[self.pos:self.pos + _B64_CHUNK]
            self.pos += len(piece)
            try:
                self.buffer += base64.b64decode(piece, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidDataUrl("The data URL is not valid base64.", param="source.data_url") from None
        if n < 0:
            data, self.buffer = self.buffer, b""
        else:
            data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data
