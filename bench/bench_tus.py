"""A resumable (tus) upload in 64 MiB PATCHes vs the one-request upload of the same bytes.

    .venv/bin/python bench/bench_tus.py [--mb 1024] [--chunk-mb 64] [--runs 3] [--encryption none|app]

Row 9 of docs/benchmarks.md (targets: tus <= 1.3 x one request; worker RSS growth <= 64 MB).

One request: `POST /v1/media/upload` (multipart) to gunicorn (1 gthread worker), local backend.
tus: `POST /v1/uploads/` (creation), then one `PATCH` per chunk, each on a new connection, timed
from the creation to the answer of the last PATCH (which activates the file). Both stream the
same bytes behind a fresh 16-byte prefix (no deduplication between runs) and alternate, each after
`sync` and a second of quiet. The worker's peak RSS over its RSS before the tus upload is its growth.
"""
from __future__ import annotations

import argparse
import os
import time

import _harness as h

TUS = {"Tus-Resumable": "1.0.0"}


def one_request(server: h.Server, key: str, pieces: list) -> float:
    reply = h.upload(server, "/v1/media/upload", key, pieces)
    if reply.status != 201:
        raise SystemExit(f"upload failed: {reply.status} {reply.body[:300]!r}")
    h.request(server, "DELETE", f"/v1/media/{reply.json()['id']}", key=key)
    h.stored_objects_remove()
    return reply.seconds


def window(pieces: list, start: int, end: int) -> list[memoryview]:
    """The bytes `start..end` of the concatenated pieces, as views (nothing copied)."""
    views, offset = [], 0
    for piece in pieces:
        lo, hi = max(start - offset, 0), min(end - offset, len(piece))
        if hi > lo:
            views.append(memoryview(piece)[lo:hi])
        offset += len(piece)
    return views


def patch(server: h.Server, key: str, path: str, offset: int, views: list[memoryview]) -> h.Reply:
    conn = h._connection(server)
    conn.putrequest("PATCH", path)
    for name, value in {**TUS, "Authorization": f"Bearer {key}", "Upload-Offset": str(offset),
                        "Content-Type": "application/offset+octet-stream",
                        "Content-Length": str(sum(len(v) for v in views))}.items():
        conn.putheader(name, value)
    conn.endheaders()
    for view in views:
        conn.sock.sendall(view)
    response = conn.getresponse()
    reply = h.Reply(response.status, response.read(), 0.0, dict(response.getheaders()))
    conn.close()
    return reply


def tus_upload(server: h.Server, key: str, pieces: list, chunk: int) -> float:
    total = sum(len(p) for p in pieces)
    began = time.perf_counter()
    created = h.request(server, "POST", "/v1/uploads/", key=key,
                        headers={**TUS, "Upload-Length": str(total), "Content-Length": "0"})
    if created.status != 201:
        raise SystemExit(f"creation failed: {created.status} {created.body[:300]!r}")
    path = "/v1/uploads/" + created.headers["Location"].rsplit("/", 1)[1]
    for offset in range(0, total, chunk):
        reply = patch(server, key, path, offset, window(pieces, offset, min(offset + chunk, total)))
        if reply.status != 204:
            raise SystemExit(f"PATCH at {offset} failed: {reply.status} {reply.body[:300]!r}")
    seconds = time.perf_counter() - began
    h.request(server, "DELETE", f"/v1/media/{reply.headers['Mediastore-Media-Id']}", key=key)
    h.stored_objects_remove()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--chunk-mb", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--encryption", choices=["none", "app"], default="none")
    args = parser.parse_args()
    env = h.environment(backend="local", encryption=args.encryption)
    h.migrate(env)
    account = h.account_in(env)
    h.media_dir_reset()
    data, chunk = os.urandom(args.mb * h.MIB), args.chunk_mb * h.MIB

    def pieces() -> list:
        return [os.urandom(16), data]

    with h.gunicorn(env, workers=1) as server:
        tus_upload(server, account.key, [os.urandom(16), data[:8 * h.MIB]], chunk)  # warm up
        one_request(server, account.key, [os.urandom(16), data[:8 * h.MIB]])
        single, tus = h.alternate(args.runs, lambda: one_request(server, account.key, pieces()),
                                  lambda: tus_upload(server, account.key, pieces(), chunk), settle=h.disk_settle)
        h.disk_settle()
        with h.RssSampler(server.workers()[0]) as rss:
            tus_upload(server, account.key, pieces(), chunk)
    h.media_dir_reset()
    ratio = h.median(tus) / h.median(single)
    growth_mb = rss.growth / 1e6
    h.table(f"Row 11: {args.mb} MiB, tus in {args.chunk_mb} MiB PATCHes vs one request, local backend, "
            f"MEDIA_ENCRYPTION={args.encryption} ({args.runs} runs, median s)",
            ["measure", "tus", "one request", "ratio / value", "target", "verdict"],
            [("time", h.median(tus), h.median(single), f"{ratio:.2f}", "<= 1.3", h.verdict(ratio, 1.3)),
             ("worker RSS growth (MB)", f"{growth_mb:.1f}", "", f"{growth_mb:.1f}", "<= 64",
              "meets" if growth_mb <= 64 else "misses")])
    print(f"  samples tus {[round(x, 2) for x in tus]}  one request {[round(x, 2) for x in single]}")
    print(f"  throughput tus {args.mb / h.median(tus):.0f} MiB/s, one request {args.mb / h.median(single):.0f} MiB/s")


if __name__ == "__main__":
    main()
