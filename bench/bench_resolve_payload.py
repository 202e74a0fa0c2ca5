"""`POST /v1/media/resolve` with a chat payload of 100 references vs the same 100 ids, in process.

    .venv/bin/python bench/bench_resolve_payload.py [--runs 200]

Row 9 of docs/benchmarks.md (target: the payload form costs at most 1.5 x the ids form, and one
SQL query for the files). Django's test client calls the whole stack in this process, against
the bench PostgreSQL database, with the local backend (app-signed URLs) and with S3 (SigV4
presigned URLs; signing needs no server). The payload is an OpenAI chat request whose one user
message holds 100 `image_url` parts, each a media id, resolved with `"format": "openai"` into
native parts with signed URLs; the ids form asks for the same 100 ids. The two requests
alternate (A B A B ...) in the same process, so load on the machine hits both alike.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import _harness as h

TARGET = 1.5


def child(backend: str, runs: int) -> None:
    """Runs in a child process: Django is configured once per process."""
    extra = {"s3_endpoint": "http://127.0.0.1:9", "bucket": "bench"} if backend == "s3" else {}
    h.django_setup(h.environment(backend=backend, **extra))
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext


    account = h.account(f"bench-resolve-payload-{backend}")
    ids = h.image_rows(account, 100)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {account.key}", HTTP_HOST="127.0.0.1")
    ids_body = json.dumps({"ids": ids})
    content = [{"type": "text", "text": "Which of these images show a cat?"}]
    content += [{"type": "image_url", "image_url": {"url": i, "detail": "low"}} for i in ids]
    payload_body = json.dumps({"format": "openai", "payload": {"model": "gpt-4o", "messages": [
        {"role": "system", "content": "You are a careful image classifier."},
        {"role": "user", "content": content}]}})

    def ids_call() -> float:
        began = time.perf_counter()
        response = client.post("/v1/media/resolve", ids_body, content_type="application/json")
        seconds = time.perf_counter() - began
        assert response.status_code == 200 and len(response.json()["media"]) == 100, response.content[:300]
        return seconds

    def payload_call() -> float:
        began = time.perf_counter()
        response = client.post("/v1/media/resolve", payload_body, content_type="application/json")
        seconds = time.perf_counter() - began
        parts = response.json()["payload"]["messages"][1]["content"]
        assert response.status_code == 200 and parts[100]["image_url"]["url"].startswith("http"), response.content[:300]
        return seconds

    for _ in range(10):
        ids_call(), payload_call()
    with CaptureQueriesContext(connection) as captured:
        payload_call()
    queries = [q["sql"] for q in captured.captured_queries]  # now: the log is a bounded deque
    file_queries = [sql for sql in queries if "media_app_mediafile" in sql]
    ids_times, payload_times = h.alternate(runs, ids_call, payload_call)
    print(json.dumps({"backend": backend, "ids_p50": statistics.median(ids_times),
                      "payload_p50": statistics.median(payload_times), "file_queries": len(file_queries),
                      "queries": len(queries)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--child", default="")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.runs)
        return
    env = h.environment()
    h.migrate(env)
    rows = []
    for backend in ("local", "s3"):
        out = subprocess.run([sys.executable, __file__, "--child", backend, "--runs", str(args.runs)], env=env,
                             check=True, capture_output=True, text=True, timeout=600).stdout
        result = json.loads(out.strip().splitlines()[-1])
        ratio = result["payload_p50"] / result["ids_p50"]
        ok = result["file_queries"] == 1 and ratio <= TARGET
        rows.append((backend, f"{result['payload_p50'] * 1000:.1f}", f"{result['ids_p50'] * 1000:.1f}",
                     f"{ratio:.2f}", result["file_queries"], result["queries"], f"<= {TARGET} x, 1 query",
                     "met" if ok else "NOT met"))
    h.table(f"Row 10: POST /v1/media/resolve, chat payload with 100 references vs 100 ids, in process ({args.runs} runs)",
            ["backend", "payload p50 ms", "ids p50 ms", "payload / ids", "file queries", "all queries", "target",
             "verdict"], rows)


if __name__ == "__main__":
    main()
