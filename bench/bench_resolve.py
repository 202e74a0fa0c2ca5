"""`POST /v1/media/resolve` with 100 ids, in process: SQL queries and time per request.

    .venv/bin/python bench/bench_resolve.py [--runs 200]

Row 6 of docs/benchmarks.md (target: 1 SQL query for the files, <= 40 ms). Django's test
client calls the whole stack in this process (middleware, API-key authentication, the view,
presigning 100 URLs, JSON rendering), against the bench PostgreSQL database, once with the
local backend (app-signed URLs) and once with the S3 backend (SigV4 presigned URLs; signing
needs no S3 server). "raw" is the one query alone (the ORM call of `media_resolve`, 100 rows
fetched), for scale.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import _harness as h


def child(backend: str, runs: int) -> None:
    """Runs in a child process: Django is configured once per process."""
    extra = {"s3_endpoint": "http://127.0.0.1:9", "bucket": "bench"} if backend == "s3" else {}
    h.django_setup(h.environment(backend=backend, **extra))
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.principal import Principal
    from media_app.models import MediaFile
    from media_app.selectors import media_resolve

    account = h.account(f"bench-resolve-{backend}")
    ids = h.image_rows(account, 100)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {account.key}", HTTP_HOST="127.0.0.1")
    body = json.dumps({"ids": ids})

    def call() -> float:
        began = time.perf_counter()
        response = client.post("/v1/media/resolve", body, content_type="application/json")
        seconds = time.perf_counter() - began
        assert response.status_code == 200 and len(response.json()["media"]) == 100, response.content[:300]
        return seconds

    for _ in range(10):
        call()
    with CaptureQueriesContext(connection) as captured:
        call()
    queries = [q["sql"] for q in captured.captured_queries]
    files_queries = [sql for sql in queries if "media_app_mediafile" in sql]
    times = [call() for _ in range(runs)]
    from accounts.models import Organization

    principal = Principal(user=MediaFile.objects.filter(pk=ids[0]).get().owner,
                          organization=Organization.objects.get(pk=account.organization_id), role="owner",
                          is_service=False)
    query_times = []
    for _ in range(runs):
        began = time.perf_counter()
        media_resolve(principal, ids)
        query_times.append(time.perf_counter() - began)
    print(json.dumps({"backend": backend, "p50": statistics.median(times), "p90": statistics.quantiles(times, n=10)[-1],
                      "queries": len(queries), "file_queries": len(files_queries),
                      "query_p50": statistics.median(query_times)}))


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
        ok = result["file_queries"] == 1 and result["p50"] <= 0.040
        rows.append((backend, f"{result['p50'] * 1000:.1f}", f"{result['p90'] * 1000:.1f}",
                     f"{result['query_p50'] * 1000:.1f}", result["file_queries"], result["queries"],
                     "1 query, <= 40 ms", "met" if ok else "NOT met"))
    h.table(f"Row 6: POST /v1/media/resolve, 100 ids, in process ({args.runs} runs)",
            ["backend", "p50 ms", "p90 ms", "query alone ms", "file queries", "all queries", "target", "verdict"],
            rows)
    print("  all queries = the API key (with user, organization, plan and role) + the files")


if __name__ == "__main__":
    main()
