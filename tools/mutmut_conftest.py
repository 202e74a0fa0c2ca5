"""Copied to mutants/conftest.py by tools/mutate.py: the test database is made once per run.

mutmut runs pytest many times in one process and forks a worker per mutant from it. Without
this, every mutant's pytest session would create and migrate a fresh SQLite database (most of a
mutant's time); here the first session creates it, the later ones and the forks (which inherit
the in-memory database) reuse it, and nothing tears it down. Tests still roll back or flush as
usual, each fork on its own copy.
"""
from __future__ import annotations

import pytest

_DATABASES: list = []


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):  # noqa: ANN001, ANN201
    if not _DATABASES:
        from django.test.utils import setup_databases

        with django_db_blocker.unblock():
            _DATABASES.append(setup_databases(verbosity=0, interactive=False))
    yield
