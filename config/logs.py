"""Log records that carry their request: the request id, organization, user and route.

`LOG_FORMAT=json` writes one JSON object per line (`JsonFormatter`) from the web server, the Celery
worker and beat alike; `plain` (the default) keeps the human format. The fields of the request a
record was logged in come from a context variable the request's middleware sets and the layers
above fill in (`bind`): `accounts` names the organization and user once it knows them.
"""
from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
_context_var: ContextVar[dict[str, Any] | None] = ContextVar("log_context", default=None)

# LogRecord attributes that are not extra fields.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_CONTEXT_FIELDS = ("organization", "user", "route", "task")


def start_context() -> object:
    """A fresh context for one request or task; give the token to `end_context`."""
    return _context_var.set({})


def end_context(token: object) -> None:
    _context_var.reset(token)


def bind(**fields: Any) -> None:
    """Add fields to every record logged in the current request or task (no-op outside one)."""
    context = _context_var.get()
    if context is not None:
        context.update(fields)


def context() -> dict[str, Any]:
    return dict(_context_var.get() or {})


class ContextFilter(logging.Filter):
    """Puts the request id and the bound fields on every record (`-` where unknown, for plain)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        bound = _context_var.get() or {}
        for name in _CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, bound.get(name))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request's fields and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and value is not None and value != "-":
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def logging_config(*, level: str, fmt: str) -> dict:
    """Django's LOGGING (also applied by Celery's worker and beat, config/celery.py)."""
    formatters = {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "config.logs.JsonFormatter"},
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "config.logs.ContextFilter"}},
        "formatters": formatters,
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": fmt, "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "INFO"},
            # One line per request; in plain format gunicorn's access log already says it.
            "mediastore.access": {"level": "INFO" if fmt == "json" else "WARNING"},
        },
    }
