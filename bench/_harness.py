"""What the benchmarks share: their environment, a gunicorn server, a moto S3 server, the bench
database and API keys, an HTTP client that streams, timers, RSS sampling, py-spy, tables.

Everything listens on 127.0.0.1. Every process started here is stopped by the context manager
that started it, also on failure or Ctrl-C, and every run has a deadline, so a benchmark always
stops by itself. Files go under `var/bench/` (on the same disk as the default media root).

Environment knobs (all optional):
    BENCH_DATABASE_URL   default postgres://postgres@127.0.0.1:5432/mediastore_bench (created if missing)
    BENCH_DIR            default var/bench
"""
from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(os.environ.get("BENCH_DIR", ROOT / "var" / "bench")).resolve()
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mediastore_bench")
MEDIA_ROOT = BENCH_DIR / "media"
MIB = 1024 * 1024
GIB = 1024 * MIB
PYTHON = sys.executable
# A fixed key: the bench encrypts throwaway bytes, nothing here needs to stay secret.
MASTER_KEYS = "bench:" + base64.b64encode(bytes(range(32))).decode()
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}

sys.path.insert(0, str(ROOT))


# -- environment ------------------------------------------------------------------------------
def environment(*, backend: str = "local", encryption: str = "none", s3_endpoint: str = "", bucket: str = "",
                proxy_download: bool = True, **extra: str) -> dict[str, str]:
    """The server's (and this process's) settings for one configuration."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("MEDIA_", "DATABASE_", "R2_", "DB_POSTGRESQL", "REDIS_URL", "CELERY_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789",
        "MEDIASTORE_VAR_DIR": str(BENCH_DIR / "var"),
        "DATABASE_URL": DATABASE_URL,
        "DATABASE_CONN_MAX_AGE": "600",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "warning",
        "MEDIA_MAX_BYTES": str(2 * GIB),
        "MEDIA_ENCRYPTION": encryption,
        "MEDIA_MASTER_KEYS": MASTER_KEYS,
        "MEDIA_STORAGE_BACKEND": backend,
        "MEDIA_LOCAL_STORAGE_PATH": str(MEDIA_ROOT),
        "MEDIA_PROXY_DOWNLOAD": "true" if proxy_download else "false",
        "CELERY_TASK_ALWAYS_EAGER": "true",
    })
    if backend == "s3":
        env.update({"MEDIA_S3_BUCKET": bucket, "MEDIA_S3_ENDPOINT": s3_endpoint, "MEDIA_S3_USE_PATH_STYLE": "true",
                    "MEDIA_S3_ACCESS_KEY_ID": S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    "MEDIA_S3_SECRET_ACCESS_KEY": S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]})
    env.update(extra)
    return env


def django_setup(env: dict[str, str]) -> None:
    """Configure Django in this process exactly as the server will be."""
    os.environ.clear()
    os.environ.update(env)
    import django

    django.setup()


def database_ensure() -> None:
    """Create the bench database if it is missing (never the `test` database)."""
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[-1]
    admin = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def migrate(env: dict[str, str]) -> None:
    database_ensure()
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True,
                   timeout=600)


@dataclass(frozen=True)
class Account:
    organization_id: int
    user_id: int
    key: str  # a user key of the bench user
    service_key: str


def account(slug: str = "bench") -> Account:
    """An organization on a plan with room for gigabytes, its owner and two keys (needs django_setup)."""
    from django.contrib.auth import get_user_model

    from accounts.models import Membership, Organization
    from accounts.services import api_key_create, membership_add, organization_create
    from quotas.models import Plan, Quota

    Plan.objects.update_or_create(slug="bench", defaults={
        "name": "Bench", "storage_limit_bytes": 1 << 50, "max_file_bytes": 4 * GIB, "allow_keep_forever": True,
        # No request-rate limit (0): the load rows send thousands of requests a second with one key.
        "requests_per_minute": 0, "organization_requests_per_minute": 0})
    org = Organization.objects.filter(slug=slug).first() or organization_create(name=slug, slug=slug, plan_slug="bench")
    Quota.objects.filter(organization=org).update(used_bytes=0, reserved_bytes=0, file_count=0)
    user, _ = get_user_model().objects.get_or_create(username=f"{slug}-user")
    membership_add(organization=org, user=user, role=Membership.Role.OWNER)
    key = api_key_create(organization=org, user=user, name="bench").secret
    service = api_key_create(organization=org, user=user, kind="service", name="bench-service").secret
    return Account(organization_id=org.pk, user_id=user.pk, key=key, service_key=service)




def opaque(size: int) -> bytes:
    """`size` random bytes behind fixed first bytes: random ones alone now and then begin with a
    known signature ("MZ" once in 65,536 files: refused as an executable; "BM": a broken image)."""
    prefix = b"\x00bench\x00\x00"
    return prefix + os.urandom(size - len(prefix))

def image_rows(account: Account, count: int) -> list[str]:
    """`count` active PNG rows of `account`'s organization (rows only, no objects), replacing its
    others; their ids (needs django_setup)."""
    from media_app.ids import media_id_new
    from media_app.models import MediaFile

    org, user = account.organization_id, account.user_id
    MediaFile.objects.filter(organization_id=org).delete()
    ids = [media_id_new() for _ in range(count)]
    MediaFile.objects.bulk_create([MediaFile(
        id=i, organization_id=org, owner_id=user, status="active",
        storage_key=f"organizations/{org}/files/{user}/img_{n}_20260101_000000_{i[-8:]}.png",
        original_name=f"img {n}.png", mime="image/png", bytes=1000 + n, sha256=os.urandom(32).hex(), media_kind="image",
    ) for n, i in enumerate(ids)])
    return ids

def account_in(env: dict[str, str], slug: str = "bench") -> Account:
    """`account()` run in a child process, for scripts that keep this process free of Django."""
    code = ("import json, sys; sys.path.insert(0, '.'); import django; django.setup(); "
            "from bench._harness import account; a = account(%r); print(json.dumps(a.__dict__))" % slug)
    out = subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True,
                         timeout=120).stdout
    return Account(**json.loads(out.strip().splitlines()[-1]))


# -- processes --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within {timeout:.0f}s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@dataclass
class Server:
    url: str
    port: int
    proc: subprocess.Popen

    def workers(self) -> list[int]:
        """Pids of the gunicorn workers (children of the master)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    pids.append(int(entry.name))
        return sorted(pids)


@contextlib.contextmanager
def gunicorn(env: dict[str, str], *, workers: int = 1, threads: int = 4,
             app: str = "config.wsgi:application") -> Iterator[Server]:
    """`config.wsgi` under gunicorn's gthread workers, as `manage.py serve` and the image run it."""
    port = free_port()
    cmd = [PYTHON, "-m", "gunicorn", app, "--pythonpath", str(ROOT / "bench"), "--bind", f"127.0.0.1:{port}",
           "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads),
           "--timeout", "300", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    try:
        _wait_for_port(port, proc, "gunicorn")
        server = Server(url=f"http://127.0.0.1:{port}", port=port, proc=proc)
        deadline = time.monotonic() + 30
        while len(server.workers()) < workers and time.monotonic() < deadline:
            time.sleep(0.1)
        if app == "config.wsgi:application":
            request(server, "GET", "/healthz")  # workers up and the app imported
        yield server
    finally:
        _stop(proc)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto S3 server (real HTTP, real boto3 on both sides), like the test suite's."""
    port = free_port()
    env = {**os.environ, **S3_CREDENTIALS}
    proc = subprocess.Popen([PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        _wait_for_port(port, proc, "moto")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


def s3_client(endpoint: str):  # noqa: ANN201 - boto3 client
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))


def bucket_create(endpoint: str) -> str:
    bucket = f"bench-{uuid.uuid4().hex[:10]}"
    s3_client(endpoint).create_bucket(Bucket=bucket)
    return bucket


def media_dir_reset() -> None:
    shutil.rmtree(MEDIA_ROOT, ignore_errors=True)
    MEDIA_ROOT.mkdir(parents=True, exist_ok=True)


def stored_objects_remove() -> None:
    """Remove the objects uploads left in the bench media folder (their rows stay, deleted).

    Their pages then return to the page cache's free pool: on this VM, writing into memory
    the guest never touched before is several times slower (every page is first faulted in
    by the host), so a file kept between measures would slow down the next measure's writes.
    """
    shutil.rmtree(MEDIA_ROOT / "organizations", ignore_errors=True)


# -- HTTP -------------------------------------------------------------------------------------
@dataclass
class Reply:
    status: int
    body: bytes
    seconds: float
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> dict:
        return json.loads(self.body)


def _connection(server: Server, timeout: float = 600) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout, blocksize=MIB)


def request(server: Server, method: str, path: str, *, key: str = "", body: bytes | None = None,
            headers: dict[str, str] | None = None) -> Reply:
    conn = _connection(server)
    all_headers = {"Authorization": f"Bearer {key}"} if key else {}
    all_headers.update(headers or {})
    began = time.perf_counter()
    conn.request(method, path, body=body, headers=all_headers)
    response = conn.getresponse()
    data = response.read()
    seconds = time.perf_counter() - began
    conn.close()
    return Reply(response.status, data, seconds, dict(response.getheaders()))


def multipart_pieces(file_pieces: Sequence[bytes | memoryview], *, filename: str = "bench.bin",
                     before: dict[str, str] | None = None,
                     after: dict[str, str] | None = None) -> tuple[list[bytes | memoryview], int, str]:
    """A multipart/form-data body as pieces (the file's bytes are not copied), its length, its type."""
    boundary = uuid.uuid4().hex

    def field_part(name: str, value: str) -> bytes:
        return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").encode()

    head = b"".join(field_part(k, v) for k, v in (before or {}).items())
    head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
             f"Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = b"\r\n" + b"".join(field_part(k, v) for k, v in (after or {}).items()) + f"--{boundary}--\r\n".encode()
    pieces = [head, *file_pieces, tail]
    return pieces, sum(len(p) for p in pieces), f"multipart/form-data; boundary={boundary}"


def upload(server: Server, path: str, key: str, file_pieces: Sequence[bytes | memoryview], **kwargs) -> Reply:
    """POST a multipart upload, timed from the first byte sent to the whole answer read."""
    pieces, length, content_type = multipart_pieces(file_pieces, **kwargs)
    conn = _connection(server)
    began = time.perf_counter()
    conn.putrequest("POST", path)
    conn.putheader("Authorization", f"Bearer {key}")
    conn.putheader("Content-Type", content_type)
    conn.putheader("Content-Length", str(length))
    conn.endheaders()
    for piece in pieces:
        conn.sock.sendall(piece)
    response = conn.getresponse()
    data = response.read()
    seconds = time.perf_counter() - began
    conn.close()
    return Reply(response.status, data, seconds)


def download(server: Server, path: str, key: str = "", *, block: int = MIB) -> Reply:
    """GET a body into one reused buffer (nothing kept), timed to its last byte."""
    conn = _connection(server)
    buffer = bytearray(block)
    view = memoryview(buffer)
    began = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Bearer {key}"} if key else {})
    response = conn.getresponse()
    total = 0
    while n := response.readinto(view):
        total += n
    seconds = time.perf_counter() - began
    conn.close()
    return Reply(response.status, str(total).encode(), seconds, dict(response.getheaders()))


# -- measuring --------------------------------------------------------------------------------
def alternate(runs: int, *measures: Callable[[], float], settle: Callable[[], None] | None = None) -> list[list[float]]:
    """Run the measures in turn `runs` times (A B A B ...), so drift on a busy machine hits all alike.

    `settle` runs before every measure (e.g. `disk_settle`), outside the timing."""
    samples: list[list[float]] = [[] for _ in measures]
    for _ in range(runs):
        for i, measure in enumerate(measures):
            if settle is not None:
                settle()
            samples[i].append(measure())
    return samples


def disk_settle(seconds: float = 1.0) -> None:
    """Flush every dirty page and let the disk go idle, so no write is timed while the
    previous one is still being written back (a virtual disk also slows down under
    sustained writes: each measure starts from the same state)."""
    os.sync()
    time.sleep(seconds)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


class RssSampler:
    """Peak resident memory of one process while a block runs, sampled every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        self.pid, self.interval = pid, interval
        self.baseline = self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self.baseline = self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


@contextlib.contextmanager
def py_spy(pid: int, output: Path | None, *, rate: int = 250) -> Iterator[None]:
    """Record the worker with py-spy while the block runs (a no-op when `output` is None)."""
    if output is None:
        yield
        return
    exe = shutil.which("py-spy", path=str(Path(PYTHON).parent)) or shutil.which("py-spy")
    if exe is None:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    output.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", str(rate), "--threads", "--nonblocking",
                             "--format", "raw", "--output", str(output)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def top_frames(collapsed: Path, n: int = 12) -> list[tuple[str, float]]:
    """Share of samples per leaf frame of a py-spy `raw` (collapsed stacks) file."""
    counts: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        counts[leaf] = counts.get(leaf, 0) + int(count)
        total += int(count)
    ranked = sorted(counts.items(), key=lambda item: -item[1])[:n]
    return [(frame, 100 * count / total) for frame, count in ranked] if total else []


def top_functions(collapsed: Path, focus: Sequence[str], n: int = 12) -> list[tuple[str, float]]:
    """Share of a request thread's samples per `focus` function, most specific first: a stack
    counts for the first entry of `focus` it passes through (so "media_get" includes its SQL).
    A bare name (`authenticate`) matches that method of any class; `Class.name` only that one."""
    counts: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or "ThreadWorker.handle" not in stack:
            continue  # only request threads
        names = {frame.split(" (", 1)[0] for frame in stack.split(";")}
        short = {name.rsplit(".", 1)[-1] for name in names}
        hit = next((f for f in focus if f in (names if "." in f else short)), "other")
        counts[hit] = counts.get(hit, 0) + int(count)
        total += int(count)
    ranked = sorted(counts.items(), key=lambda item: -item[1])[:n]
    return [(name, 100 * count / total) for name, count in ranked] if total else []


# -- output -----------------------------------------------------------------------------------
def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for i, row in enumerate(cells):
        print("  " + "  ".join(cell.ljust(widths[j]) if j == 0 else cell.rjust(widths[j]) for j, cell in enumerate(row)))
        if i == 0:
            print("  " + "  ".join("-" * w for w in widths))
    sys.stdout.flush()


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def verdict(ratio: float, target: float) -> str:
    return "met" if ratio <= target else "NOT met"
