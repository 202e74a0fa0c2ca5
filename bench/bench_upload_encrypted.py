"""Multipart upload through the API with `MEDIA_ENCRYPTION=app` vs writing the same bytes with fsync.

    .venv/bin/python bench/bench_upload_encrypted.py [--mb 256] [--runs 5] [--profile var/bench/profiles]

Row 2 of docs/benchmarks.md (target: API <= 2 x raw). The same measurement as
bench_upload_local.py, with the server encrypting (AES-256-GCM in 64 KiB chunks,
storage_app.crypto) while it hashes and writes. bench_crypto.py measures the cipher alone.
"""
from __future__ import annotations

import bench_upload_local

if __name__ == "__main__":
    bench_upload_local.main(encryption="app", target=2.0, row="Row 2")
