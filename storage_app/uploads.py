"""Multipart upload handling that refuses oversized bodies while they arrive."""
from __future__ import annotations

from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http import HttpRequest

from config.errors import TooLarge


class LimitedUploadHandler(TemporaryFileUploadHandler):
    """Spools a file part to disk, stopping as soon as it passes `max_bytes`."""

    def __init__(self, request: HttpRequest | None = None, *, max_bytes: int) -> None:
        super().__init__(request)
        self.max_bytes = max_bytes
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > self.max_bytes:
            self.file.close()
            raise TooLarge(f"File size exceeds the maximum of {self.max_bytes} bytes.", param="file")
        return super().receive_data_chunk(raw_data, start)


def declared_body_size(request: HttpRequest) -> int | None:
    value = request.META.get("CONTENT_LENGTH") or ""
    return int(value) if value.isdigit() else None


def limit_uploads(request: HttpRequest, max_bytes: int) -> None:
    """Install the limited handler; call before the view touches request.data/FILES."""
    request.upload_handlers = [LimitedUploadHandler(request, max_bytes=max_bytes)]
