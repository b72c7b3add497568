"""Fixtures shared by every test: app, client, runner, a database isolated per test, login.

Each test gets an empty database: a fresh SQLite file (the default), or, when
KARGO_TEST_DATABASE_URL points at PostgreSQL, a database created for this test session whose
tables are truncated before every test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from flask import Flask, g
from flask.testing import FlaskClient

from app import create_app
from app.extensions import db as _db
from app.models import User
from tests.support import dockerd
from tests.support.databases import postgres_url, temporary_postgres_database
from tests.support.gunicorn import running_gunicorn


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str | None]:
    base = postgres_url()
    if base is None:
        yield None
        return
    with temporary_postgres_database(base, "unit") as url:
        engine = sa.create_engine(url)
        _db.metadata.create_all(engine)
        engine.dispose()
        yield url


@pytest.fixture(scope="session")
def docker_daemon() -> dockerd.Daemon:
    """The run's private dockerd (see tests/support/dockerd.py), started on first use."""
    reason = dockerd.unavailable_reason()
    if reason:
        pytest.skip(f"no private Docker daemon: {reason}")
    return dockerd.start()


@pytest.fixture
def database_url(postgres_database: str | None, tmp_path) -> str:
    if postgres_database:
        return postgres_database
    return f"sqlite:///{tmp_path / 'kargo-test.db'}"


@pytest.fixture
def app_config() -> dict:
    """Override in a test module to change configuration before the app is built."""
    return {}


@pytest.fixture
def app(database_url: str, app_config: dict) -> Iterator[Flask]:
    # Rate-limit counters in this process's memory, new with each app: never a Redis from the
    # environment, where tests (and xdist workers) would spend each other's limits.
    config = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "RATELIMIT_STORAGE_URI": "memory://",
        **app_config,
    }
    app = create_app(config)

    @app.teardown_request
    def fresh_g_per_request(_exc) -> None:
        # The app context pushed below is reused by every request of the test, and with it `g`:
        # empty it so each request loads its own user and CSRF token, as in production.
        for name in list(g):
            g.pop(name, None)

    with app.app_context():
        if database_url.startswith("sqlite"):
            _db.create_all()
        else:
            tables = ", ".join(f'"{t.name}"' for t in _db.metadata.sorted_tables)
            _db.session.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            _db.session.commit()
        yield app
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@pytest.fixture
def db(app: Flask):
    return _db


def login(client: FlaskClient, user: User) -> FlaskClient:
    """Log `user` in on `client` without going through the login form (and its rate limit).

    The session is a real server-side one (`accounts.open_session`); its key goes into the
    cookie exactly where a login puts it.
    """
    from flask_login.utils import _create_identifier

    from app.services import accounts

    # Strong session protection drops a session whose client identifier (address and user
    # agent) differs from the one recorded at login: record the test client's.
    with client.application.test_request_context(environ_base=client.environ_base):
        identifier = _create_identifier()
    key = accounts.open_session(user)
    with client.session_transaction() as session:
        session["_user_id"] = key
        session["_fresh"] = True
        session["_id"] = identifier
    return client


@pytest.fixture
def login_as():
    return login


@contextmanager
def _live_database(tmp_path_factory) -> Iterator[str]:
    base = postgres_url()
    if base is None:
        yield f"sqlite:///{tmp_path_factory.mktemp('live') / 'kargo.db'}"
        return
    with temporary_postgres_database(base, "live") as url:
        yield url


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[str]:
    """The base URL of the real application under gunicorn, shared by a test session.

    Its database is migrated with `flask db upgrade`: a SQLite file, or a fresh PostgreSQL
    database when KARGO_TEST_DATABASE_URL is set. Tests sharing it create their own accounts
    (the account creation limit is raised for them; it has its own tests).
    """
    with (
        _live_database(tmp_path_factory) as url,
        running_gunicorn(url, workers=2, SIGNUP_RATE_LIMIT_PER_CLIENT="1000 per hour") as server,
    ):
        yield server
