"""The Alembic migrations stay in step with the models, on SQLite and on PostgreSQL.

Outside tests the schema comes only from `flask db upgrade`, while the test fixtures build it
with `create_all()`. These tests tie the two together: a model change without a migration (or a
migration that drifts from the models) fails here, with the differences in the message and the
command that fixes it (`make migration m="..."`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask

from app import create_app
from app.extensions import db
from tests.support.databases import fresh_database, postgres_url, temporary_postgres_database

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


def script_directory() -> ScriptDirectory:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config)


def test_migrations_have_a_single_head() -> None:
    heads = script_directory().get_heads()
    assert len(heads) == 1, (
        f"Alembic has {len(heads)} heads {heads}: merge them with `flask db merge heads`"
    )


def test_every_revision_chains_back_to_one_base() -> None:
    revisions = list(script_directory().walk_revisions())
    bases = [revision.revision for revision in revisions if revision.down_revision is None]
    assert len(bases) == 1, f"expected one initial revision, found {bases}"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request, tmp_path) -> Iterator[str]:
    """A database with no tables at all: a new SQLite file, or a new PostgreSQL database."""
    with fresh_database(request.param, tmp_path, "migrations") as url:
        yield url


@pytest.fixture
def migration_app(empty_database_url: str) -> Iterator[Flask]:
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def schema_differences() -> list:
    """What autogenerate would write if run now: empty when the database matches the models."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def table_names() -> set[str]:
    return set(sa.inspect(db.engine).get_table_names())


def test_upgrade_to_head_matches_the_models(migration_app: Flask) -> None:
    flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))

    assert table_names() == {table.name for table in db.metadata.sorted_tables} | {
        "alembic_version"
    }
    differences = schema_differences()
    assert differences == [], (
        "the migrated schema differs from app/models.py; generate a migration with "
        '`make migration m="describe the change"` and review it. Differences:\n'
        + "\n".join(map(repr, differences))
    )


def check_constraint_names(table: sa.Table) -> set[str]:
    return {
        str(constraint.name)
        for constraint in table.constraints
        if isinstance(constraint, sa.CheckConstraint) and constraint.name
    }


def test_upgrade_creates_every_named_check_constraint(migration_app: Flask) -> None:
    """Autogenerate does not compare CHECK constraints, so compare their names here."""
    flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))

    inspector = sa.inspect(db.engine)
    for table in db.metadata.sorted_tables:
        migrated = {check["name"] for check in inspector.get_check_constraints(table.name)}
        assert migrated == check_constraint_names(table), f"CHECK constraints of {table.name}"


def test_resource_amounts_are_big_integers(migration_app: Flask) -> None:
    flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))

    columns = {c["name"]: c["type"] for c in sa.inspect(db.engine).get_columns("cluster_resources")}
    assert isinstance(columns["capacity"], sa.BigInteger)
    assert isinstance(columns["used"], sa.BigInteger)


def test_downgrade_to_base_and_upgrade_again(migration_app: Flask) -> None:
    flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))
    flask_migrate.downgrade(directory=str(MIGRATIONS_DIR), revision="base")

    assert table_names() <= {"alembic_version"}

    flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))
    assert schema_differences() == []


def test_concurrent_upgrades_on_postgresql_apply_once(tmp_path) -> None:
    """Containers starting together each run `flask db upgrade`; all must succeed."""
    base = postgres_url()
    if base is None:
        pytest.skip("KARGO_TEST_DATABASE_URL is not set; PostgreSQL migrations not checked")
    repo = MIGRATIONS_DIR.parent
    with temporary_postgres_database(base, "upgrade_race") as url:
        env = {
            **os.environ,
            "FLASK_APP": "wsgi.py",
            "KARGO_ENV": "development",
            "DATABASE_URL": url,
        }
        upgrades = [
            subprocess.Popen(
                [sys.executable, "-m", "flask", "db", "upgrade"],
                cwd=repo,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(3)
        ]
        outputs = [process.communicate(timeout=120)[0] for process in upgrades]
        for process, output in zip(upgrades, outputs, strict=True):
            assert process.returncode == 0, output
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            versions = connection.scalars(sa.text("SELECT version_num FROM alembic_version")).all()
        engine.dispose()
        assert versions == list(script_directory().get_heads())
