"""Multipart upload through the API to the local backend vs writing the same bytes with fsync.

    .venv/bin/python bench/bench_upload_local.py [--mb 256] [--runs 5] [--profile var/bench/profiles]

Row 1 of docs/benchmarks.md (`MEDIA_ENCRYPTION=none`, target: API <= 1.5 x raw);
bench_upload_encrypted.py runs the same with `MEDIA_ENCRYPTION=app` (target <= 2 x raw).

API: `POST /v1/media/upload` to gunicorn (1 gthread worker) over loopback, timed from the first
byte sent to the answer read; the server sniffs, hashes, counts, (encrypts,) writes and fsyncs.
Raw: this process writes the same bytes to a file in the same media directory in 1 MiB blocks,
then fsyncs. The two alternate, each after `sync` and a second of quiet (the virtual disk
slows down under sustained writes), and the medians and their ratio are printed.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import _harness as h


def raw_write(pieces: list, directory: Path) -> float:
    path = directory / f".raw-{os.getpid()}"
    began = time.perf_counter()
    with open(path, "wb") as out:
        for piece in pieces:
            view = memoryview(piece)
            for offset in range(0, len(view), h.MIB):
                out.write(view[offset:offset + h.MIB])
        out.flush()
        os.fsync(out.fileno())
    seconds = time.perf_counter() - began
    path.unlink()
    return seconds


def api_upload(server: h.Server, key: str, pieces: list) -> float:
    reply = h.upload(server, "/v1/media/upload", key, pieces)
    if reply.status != 201:
        raise SystemExit(f"upload failed: {reply.status} {reply.body[:300]!r}")
    h.request(server, "DELETE", f"/v1/media/{reply.json()['id']}", key=key)
    h.stored_objects_remove()
    return reply.seconds


def run(*, encryption: str, target: float, row: str, mb: int, runs: int, profile: Path | None) -> None:
    env = h.environment(backend="local", encryption=encryption)
    h.migrate(env)
    account = h.account_in(env)
    h.media_dir_reset()
    data = os.urandom(mb * h.MIB)

    def pieces() -> list:  # a fresh prefix per upload: no deduplication between runs
        return [os.urandom(16), data]

    with h.gunicorn(env, workers=1) as server:
        api_upload(server, account.key, [os.urandom(16), data[: 8 * h.MIB]])  # warm up
        raw, api = h.alternate(runs, lambda: raw_write(pieces(), h.MEDIA_ROOT),
                               lambda: api_upload(server, account.key, pieces()), settle=h.disk_settle)
        if profile is not None:
            out = profile / f"upload-local-{encryption}.txt"
            with h.py_spy(server.workers()[0], out):
                api_upload(server, account.key, pieces())
            h.table(f"py-spy, one upload ({out}): share of samples by leaf frame", ["frame", "%"],
                    [(frame, f"{share:.1f}") for frame, share in h.top_frames(out)])
    h.media_dir_reset()
    ratio = h.median(api) / h.median(raw)
    h.table(f"{row}: {mb} MiB multipart upload, local backend, MEDIA_ENCRYPTION={encryption} ({runs} runs, median s)",
            ["measure", "API s", "raw s", "API/raw", "target", "verdict"],
            [("upload vs write+fsync", h.median(api), h.median(raw), f"{ratio:.2f}", f"<= {target}",
              h.verdict(ratio, target))])
    print(f"  samples API {[round(x, 3) for x in api]}  raw {[round(x, 3) for x in raw]}")
    print(f"  throughput API {mb / h.median(api):.0f} MiB/s, raw {mb / h.median(raw):.0f} MiB/s")


def main(encryption: str = "none", target: float = 1.5, row: str = "Row 1") -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", type=Path, default=None, help="record one API upload with py-spy into DIR")
    args = parser.parse_args()
    run(encryption=encryption, target=target, row=row, mb=args.mb, runs=args.runs, profile=args.profile)


if __name__ == "__main__":
    main()
