"""The two multipart readers alone, in process: CPU seconds to read a 256 MiB file part.

    PYTHONPATH=<multipart 1.3.1> .venv/bin/python bench/bench_multipart_parser.py [--mb 256] [--runs 9]

The body comes from memory (`io.BytesIO`, 1 MiB reads), so only the parsing is timed; the
two readers alternate and the medians of `time.process_time()` are printed.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOUNDARY = b"0123456789abcdef0123456789abcdef"


def body_of(data: bytes) -> bytes:
    head = b'\r\nContent-Disposition: form-data; name="file"; filename="x.bin"\r\n\r\n'
    return b"--" + BOUNDARY + head + data + b"\r\n--" + BOUNDARY + b"--\r\n"


def parse(reader_class: type, body: bytes, size: int) -> float:
    from storage_app.uploads import READ_BLOCK

    reader = reader_class(io.BytesIO(body), BOUNDARY, len(body))
    began = time.process_time()
    reader.next_part()
    total = 0
    while chunk := reader.read(READ_BLOCK):
        total += len(chunk)
    if reader.next_part() is not None or total != size:
        raise SystemExit("the reader lost bytes")
    return time.process_time() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
    import django

    django.setup()
    from storage_app.uploads import MultipartReader, PushMultipartReader

    size = args.mb << 20
    body = body_of(os.urandom(size))
    samples: dict[str, list[float]] = {"A hand-written": [], "B multipart": []}
    for _ in range(args.runs):
        samples["A hand-written"].append(parse(MultipartReader, body, size))
        samples["B multipart"].append(parse(PushMultipartReader, body, size))
    for name, values in samples.items():
        print(f"{name}: median {statistics.median(values):.4f} s CPU  {[round(v, 4) for v in values]}")
    a, b = (statistics.median(v) for v in samples.values())
    print(f"B/A {b / a:.2f}")


if __name__ == "__main__":
    main()
