"""Multipart upload through the API to the S3 backend vs boto3 `upload_fileobj` of the same bytes.

    .venv/bin/python bench/bench_upload_s3.py [--mb 256] [--runs 5] [--profile var/bench/profiles]

Row 3 of docs/benchmarks.md (target: API <= 1.5 x boto3). Both write to one moto S3 server
(real HTTP on 127.0.0.1): the API through gunicorn (1 gthread worker), whose storage layer
streams the request body into a multipart upload (8 MiB parts, 4 threads); the raw side is
this process calling boto3's `upload_fileobj` with its default transfer settings.
"""
from __future__ import annotations

import argparse
import io
import os
from pathlib import Path

import _harness as h


def raw_upload(client, bucket: str, data: bytes) -> float:  # noqa: ANN001
    import time

    key = f"raw/{os.urandom(6).hex()}"
    began = time.perf_counter()
    client.upload_fileobj(io.BytesIO(data), bucket, key)
    seconds = time.perf_counter() - began
    client.delete_object(Bucket=bucket, Key=key)
    return seconds


def api_upload(server: h.Server, key: str, data: bytes) -> float:
    reply = h.upload(server, "/v1/media/upload", key, [os.urandom(16), data])
    if reply.status != 201:
        raise SystemExit(f"upload failed: {reply.status} {reply.body[:300]!r}")
    h.request(server, "DELETE", f"/v1/media/{reply.json()['id']}", key=key)
    return reply.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", type=Path, default=None, help="record one API upload with py-spy into DIR")
    args = parser.parse_args()
    data = os.urandom(args.mb * h.MIB)
    with h.moto_server() as endpoint:
        bucket = h.bucket_create(endpoint)
        env = h.environment(backend="s3", s3_endpoint=endpoint, bucket=bucket)
        h.migrate(env)
        account = h.account_in(env)
        client = h.s3_client(endpoint)
        with h.gunicorn(env, workers=1) as server:
            api_upload(server, account.key, data[: 16 * h.MIB])  # warm up both sides
            raw_upload(client, bucket, data[: 16 * h.MIB])
            raw, api = h.alternate(args.runs, lambda: raw_upload(client, bucket, os.urandom(16) + data),
                                   lambda: api_upload(server, account.key, data))
            if args.profile is not None:
                out = args.profile / "upload-s3.txt"
                with h.py_spy(server.workers()[0], out):
                    api_upload(server, account.key, data)
                h.table(f"py-spy, one upload ({out}): share of samples by leaf frame", ["frame", "%"],
                        [(frame, f"{share:.1f}") for frame, share in h.top_frames(out)])
    ratio = h.median(api) / h.median(raw)
    h.table(f"Row 3: {args.mb} MiB multipart upload to S3 (moto) ({args.runs} runs, median s)",
            ["measure", "API s", "boto3 s", "API/boto3", "target", "verdict"],
            [("upload vs upload_fileobj", h.median(api), h.median(raw), f"{ratio:.2f}", "<= 1.5",
              h.verdict(ratio, 1.5))])
    print(f"  samples API {[round(x, 3) for x in api]}  boto3 {[round(x, 3) for x in raw]}")


if __name__ == "__main__":
    main()
