"""Rows 1-3 with the hand-written multipart parser (A) and the `multipart` package's push parser (B).

    .venv/bin/python bench/bench_multipart_ab.py [--mb 256] [--runs 7] [--rows 1,2,3]

Two gunicorn servers run the same code, one with MEDIASTORE_MULTIPART=push; every run uploads
to A, then B, then does the row's raw operation (A B raw A B raw ...), so a busy machine slows
all three alike. Prints the medians of wall time and of the worker's CPU time per upload
(less sensitive to other processes on the machine than wall time), B/A and each sample.
"""
from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

import _harness as h
import bench_upload_local as local
import bench_upload_s3 as s3


def measure(row: int, mb: int, runs: int) -> None:
    data = os.urandom(mb * h.MIB)
    with contextlib.ExitStack() as stack:
        if row == 3:
            endpoint = stack.enter_context(h.moto_server())
            bucket = h.bucket_create(endpoint)
            env = h.environment(backend="s3", s3_endpoint=endpoint, bucket=bucket)
        else:
            env = h.environment(backend="local", encryption="app" if row == 2 else "none")
        h.migrate(env)
        account = h.account_in(env)
        h.media_dir_reset()
        a = stack.enter_context(h.gunicorn({**env, "MEDIASTORE_MULTIPART": "hand"}, workers=1))
        b = stack.enter_context(h.gunicorn({**env, "MEDIASTORE_MULTIPART": "push"}, workers=1))
        if row == 3:
            client = h.s3_client(endpoint)

            def api(server: h.Server) -> float:
                return s3.api_upload(server, account.key, data)

            def raw() -> float:
                return s3.raw_upload(client, bucket, os.urandom(16) + data)
            settle = None
        else:
            def api(server: h.Server) -> float:
                return local.api_upload(server, account.key, [os.urandom(16), data])

            def raw() -> float:
                return local.raw_write([os.urandom(16), data], h.MEDIA_ROOT)
            settle = h.disk_settle
        cpu: dict[str, list[float]] = {"A": [], "B": []}

        def timed(server: h.Server, name: str) -> float:
            worker = server.workers()[0]
            before = cpu_seconds(worker)
            seconds = api(server)
            cpu[name].append(cpu_seconds(worker) - before)
            return seconds

        for server in (a, b):  # warm up
            api(server)
        hand, push, raw_s = h.alternate(runs, lambda: timed(a, "A"), lambda: timed(b, "B"), raw, settle=settle)
    h.table(f"Row {row}: {mb} MiB upload ({runs} runs, median s)",
            ["measure", "A hand-written", "B multipart", "B/A", "raw"],
            [("wall s", h.median(hand), h.median(push), f"{h.median(push) / h.median(hand):.3f}", h.median(raw_s)),
             ("worker CPU s", h.median(cpu["A"]), h.median(cpu["B"]),
              f"{h.median(cpu['B']) / h.median(cpu['A']):.3f}", "")])
    print(f"  wall A {[round(x, 3) for x in hand]}\n  wall B {[round(x, 3) for x in push]}"
          f"\n  wall raw {[round(x, 3) for x in raw_s]}"
          f"\n  cpu A {[round(x, 3) for x in cpu['A']]}\n  cpu B {[round(x, 3) for x in cpu['B']]}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rows", default="1,2,3")
    args = parser.parse_args()
    for row in (int(r) for r in args.rows.split(",")):
        measure(row, args.mb, args.runs)


if __name__ == "__main__":
    main()
