"""`GET /v1/media/{id}` under load vs `/healthz` on the same server: requests per second with wrk.

    .venv/bin/python bench/bench_detail_load.py [--seconds 10] [--connections 16] [--rounds 2]

Row 8 of docs/benchmarks.md (target: the detail endpoint serves >= 50 % of /healthz's
requests per second). One gunicorn with 2 gthread workers x 4 threads (`manage.py serve` had 4),
PostgreSQL, local backend; wrk (2 threads, `--connections` keep-alive connections) loads
each endpoint for `--seconds`, alternating, `--rounds` times; the medians are compared.
`/healthz` answers a constant through Django's middleware; the detail endpoint authenticates
the API key, reads the row and presigns a URL.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

import _harness as h

# Where a request thread's time goes (see _harness.top_functions): the steps of a detail
# request, then Django and DRF around them, then gunicorn's own HTTP work.
FOCUS = ["authenticate", "media_get", "completed_if_arrived", "MediaOutput.media", "rendered_content",
         "initial", "finalize_response", "dispatch", "WSGIHandler.__call__", "ThreadWorker.handle_request"]


def wrk(server: h.Server, path: str, *, seconds: int, connections: int, key: str = "") -> float:
    exe = shutil.which("wrk")
    if exe is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    cmd = [exe, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if key:
        cmd += ["-H", f"Authorization: Bearer {key}"]
    out = subprocess.run([*cmd, server.url + path], capture_output=True, text=True, check=True,
                         timeout=seconds + 30).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors on {path}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", type=Path, default=None, help="record one loaded worker with py-spy into DIR")
    args = parser.parse_args()
    env = h.environment(backend="local")
    h.migrate(env)
    account = h.account_in(env, "bench-load")
    h.media_dir_reset()
    with h.gunicorn(env, workers=2, threads=4) as server:
        reply = h.upload(server, "/v1/media/upload", account.key, [h.opaque(4096)],
                         before={"prompt": "a cat at dawn", "model": "sdxl", "provider": "stability"})
        media_id = reply.json()["id"]
        detail = f"/v1/media/{media_id}"
        wrk(server, "/healthz", seconds=2, connections=args.connections)  # warm up every thread
        wrk(server, detail, seconds=2, connections=args.connections, key=account.key)
        health, media = h.alternate(
            args.rounds, lambda: wrk(server, "/healthz", seconds=args.seconds, connections=args.connections),
            lambda: wrk(server, detail, seconds=args.seconds, connections=args.connections, key=account.key))
        if args.profile is not None:
            out = args.profile / "detail-load.txt"
            with h.py_spy(server.workers()[0], out):
                wrk(server, detail, seconds=args.seconds, connections=args.connections, key=account.key)
            h.table(f"py-spy, one worker under load ({out}): share of samples by leaf frame", ["frame", "%"],
                    [(frame, f"{share:.1f}") for frame, share in h.top_frames(out, 15)])
            h.table("... and the request threads' samples by step",
                    ["function", "%"], [(f, f"{p:.1f}") for f, p in h.top_functions(out, FOCUS, 12)])
    h.media_dir_reset()
    share = h.median(media) / h.median(health)
    h.table(f"Row 8: requests per second, gunicorn 2 workers x 4 threads, wrk -t2 -c{args.connections}, "
            f"{args.seconds} s x {args.rounds}",
            ["endpoint", "req/s (median)", "samples", "share of /healthz", "target", "verdict"],
            [("/healthz", f"{h.median(health):.0f}", [round(x) for x in health], "", "", ""),
             ("/v1/media/{id}", f"{h.median(media):.0f}", [round(x) for x in media], f"{share:.0%}", ">= 50 %",
              "met" if share >= 0.5 else "NOT met")])


if __name__ == "__main__":
    main()
