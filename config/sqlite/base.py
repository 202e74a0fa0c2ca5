"""Django's SQLite backend, with the threads of one process taking turns for write transactions.

The embedded default runs every transaction as `BEGIN IMMEDIATE` (config/settings.py), so a second
writer waits for the first. SQLite makes it wait by sleeping and trying again (1, 2, 5, 10, ... 100 ms
between tries, up to the `timeout`), and under many small uploads most of a thread's time went to
those sleeps while the lock sat free (docs/benchmarks.md, row 12). Here the threads of a process
queue on a lock of their own before `BEGIN IMMEDIATE`: the next one starts the moment the last
commits. Other processes (the second web worker, the job worker, beat) still meet SQLite's own
waiting, one contender per process instead of one per thread. A thread that cannot have the lock
within the connection's `timeout` fails as SQLite would ("database is locked").
"""
from __future__ import annotations

import threading

from django.db import OperationalError
from django.db.backends.sqlite3 import base

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _writer_lock(name: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(name, threading.Lock())


class DatabaseWrapper(base.DatabaseWrapper):
    _held: threading.Lock | None = None  # the writer lock while this connection is in a transaction

    def _start_transaction_under_autocommit(self) -> None:
        if self.is_in_memory_db():  # one shared connection: nothing to take turns with
            super()._start_transaction_under_autocommit()
            return
        lock = _writer_lock(str(self.settings_dict["NAME"]))
        if not lock.acquire(timeout=float(self.settings_dict["OPTIONS"].get("timeout", 5))):
            raise OperationalError("database is locked")
        self._held = lock
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_writer_lock()
            raise

    def _release_writer_lock(self) -> None:
        lock, self._held = self._held, None
        if lock is not None:
            lock.release()

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._release_writer_lock()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._release_writer_lock()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self._release_writer_lock()
