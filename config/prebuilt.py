"""Querysets compiled once, run many times with new values: the ORM's cost without its per-call build.

Building and compiling a `select_related` queryset costs the ORM several milliseconds per call on
a small machine, many times what the database spends answering it (docs/benchmarks.md, row 8).
On a hot path where only a few values change between calls (an id, an organization), `Prebuilt`
builds the queryset once per database with stand-in values, keeps its SQL and where each stand-in
sits among the parameters, and from then on runs that SQL with the real values; rows become model
instances as the ORM makes them (`Model.from_db` with each column's converters, related objects
attached by the ORM's own populators). The SQL and the instances are the ORM's, so the answer is
the same as running the queryset itself (`tests/config/test_prebuilt.py`).
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connections, router
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators


class _Stand:
    """Stand-in values no caller passes: a string or an integer of its own per position."""

    @staticmethod
    def make(value: object, i: int) -> object:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise TypeError(f"Prebuilt values must be str or int, not {type(value).__name__}")
        return f"\x00prebuilt-{i}\x00" if isinstance(value, str) else -(7_381_000_000_000_000 + i)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    slots: tuple[tuple[int, int], ...]  # (position among the parameters, index of the caller's value)
    model: type[Model]
    init_list: list[str]
    start: int
    end: int
    converters: dict  # column position -> (converters, expression), as SQLCompiler.get_converters
    populators: list


class Prebuilt:
    """`Prebuilt(model, build)`: `build(variant, *values)` returns the queryset; `.first(*values, variant=...)`
    runs it and answers the first instance or None, `.all(...)` every instance.

    `variant` names whatever changes the statement's shape (not only its values), e.g. which
    filters apply: one compiled statement is kept per variant and database."""

    def __init__(self, model: type[Model], build: Callable[..., QuerySet]) -> None:
        self.model = model
        self.build = build
        self._compiled: dict[tuple, _Compiled] = {}
        self._lock = threading.Lock()

    def first(self, *values: object, variant: Hashable = ()) -> Model | None:
        rows = self._rows(values, variant, many=False)
        return rows[0] if rows else None

    def all(self, *values: object, variant: Hashable = ()) -> list[Model]:
        """Every row the queryset answers, as instances."""
        return self._rows(values, variant, many=True)

    def _rows(self, values: tuple, variant: Hashable, *, many: bool) -> list[Model]:
        alias = router.db_for_read(self.model)
        connection = connections[alias]
        key = (alias, connection.vendor, variant, tuple(type(v) for v in values))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compile(alias, values, variant)
            with self._lock:
                self._compiled[key] = compiled
        params = list(compiled.params)
        for position, index in compiled.slots:
            params[position] = values[index]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall() if many else cursor.fetchmany(1)
        return [self._instance(compiled, alias, connection, row) for row in rows]

    @staticmethod
    def _instance(compiled: _Compiled, alias: str, connection, row: tuple) -> Model:  # noqa: ANN001
        row = list(row)
        for position, (converters, expression) in compiled.converters.items():
            value = row[position]
            for converter in converters:
                value = converter(value, expression, connection)
            row[position] = value
        obj = compiled.model.from_db(alias, compiled.init_list, row[compiled.start:compiled.end])
        for populator in compiled.populators:
            populator.populate(row, obj)
        return obj

    def _compile(self, alias: str, values: tuple, variant: Hashable) -> _Compiled:
        stands = [_Stand.make(value, i) for i, value in enumerate(values)]
        queryset = self.build(variant, *stands)
        compiler = queryset.query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        slots = tuple((position, stands.index(param)) for position, param in enumerate(params)
                      if any(param == stand and type(param) is type(stand) for stand in stands))
        missing = set(range(len(stands))) - {index for _, index in slots}
        # A value the ORM changed on its way into the SQL cannot be substituted: a lookup whose value
        # it transforms (startswith), or a field that cannot hold the stand-in (a positive or small
        # integer field drops or rewrites the lookup). Refused at first use, never run wrong.
        if missing:
            raise ValueError(f"Prebuilt values {sorted(missing)} do not appear as parameters of {sql!r}")
        klass_info, select = compiler.klass_info, compiler.select
        fields = klass_info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        return _Compiled(
            sql=sql, params=tuple(params), slots=slots, model=klass_info["model"],
            init_list=[s[0].target.attname for s in select[start:end]], start=start, end=end,
            converters=compiler.get_converters([s[0] for s in select[:compiler.col_count]]),
            populators=get_related_populators(klass_info, select, alias))


@contextmanager
def planned_with_values(alias: str) -> Iterator[None]:
    """Statements run in this block on `alias` are never prepared, so PostgreSQL plans each with its values.

    With server-side binding psycopg prepares a statement after its fifth run (config/settings.py), and
    PostgreSQL may then settle on a generic plan, made without the values. For a point lookup that plan
    is the same and saves the planning; for a filtered, searched page it is not: the next page of the
    list took 45 ms instead of 15 at a million rows (docs/benchmarks.md, row 7). A no-op where nothing
    is prepared (SQLite, or server-side binding off)."""
    connection = connections[alias]
    if connection.vendor != "postgresql" or not connection.settings_dict["OPTIONS"].get("prepare_threshold"):
        yield
        return

    def execute(execute, sql, params, many, context):  # noqa: ANN001, ANN202
        if many:
            return execute(sql, params, many, context)
        connection.validate_no_broken_transaction()
        with connection.wrap_database_errors:
            return context["cursor"].cursor.execute(sql, params, prepare=False)

    with connection.execute_wrapper(execute):
        yield
