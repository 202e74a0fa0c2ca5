"""Sample content made in the tests, never downloaded."""
from __future__ import annotations

import io
import os

from PIL import Image


def png_bytes(width: int = 8, height: int = 8, *, noise: int = 0, color=(200, 30, 30)) -> bytes:  # noqa: ANN001
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    data = buffer.getvalue()
    if noise:  # a unique tail (ignored by decoders) so the content hash differs
        data += os.urandom(noise)
    return data


def unique_png(width: int = 8, height: int = 8) -> bytes:
    return png_bytes(width, height, noise=16)


def pdf_bytes() -> bytes:
    return (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")


def upload(name: str, data: bytes, content_type: str = "application/octet-stream"):  # noqa: ANN201
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type=content_type)


def leave_partial_upload(key: str) -> str:
    """What a worker killed mid-write leaves: a local temp file, an S3 multipart upload
    with a part stored and never completed, or the memory backend's unfinished write."""
    from datetime import datetime, timezone

    from storage_app.backends import get_store

    store = get_store()
    if store.name == "memory":
        store.leave_partial(key, begun=datetime.now(timezone.utc))
        return key
    if store.name == "local":
        tmp_dir = store.root / ".tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        (tmp_dir / f"{key.rsplit('/', 1)[-1]}.part").write_bytes(b"half a file")
        return key
    upload_id = store.client.create_multipart_upload(Bucket=store.bucket, Key=key)["UploadId"]
    store.client.upload_part(Bucket=store.bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"x" * 1024)
    return key


def partial_uploads() -> list[str]:
    from storage_app.backends import get_store

    store = get_store()
    if store.name == "memory":
        return sorted(key.rsplit("/", 1)[-1] for key in store.partial_keys())
    if store.name == "local":
        return sorted(path.name.removesuffix(".part") for path in (store.root / ".tmp").glob("*.part"))
    uploads = store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    return sorted(upload["Key"].rsplit("/", 1)[-1] for upload in uploads)
