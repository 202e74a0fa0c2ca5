"""A 256 px WebP thumbnail through `/v1/media/{id}/content?width=256&format=webp` vs `vipsthumbnail`.

    .venv/bin/python bench/bench_transform.py [--runs 5]

Row 9 of docs/benchmarks.md, on a 4096x4096 JPEG and a 2048x2048 PNG (photo-like: gradients
and noise), local backend, one gunicorn gthread worker, `MEDIA_PROXY_DOWNLOAD=true`:
- first request: the variant row and object are removed before each run, so the app reads the
  original, renders, stores and serves (target <= 2 x `vipsthumbnail` on the same stored file,
  a process per run, as an operator would script it: Debian's libvips-tools);
- second request: served from the stored variant (target <= 1.3 x `/content` of an original
  of the variant's byte size, stored the same way), 20 x `--runs` samples each, alternating.
For the choice of library, the render alone is also timed in this process: libvips
(`pyvips.Image.thumbnail_buffer`) and Pillow with `draft()` (JPEG DCT scaling) and `reduce()`.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import time
from pathlib import Path

import _harness as h

THUMB = "/v1/media/{id}/content?width=256&format=webp"


def sources(directory: Path) -> list[tuple[str, Path]]:
    """Photo-like sources, made by libvips: a colour gradient with gaussian noise."""
    import pyvips

    made = []
    for name, size, suffix in (("JPEG 4096x4096", 4096, ".jpg[Q=90]"), ("PNG 2048x2048", 2048, ".png")):
        xy = pyvips.Image.xyz(size, size)
        x, y = xy[0] * (255 / size), xy[1] * (255 / size)
        image = (x.bandjoin([y, (x + y) / 2]) + pyvips.Image.gaussnoise(size, size, sigma=12)).cast("uchar")
        path = directory / f"source-{size}{suffix.split('[')[0]}"
        image.write_to_file(str(directory / f"source-{size}{suffix}"))
        made.append((name, path))
    return made


def variants_forget(organization_id: int) -> None:
    """Remove every variant (rows and objects), so the next request renders again."""
    import psycopg

    with psycopg.connect(h.DATABASE_URL, autocommit=True) as conn:
        conn.execute("DELETE FROM media_app_mediavariant")
    shutil.rmtree(h.MEDIA_ROOT / "organizations" / str(organization_id) / "variants", ignore_errors=True)


def timed_get(server: h.Server, key: str, path: str) -> float:
    reply = h.download(server, path, key)
    if reply.status != 200:
        raise SystemExit(f"GET {path} failed: {reply.status}")
    return reply.seconds


def vipsthumbnail(source: Path, out: Path) -> float:
    began = time.perf_counter()
    subprocess.run(["vipsthumbnail", str(source), "-s", "256", "-o", f"{out}[Q=80,strip]"], check=True, timeout=120)
    return time.perf_counter() - began


def stored(server: h.Server, key: str, data: bytes, name: str) -> dict:
    reply = h.upload(server, "/v1/media/upload", key, [data], filename=name)
    if reply.status != 201:
        raise SystemExit(f"upload failed: {reply.status} {reply.body[:300]!r}")
    return reply.json()


def stored_path(media: dict) -> Path:
    return next(p for p in h.MEDIA_ROOT.rglob("*") if p.is_file() and p.stat().st_size == media["bytes"]
                and "variants" not in p.parts)


def library_times(data: bytes, runs: int) -> tuple[float, float]:
    """The render alone, in process: (libvips, Pillow draft + reduce)."""
    import pyvips
    from PIL import Image

    def vips() -> float:
        began = time.perf_counter()
        pyvips.Image.thumbnail_buffer(data, 256, height=256, size="down").webpsave_buffer(Q=80, keep="none")
        return time.perf_counter() - began

    def pillow() -> float:
        began = time.perf_counter()
        image = Image.open(io.BytesIO(data))
        image.draft("RGB", (256, 256))  # JPEG: decode at 1/2, 1/4 or 1/8 scale
        image = image.convert("RGB")
        image.thumbnail((256, 256), Image.Resampling.LANCZOS, reducing_gap=2.0)  # reduce() first, then resample
        image.save(io.BytesIO(), "WEBP", quality=80)
        return time.perf_counter() - began

    vips(), pillow()
    sampled = h.alternate(runs, vips, pillow)
    return h.median(sampled[0]), h.median(sampled[1])


def run(runs: int) -> tuple[list[tuple], list[tuple]]:
    env = h.environment(backend="local", proxy_download=True, LOG_LEVEL="warning")
    h.migrate(env)
    account = h.account_in(env)
    h.media_dir_reset()
    work = h.BENCH_DIR / "transform"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rows, library = [], []
    with h.gunicorn(env, workers=1) as server:
        for name, source in sources(work):
            data = source.read_bytes()
            media = stored(server, account.key, data, source.name)
            original = stored_path(media)
            path = THUMB.format(id=media["id"])

            def first() -> float:
                variants_forget(account.organization_id)
                return timed_get(server, account.key, path)

            timed_get(server, account.key, path)  # warm up: imports, libvips' first use
            vipsthumbnail(original, work / "out.webp")
            variant_bytes = h.download(server, path, account.key).body
            same_size = stored(server, account.key, os.urandom(int(variant_bytes)), "same-size.bin")
            plain = f"/v1/media/{same_size['id']}/content"
            timed_get(server, account.key, plain)
            cli, render = h.alternate(runs, lambda: vipsthumbnail(original, work / "out.webp"), first)
            timed_get(server, account.key, path)  # stored again after the last `first`
            # Requests of a few milliseconds on a shared machine: many more samples.
            cached, raw = h.alternate(runs * 20, lambda: timed_get(server, account.key, path),
                                      lambda: timed_get(server, account.key, plain))
            rows.append((name, len(data), int(variant_bytes), cli, render, cached, raw))
            library.append((name, *library_times(data, runs)))
    h.media_dir_reset()
    shutil.rmtree(work, ignore_errors=True)
    return rows, library


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("vipsthumbnail") is None:
        raise SystemExit("vipsthumbnail is missing: apt-get install -y libvips-tools")
    rows, library = run(args.runs)
    med = h.median
    h.table(f"Row 9: 256 px WebP thumbnail, first request (render) vs vipsthumbnail ({args.runs} runs, median s)",
            ["source", "bytes", "app first s", "vipsthumbnail s", "app/vips", "target", "verdict"],
            [(name, size, med(render), med(cli), f"{med(render) / med(cli):.2f}", "<= 2",
              h.verdict(med(render) / med(cli), 2)) for name, size, _, cli, render, _, _ in rows])
    h.table("Row 9: second request (stored variant) vs /content of an original of the same byte size",
            ["source", "variant bytes", "app cached s", "original s", "cached/original", "target", "verdict"],
            [(name, vbytes, med(cached), med(raw), f"{med(cached) / med(raw):.2f}", "<= 1.3",
              h.verdict(med(cached) / med(raw), 1.3)) for name, _, vbytes, _, _, cached, raw in rows])
    h.table("The render alone, in process (library choice)",
            ["source", "libvips s", "Pillow draft+reduce s", "Pillow/libvips"],
            [(name, vips, pil, f"{pil / vips:.2f}") for name, vips, pil in library])
    for name, _, _, cli, render, cached, raw in rows:
        print(f"  {name}: vipsthumbnail {[round(x, 3) for x in cli]}  first {[round(x, 3) for x in render]}  "
              f"cached p90 {sorted(cached)[len(cached) * 9 // 10]:.4f}  original p90 {sorted(raw)[len(raw) * 9 // 10]:.4f}")


if __name__ == "__main__":
    main()
