"""Many small uploads: files per second through `POST /v1/media/upload` vs writing and fsyncing them.

    .venv/bin/python bench/bench_small_files.py [--files 160] [--size-kib 256] [--in-flight 8] [--rounds 3]

The small-files row of docs/benchmarks.md (issue 17; targets: >= 25 % of the raw files/s on
PostgreSQL + local storage, and on the embedded default SQLite + `MEDIA_ENCRYPTION=app`, 3 x the
53 files/s measured before). Two servers run side by side, each gunicorn with 2 gthread workers
x 8 threads: one on the bench PostgreSQL database without encryption, one on a SQLite file with
app encryption, both on the local backend. `--in-flight` client threads upload `--files` files of
random bytes (each distinct, so nothing deduplicates), a new connection per upload; raw: the
same number of threads write the same files into the same media folder and `fsync` each. The
three are measured in turn, `--rounds` times, after `sync` and a second of quiet; medians compared.
`--profile DIR` records one PostgreSQL worker with py-spy during an extra round.
"""
from __future__ import annotations

import argparse
import os
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _harness as h

FOCUS = ["authenticate", "check_throttles", "media_store_form", "reserve", "_write_all", "fsync", "Digest",
         "sniff", "EncryptingReader", "atomic", "MediaOutput.media", "rendered_content", "WSGIHandler.__call__",
         "ThreadWorker.handle_request"]


def payloads(files: int, size: int) -> list[bytes]:
    return [h.opaque(size) for _ in range(files)]


def raw(files: list[bytes], in_flight: int) -> float:
    folder = h.MEDIA_ROOT / "raw"
    folder.mkdir(parents=True, exist_ok=True)

    def write(data: bytes) -> None:
        fd = os.open(folder / uuid.uuid4().hex, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    began = time.perf_counter()
    with ThreadPoolExecutor(in_flight) as pool:
        list(pool.map(write, files))
    return len(files) / (time.perf_counter() - began)


CPU: dict[str, list[float]] = {}  # per server: its workers' CPU milliseconds per file, per measure


def workers_cpu(server: h.Server) -> float:
    """User + system seconds the server's workers have used so far."""
    ticks = 0
    for pid in server.workers():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def api(server: h.Server, key: str, files: list[bytes], in_flight: int) -> float:
    cpu_before = workers_cpu(server)
    rate = _api(server, key, files, in_flight)
    CPU.setdefault(server.url, []).append(1000 * (workers_cpu(server) - cpu_before) / len(files))
    return rate


def _api(server: h.Server, key: str, files: list[bytes], in_flight: int) -> float:
    def send(data: bytes) -> None:
        reply = h.upload(server, "/v1/media/upload", key, [data], filename="small.bin")
        if reply.status != 201:
            raise SystemExit(f"upload answered {reply.status}: {reply.body[:300]!r}")

    began = time.perf_counter()
    with ThreadPoolExecutor(in_flight) as pool:
        list(pool.map(send, files))
    return len(files) / (time.perf_counter() - began)


def embedded_env() -> dict[str, str]:
    """The embedded default: a SQLite file, app encryption (as `make run` has them)."""
    database = h.BENCH_DIR / "small-files.sqlite3"
    return h.environment(backend="local", encryption="app", DATABASE_URL=f"sqlite:///{database}",
                         MEDIA_CONCURRENT_UPLOADS_PER_ORG="64")


def main() -> None:
    import subprocess

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=160)
    parser.add_argument("--size-kib", type=int, default=256)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=Path, default=None, help="record one PostgreSQL worker with py-spy into DIR")
    args = parser.parse_args()
    postgres = h.environment(backend="local", MEDIA_CONCURRENT_UPLOADS_PER_ORG="64")
    embedded = embedded_env()
    h.migrate(postgres)
    h.BENCH_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run([h.PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=h.ROOT, env=embedded, check=True,
                   timeout=600)
    pg_account = h.account_in(postgres, "bench-small")
    embedded_account = h.account_in(embedded, "bench-small")
    h.media_dir_reset()
    size = args.size_kib * 1024

    def settle() -> None:
        h.stored_objects_remove()
        shutil.rmtree(h.MEDIA_ROOT / "raw", ignore_errors=True)
        h.disk_settle()

    with h.gunicorn(postgres, workers=2, threads=8) as pg_server, h.gunicorn(embedded, workers=2, threads=8) as emb:
        pg_url, emb_url = pg_server.url, emb.url
        api(pg_server, pg_account.key, payloads(args.in_flight, size), args.in_flight)  # warm up every thread
        api(emb, embedded_account.key, payloads(args.in_flight, size), args.in_flight)
        raw_fs, pg_fs, emb_fs = h.alternate(
            args.rounds,
            lambda: raw(payloads(args.files, size), args.in_flight),
            lambda: api(pg_server, pg_account.key, payloads(args.files, size), args.in_flight),
            lambda: api(emb, embedded_account.key, payloads(args.files, size), args.in_flight),
            settle=settle)
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            for name, server, account in (("postgres", pg_server, pg_account), ("embedded", emb, embedded_account)):
                out = args.profile / f"small-files-{name}.txt"
                with h.py_spy(server.workers()[0], out):
                    api(server, account.key, payloads(args.files * 2, size), args.in_flight)
                h.table(f"py-spy, one {name} worker ({out}): request threads' samples by step", ["function", "%"],
                        [(f, f"{p:.1f}") for f, p in h.top_functions(out, FOCUS, 14)])
                h.table("... and by leaf frame", ["frame", "%"], [(f, f"{p:.1f}") for f, p in h.top_frames(out, 15)])
    h.media_dir_reset()
    raw_median = h.median(raw_fs)
    rows = [("write + fsync (raw)", f"{raw_median:.0f}", [round(x) for x in raw_fs], "", "", "")]
    for name, samples, target, ok in (
            ("API, PostgreSQL + local", pg_fs, ">= 25 % of raw", h.median(pg_fs) >= 0.25 * raw_median),
            ("API, SQLite + app encryption", emb_fs, ">= 159 files/s (3 x 53)", h.median(emb_fs) >= 159)):
        rows.append((name, f"{h.median(samples):.0f}", [round(x) for x in samples],
                     f"{h.median(samples) / raw_median:.0%}", target, "met" if ok else "NOT met"))
    h.table("Worker CPU per file (user + system, all workers), median of the measures",
            ["server", "ms per file", "samples"],
            [(name, f"{h.median(CPU[url][1:]):.1f}", [round(x, 1) for x in CPU[url][1:]])
             for name, url in (("PostgreSQL + local", pg_url), ("SQLite + app encryption", emb_url))])
    h.table(f"Small files: {args.files} x {args.size_kib} KiB, {args.in_flight} in flight, gunicorn 2 workers x 8 "
            f"threads, {args.rounds} rounds (load average {os.getloadavg()[0]:.1f})",
            ["side", "files/s (median)", "samples", "of raw", "target", "verdict"], rows)


if __name__ == "__main__":
    main()
