"""Typed reads of the environment that fail loudly, naming the variable.

Every setting has one canonical name and, where the seeds used another, aliases
(`DB_POSTGRESQL_WRITE_DSN` for `DATABASE_URL`, `R2_ENDPOINT_URL` for `MEDIA_S3_ENDPOINT`, ...).
The canonical name wins when both are set.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

from django.core.exceptions import ImproperlyConfigured

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_DOTTED_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


class Env:
    """Reads settings from a mapping (the process environment by default)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    def raw(self, name: str, aliases: Sequence[str] = ()) -> tuple[str, str] | None:
        """The (variable name, value) that is set, canonical name first."""
        for key in (name, *aliases):
            value = self.environ.get(key)
            if value is not None and value.strip() != "":
                return key, value.strip()
        return None

    def str(self, name: str, default: str = "", aliases: Sequence[str] = ()) -> str:
        found = self.raw(name, aliases)
        return found[1] if found else default

    def bool(self, name: str, default: bool = False, aliases: Sequence[str] = ()) -> bool:
        found = self.raw(name, aliases)
        if not found:
            return default
        key, value = found
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ImproperlyConfigured(f"{key}={value!r} is not a boolean (use true/false).")

    def int(self, name: str, default: int, aliases: Sequence[str] = (), minimum: int | None = 0) -> int:
        found = self.raw(name, aliases)
        if not found:
            return default
        key, value = found
        try:
            number = int(value)
        except ValueError:
            raise ImproperlyConfigured(f"{key}={value!r} is not a whole number.") from None
        if minimum is not None and number < minimum:
            raise ImproperlyConfigured(f"{key}={value!r} must be at least {minimum}.")
        return number

    def bytes(self, name: str, default: int, aliases: Sequence[str] = ()) -> int:
        """A size in plain bytes (`20971520`)."""
        found = self.raw(name, aliases)
        if not found:
            return default
        key, value = found
        if not value.isdigit() or int(value) <= 0:
            raise ImproperlyConfigured(f"{key}={value!r} is not a size in bytes (a positive whole number).")
        return int(value)

    def duration(self, name: str, default: str | float, aliases: Sequence[str] = ()) -> float:
        """Seconds from `90`, `30s`, `30m`, `1h`, `168h`, `1h30m` or `7d`."""
        found = self.raw(name, aliases)
        key, value = found if found else (name, str(default))
        seconds = parse_duration(value)
        if seconds is None:
            raise ImproperlyConfigured(
                f"{key}={value!r} is not a duration (use seconds or a value like 30s, 30m, 1h, 168h)."
            )
        return seconds

    def choice(self, name: str, choices: Sequence[str], default: str, aliases: Sequence[str] = (),
               *, or_dotted_path: bool = False) -> str:
        """One of `choices` (any case); with `or_dotted_path`, also a dotted path such as `pkg.module.Class`."""
        found = self.raw(name, aliases)
        if not found:
            return default
        key, value = found
        if value.lower() in choices:
            return value.lower()
        if or_dotted_path and _DOTTED_PATH.fullmatch(value):
            return value
        also = " or a dotted path (package.module.Class)" if or_dotted_path else ""
        raise ImproperlyConfigured(f"{key}={value!r} is not one of: {', '.join(choices)}{also}.")

    def list(self, name: str, default: Sequence[str] = (), aliases: Sequence[str] = ()) -> list[str]:
        found = self.raw(name, aliases)
        if not found:
            return list(default)
        return [item.strip() for item in found[1].split(",") if item.strip()]

    def int_list(self, name: str, default: Sequence[int], aliases: Sequence[str] = ()) -> list[int]:
        """Positive whole numbers, comma-separated (`64,128,256`), answered sorted and without repeats."""
        found = self.raw(name, aliases)
        if not found:
            return sorted(set(default))
        key, value = found
        items = [item.strip() for item in value.split(",") if item.strip()]
        if not items or not all(item.isdigit() and int(item) > 0 for item in items):
            raise ImproperlyConfigured(f"{key}={value!r} is not a comma-separated list of positive whole numbers.")
        return sorted({int(item) for item in items})


def parse_duration(value: str) -> float | None:
    value = value.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
