"""Throughput of encryption at rest vs a plain copy of the same bytes.

    .venv/bin/python bench/bench_crypto.py [--mb 100] [--piece-kb 1024] [--repeat 3]

Encrypt streams the plaintext through EncryptingReader.read(piece) (what boto3's
upload_fileobj or a local writer does); decrypt streams the whole ciphertext back
through decrypt_range with a seek+read fetch. The "plain" column moves the same
bytes with the same piece size and no crypto. Everything is in memory, so the
figures are CPU cost, not disk or network.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage_app.crypto import (  # noqa: E402
    CHUNK_SIZE,
    EncryptingReader,
    Keyring,
    ciphertext_size,
    decrypt_range,
    file_fetcher,
    generate_key_string,
)

MIB = 1024 * 1024


def best_of(repeat: int, func: Callable[[], int]) -> tuple[float, int]:
    """Fastest wall time of `repeat` runs, and the byte count the run returned."""
    best, count = float("inf"), 0
    for _ in range(repeat):
        began = time.perf_counter()
        count = func()
        best = min(best, time.perf_counter() - began)
    return best, count


def drain(read: Callable[[int], bytes], piece: int) -> int:
    total = 0
    while chunk := read(piece):
        total += len(chunk)
    return total


def plain_copy(data: bytes, piece: int) -> int:
    return drain(io.BytesIO(data).read, piece)


def encrypt_stream(data: bytes, ring: Keyring, piece: int, chunk_size: int) -> int:
    reader = EncryptingReader(io.BytesIO(data), keyring=ring, chunk_size=chunk_size)
    return drain(reader.read, piece)


def plain_fetch(blob: bytes, piece: int) -> int:
    fetch = file_fetcher(io.BytesIO(blob), piece_size=piece)
    return sum(len(p) for p in fetch(0, len(blob)))


def decrypt_stream(blob: bytes, ring: Keyring, plain_size: int, piece: int) -> int:
    fetch = file_fetcher(io.BytesIO(blob), piece_size=piece)
    return sum(len(p) for p in decrypt_range(fetch, keyring=ring, plain_size=plain_size))


def range_reads(blob: bytes, ring: Keyring, plain_size: int, count: int, width: int) -> int:
    rng = random.Random(7)
    f = io.BytesIO(blob)
    total = 0
    for _ in range(count):
        start = rng.randrange(0, plain_size - width)
        out = decrypt_range(file_fetcher(f), keyring=ring, plain_size=plain_size,
                            start=start, end=start + width - 1)
        total += sum(len(p) for p in out)
    return total


def mbps(size: int, seconds: float) -> float:
    return size / MIB / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="plaintext size in MiB")
    parser.add_argument("--piece-kb", type=int, default=1024, help="read()/fetch piece size")
    parser.add_argument("--chunk-kb", type=int, default=CHUNK_SIZE // 1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    size, piece, chunk = args.mb * MIB, args.piece_kb * 1024, args.chunk_kb * 1024
    ring = Keyring.parse(generate_key_string("bench"))
    data = os.urandom(size)
    blob = EncryptingReader(io.BytesIO(data), keyring=ring, chunk_size=chunk).read()
    assert len(blob) == ciphertext_size(size, chunk)
    check = hashlib.sha256()
    fetch = file_fetcher(io.BytesIO(blob), piece_size=piece)
    for part in decrypt_range(fetch, keyring=ring, plain_size=size):
        check.update(part)
    assert check.digest() == hashlib.sha256(data).digest(), "round trip mismatch"

    rows = []
    t_plain, _ = best_of(args.repeat, lambda: plain_copy(data, piece))
    t_enc, _ = best_of(args.repeat, lambda: encrypt_stream(data, ring, piece, chunk))
    rows.append(("encrypt (EncryptingReader.read)", mbps(size, t_plain), mbps(size, t_enc)))
    t_plain, _ = best_of(args.repeat, lambda: plain_fetch(blob, piece))
    t_dec, _ = best_of(args.repeat, lambda: decrypt_stream(blob, ring, size, piece))
    rows.append(("decrypt (decrypt_range, full)", mbps(len(blob), t_plain), mbps(size, t_dec)))

    print(f"{args.mb} MiB random data, chunk {args.chunk_kb} KiB, piece {args.piece_kb} KiB, "
          f"best of {args.repeat}; ciphertext overhead "
          f"{len(blob) - size} bytes ({(len(blob) - size) / size:.3%})")
    print(f"{'operation':<34}{'plain MB/s':>12}{'crypto MB/s':>13}{'crypto/plain':>14}")
    for name, plain, crypto in rows:
        print(f"{name:<34}{plain:>12.0f}{crypto:>13.0f}{crypto / plain:>14.2f}")

    count, width = 2000, 4096
    t_range, _ = best_of(args.repeat, lambda: range_reads(blob, ring, size, count, width))
    print(f"random {width}-byte range reads: {count / t_range:.0f}/s "
          f"({t_range / count * 1e6:.0f} us each: header + 1-2 chunks)")


if __name__ == "__main__":
    main()
