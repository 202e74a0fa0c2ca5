"""Reads go to the replica, writes and reads-after-write to the primary.

A request starts unpinned; the first write (or any read inside a transaction) pins the rest
of that request to the primary, so a client never reads a stale copy of what it just wrote.
Outside requests (tasks, commands) reads use the primary: they usually act on what they read.
"""
from __future__ import annotations

from contextvars import ContextVar, Token

from django.db import connections

PRIMARY = "default"
REPLICA = "replica"

_state: ContextVar[str] = ContextVar("db_routing", default="primary")


def start_request() -> Token:
    return _state.set("replica")


def end_request(token: Token) -> None:
    _state.reset(token)


def pin_primary() -> None:
    _state.set("primary")


class PrimaryReplicaRouter:
    def db_for_read(self, model, **hints) -> str:  # noqa: ANN001 - Django router protocol
        if _state.get() != "replica" or connections[PRIMARY].in_atomic_block:
            return PRIMARY
        return REPLICA

    def db_for_write(self, model, **hints) -> str:  # noqa: ANN001
        pin_primary()
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints) -> bool:  # noqa: ANN001
        return True

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints) -> bool:
        return db == PRIMARY
