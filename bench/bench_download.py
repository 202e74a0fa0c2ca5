"""Download through `/v1/media/{id}/content` vs reading the raw object the same way, local and S3.

    .venv/bin/python bench/bench_download.py [--mb 256] [--runs 5] [--profile var/bench/profiles]

Row 4 of docs/benchmarks.md (target: API <= 1.3 x raw). The client reads every body into one
reused 1 MiB buffer (`readinto`), so the measures differ only in where the bytes come from:
- local: the API over loopback through gunicorn (1 gthread worker), which hands the file to
  sendfile(2). Raw is the same stored file read the same way: over HTTP from the same
  gunicorn setup running a bare WSGI file server (bench/_rawfile_app.py, no Django). For
  context the table also shows this process reading the file straight from the page cache
  (no socket at all), which no HTTP server can approach;
- S3: the API with `MEDIA_PROXY_DOWNLOAD=true` streams `get_object` (ranged, 1 MiB chunks)
  through the app; raw is boto3 `get_object` read with the same loop, from the same moto server.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import _harness as h


def read_file(path: Path, block: int = h.MIB) -> float:
    buffer = memoryview(bytearray(block))
    began = time.perf_counter()
    with open(path, "rb", buffering=0) as handle:
        while handle.readinto(buffer):
            pass
    return time.perf_counter() - began


def read_s3(client, bucket: str, key: str, block: int = h.MIB) -> float:  # noqa: ANN001
    buffer = memoryview(bytearray(block))
    began = time.perf_counter()
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    raw = body._raw_stream  # urllib3's response: readinto, like the API side's http.client
    while raw.readinto(buffer):
        pass
    body.close()
    return time.perf_counter() - began


def api_read(server: h.Server, key: str, media_id: str) -> float:
    reply = h.download(server, f"/v1/media/{media_id}/content", key)
    if reply.status != 200:
        raise SystemExit(f"download failed: {reply.status}")
    return reply.seconds


def stored(server: h.Server, key: str, data: bytes) -> dict:
    reply = h.upload(server, "/v1/media/upload", key, [h.opaque(16), data])
    if reply.status != 201:
        raise SystemExit(f"upload failed: {reply.status} {reply.body[:300]!r}")
    return reply.json()


def local_row(mb: int, runs: int, profile: Path | None) -> tuple:
    env = h.environment(backend="local")
    h.migrate(env)
    account = h.account_in(env)
    h.media_dir_reset()
    data = os.urandom(mb * h.MIB)
    raw_env = {**env, "BENCH_RAW_ROOT": str(h.MEDIA_ROOT)}
    with h.gunicorn(env, workers=1) as server, h.gunicorn(raw_env, workers=1, app="_rawfile_app:application") as files:
        media = stored(server, account.key, data)
        path = next(p for p in h.MEDIA_ROOT.rglob("*") if p.is_file() and p.stat().st_size == len(data) + 16)
        relative = path.relative_to(h.MEDIA_ROOT).as_posix()
        read_file(path)  # warm both sides up
        api_read(server, account.key, media["id"])
        h.download(files, "/" + relative)
        raw, api, disk = h.alternate(runs, lambda: h.download(files, "/" + relative).seconds,
                                     lambda: api_read(server, account.key, media["id"]), lambda: read_file(path))
        if profile is not None:
            out = profile / "download-local.txt"
            with h.py_spy(server.workers()[0], out):
                api_read(server, account.key, media["id"])
    h.media_dir_reset()
    print(f"  local, for context: the same file read from the page cache in-process: {h.median(disk):.3f} s "
          f"(API/that = {h.median(api) / h.median(disk):.1f})")
    return ("local (sendfile)", h.median(api), h.median(raw), api, raw)


def s3_row(mb: int, runs: int, profile: Path | None) -> tuple:
    data = os.urandom(mb * h.MIB)
    with h.moto_server() as endpoint:
        bucket = h.bucket_create(endpoint)
        env = h.environment(backend="s3", s3_endpoint=endpoint, bucket=bucket, proxy_download=True)
        h.migrate(env)
        account = h.account_in(env)
        client = h.s3_client(endpoint)
        with h.gunicorn(env, workers=1) as server:
            media = stored(server, account.key, data)
            key = client.list_objects_v2(Bucket=bucket)["Contents"][0]["Key"]
            read_s3(client, bucket, key)  # warm both sides up
            api_read(server, account.key, media["id"])
            raw, api = h.alternate(runs, lambda: read_s3(client, bucket, key),
                                   lambda: api_read(server, account.key, media["id"]))
            if profile is not None:
                out = profile / "download-s3.txt"
                with h.py_spy(server.workers()[0], out):
                    api_read(server, account.key, media["id"])
    return ("S3 (proxied get_object)", h.median(api), h.median(raw), api, raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", type=Path, default=None, help="record one API download with py-spy into DIR")
    args = parser.parse_args()
    rows = [local_row(args.mb, args.runs, args.profile), s3_row(args.mb, args.runs, args.profile)]
    h.table(f"Row 4: {args.mb} MiB download through /content ({args.runs} runs, median s)",
            ["backend", "API s", "raw s", "API/raw", "target", "verdict"],
            [(name, api, raw, f"{api / raw:.2f}", "<= 1.3", h.verdict(api / raw, 1.3)) for name, api, raw, *_ in rows])
    for name, _, _, api, raw in rows:
        print(f"  {name}: samples API {[round(x, 3) for x in api]}  raw {[round(x, 3) for x in raw]}")


if __name__ == "__main__":
    main()
