"""Throw-away databases for tests: a SQLite file per test, or a PostgreSQL database per run.

PostgreSQL is used when KARGO_TEST_DATABASE_URL is set (CI sets it). Each test session creates
its own database on that server and drops it at the end, so runs never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ENV_VAR = "KARGO_TEST_DATABASE_URL"


def postgres_url() -> str | None:
    url = os.environ.get(ENV_VAR, "").strip()
    return url or None


@contextmanager
def temporary_postgres_database(base_url: str, label: str = "t") -> Iterator[str]:
    """Create a fresh database next to `base_url`'s, yield its URL, drop it afterwards."""
    url = make_url(base_url)
    name = f"kargo_{label}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


@contextmanager
def fresh_database(kind: str, folder, label: str) -> Iterator[str]:
    """A database with no tables: a new SQLite file in `folder`, or a new PostgreSQL database.

    For fixtures parametrized over ["sqlite", "postgresql"]; the PostgreSQL case is skipped
    when KARGO_TEST_DATABASE_URL is not set.
    """
    import pytest

    if kind == "sqlite":
        yield f"sqlite:///{folder / f'{label}.db'}"
        return
    base = postgres_url()
    if base is None:
        pytest.skip(f"KARGO_TEST_DATABASE_URL is not set; {label} not checked on PostgreSQL")
    with temporary_postgres_database(base, label) as url:
        yield url
