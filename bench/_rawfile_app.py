"""The download benchmark's raw baseline: a bare WSGI app that serves the files of one folder
through `wsgi.file_wrapper` (so gunicorn sends them with sendfile), with no Django at all.

    GET /<path relative to BENCH_RAW_ROOT>
"""
from __future__ import annotations

import os

ROOT = os.environ.get("BENCH_RAW_ROOT", "")


def application(environ, start_response):  # noqa: ANN001, ANN201 - the WSGI signature
    path = os.path.realpath(os.path.join(ROOT, environ["PATH_INFO"].lstrip("/")))
    if not ROOT or not path.startswith(os.path.realpath(ROOT) + os.sep) or not os.path.isfile(path):
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    handle = open(path, "rb")  # closed by the server's file wrapper
    size = os.fstat(handle.fileno()).st_size
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
    return environ["wsgi.file_wrapper"](handle, 1024 * 1024)
