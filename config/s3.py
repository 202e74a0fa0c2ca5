"""Options for django-storages' S3Storage, shared by settings and tests."""
from __future__ import annotations

from botocore.config import Config


def s3_storage_options(*, bucket: str, region: str, endpoint: str | None, access_key: str | None,
                       secret_key: str | None, path_style: bool, presign_ttl: int) -> dict:
    client_config = Config(
        s3={"addressing_style": "path" if path_style else "auto"},
        signature_version="s3v4",
        connect_timeout=5,
        read_timeout=60,
        # Few, quick retries: an outage should become a 503 in seconds, not a hung worker.
        retries={"max_attempts": 3, "mode": "standard"},
        max_pool_connections=32,
    )
    return {
        "bucket_name": bucket,
        "region_name": region,
        "endpoint_url": endpoint or None,
        "access_key": access_key or None,
        "secret_key": secret_key or None,
        "client_config": client_config,
        "querystring_expire": presign_ttl,
        "file_overwrite": True,
        "default_acl": None,
    }
