"""Peak memory (RSS) of the server process during a 1 GiB upload and a 1 GiB download.

    .venv/bin/python bench/bench_memory.py [--mb 1024]

Row 5 of docs/benchmarks.md (target: RSS grows by <= 64 MB). One gunicorn gthread worker;
its RSS (/proc/<pid>/status, VmRSS) is sampled every 5 ms from just before each transfer
to its end, after a warm-up transfer of 16 MiB; growth = peak - RSS before the transfer.
Configurations: local backend without and with MEDIA_ENCRYPTION=app, and S3 (moto; the
download proxied through the app with MEDIA_PROXY_DOWNLOAD=true).
"""
from __future__ import annotations

import argparse
import contextlib
import os

import _harness as h


def measure(server: h.Server, key: str, data: bytes) -> tuple[int, int, float, float]:
    warm = h.upload(server, "/v1/media/upload", key, [h.opaque(16), data[: 16 * h.MIB]])
    h.download(server, f"/v1/media/{warm.json()['id']}/content", key)
    pid = server.workers()[0]
    with h.RssSampler(pid) as up:
        reply = h.upload(server, "/v1/media/upload", key, [h.opaque(16), data])
    if reply.status != 201:
        raise SystemExit(f"upload failed: {reply.status} {reply.body[:300]!r}")
    with h.RssSampler(pid) as down:
        got = h.download(server, f"/v1/media/{reply.json()['id']}/content", key)
    if got.status != 200 or int(got.body) != len(data) + 16:
        raise SystemExit(f"download failed: {got.status} {got.body!r}")
    return up.growth, down.growth, reply.seconds, got.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1024)
    args = parser.parse_args()
    data = os.urandom(args.mb * h.MIB)
    rows = []
    for name, backend, encryption in [("local", "local", "none"), ("local, encrypted", "local", "app"),
                                      ("S3 (moto)", "s3", "none")]:
        with contextlib.ExitStack() as stack:
            extra = {}
            if backend == "s3":
                endpoint = stack.enter_context(h.moto_server())
                extra = {"s3_endpoint": endpoint, "bucket": h.bucket_create(endpoint)}
            env = h.environment(backend=backend, encryption=encryption, **extra)
            h.migrate(env)
            account = h.account_in(env)
            h.media_dir_reset()
            server = stack.enter_context(h.gunicorn(env, workers=1))
            up, down, up_s, down_s = measure(server, account.key, data)
            h.media_dir_reset()
        for direction, growth, seconds in (("upload", up, up_s), ("download", down, down_s)):
            rows.append((f"{name}: {direction}", f"{growth / h.MIB:.1f}", f"{seconds:.2f}", "<= 64 MB",
                         "met" if growth <= 64 * 10**6 else "NOT met"))
    h.table(f"Row 5: server RSS growth while moving {args.mb} MiB", ["transfer", "RSS growth MiB", "s", "target",
                                                                     "verdict"], rows)


if __name__ == "__main__":
    main()
