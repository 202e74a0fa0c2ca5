"""config.sqlite: a process's threads take turns for SQLite write transactions on a lock of their own."""
import threading
import time

import pytest
from django.db import OperationalError
from django.db.utils import ConnectionHandler

from config.sqlite.base import _writer_lock


@pytest.fixture
def database(tmp_path, django_db_blocker):
    """A SQLite file of its own; `open()` gives each caller its own connection, as each thread has."""
    settings = {"ENGINE": "config.sqlite", "NAME": str(tmp_path / "db.sqlite3"),
                "OPTIONS": {"timeout": 0.3, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}}
    opened = []

    def open_connection():
        connection = ConnectionHandler({"default": settings})["default"]
        opened.append(connection)
        return connection

    with django_db_blocker.unblock():
        first = open_connection()
        with first.cursor() as cursor:
            cursor.execute("CREATE TABLE t (n INTEGER)")
        yield open_connection
        for connection in opened:
            if connection._thread_ident == threading.get_ident():  # each thread closes its own
                connection.close()


def begin(connection) -> None:
    connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)


def insert(connection, n: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO t VALUES (%s)", [n])


def end(connection, *, commit: bool = True) -> None:
    connection.commit() if commit else connection.rollback()
    connection.set_autocommit(True)


def test_a_second_writer_waits_for_the_first_commit_and_then_goes_in(database, tmp_path):
    first, order = database(), []
    begin(first)
    insert(first, 1)

    def second_writer():
        second = database()
        begin(second)  # blocks on the process's lock until the first commits
        order.append("second began")
        insert(second, 2)
        end(second)
        second.close()

    thread = threading.Thread(target=second_writer)
    thread.start()
    time.sleep(0.1)
    assert order == [] and thread.is_alive()
    order.append("first commits")
    end(first)
    thread.join(5)
    assert order == ["first commits", "second began"]
    with first.cursor() as cursor:
        cursor.execute("SELECT n FROM t ORDER BY n")
        assert [row[0] for row in cursor.fetchall()] == [1, 2]
    assert not _writer_lock(str(tmp_path / "db.sqlite3")).locked()


def test_a_writer_that_waits_past_the_timeout_fails_as_sqlite_would(database):
    first = database()
    begin(first)
    failures = []

    def second_writer():
        second = database()
        try:
            begin(second)
        except OperationalError as exc:
            failures.append(str(exc))
        finally:
            second.set_autocommit(True)
            second.close()

    thread = threading.Thread(target=second_writer)
    started = time.monotonic()
    thread.start()
    thread.join(5)
    assert failures == ["database is locked"] and time.monotonic() - started >= 0.3
    end(first)


@pytest.mark.parametrize("how", ["rollback", "close"])
def test_a_writer_that_rolls_back_or_closes_lets_the_next_one_in(database, tmp_path, how):
    first = database()
    begin(first)
    insert(first, 1)
    if how == "rollback":
        end(first, commit=False)
    else:
        first.close()
    assert not _writer_lock(str(tmp_path / "db.sqlite3")).locked()
    second = database()
    begin(second)
    insert(second, 2)
    end(second)
    with second.cursor() as cursor:
        cursor.execute("SELECT n FROM t")
        assert [row[0] for row in cursor.fetchall()] == [2]


def test_the_embedded_database_keeps_its_connections_as_postgresql_does(monkeypatch):
    """DATABASE_CONN_MAX_AGE holds for SQLite too: opening a connection per request cost a quarter of a
    small upload's CPU on the embedded default."""
    from config.settings import _database

    monkeypatch.delenv("DATABASE_CONN_MAX_AGE", raising=False)
    assert _database("sqlite:////tmp/mediastore.sqlite3", "DATABASE_URL")["CONN_MAX_AGE"] == 60
    monkeypatch.setenv("DATABASE_CONN_MAX_AGE", "0")
    assert _database("sqlite:////tmp/mediastore.sqlite3", "DATABASE_URL")["CONN_MAX_AGE"] == 0
