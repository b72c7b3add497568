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


# --------------------------------------------------------------------------------------------
# Ids are never reused (SQLite AUTOINCREMENT; PostgreSQL sequences).

PREVIOUS_REVISION = "c8241a9172f9"  # the head before ids became never-reused
IDS_REVISION = "5b7e2d9c4a10"  # the revision that made them so (rows below are of its schema)


def integer_keyed_tables() -> list[sa.Table]:
    """Tables whose single integer key the database generates. A key that is a foreign key
    (deployment_runtime's deployment_id) is another table's id, never generated, and SQLite
    does not declare it AUTOINCREMENT."""
    return [
        table
        for table in db.metadata.sorted_tables
        if len(table.primary_key.columns) == 1
        and isinstance(next(iter(table.primary_key.columns)).type, sa.Integer)
        and not next(iter(table.primary_key.columns)).foreign_keys
    ]


def test_every_integer_keyed_model_declares_never_reused_ids() -> None:
    from app.models import NEVER_REUSE_IDS

    tables = integer_keyed_tables()
    assert {"organizations", "users", "clusters", "deployments"} <= {t.name for t in tables}
    for table in tables:
        assert table.kwargs.get("sqlite_autoincrement") is True, (
            f"{table.name}: add NEVER_REUSE_IDS {NEVER_REUSE_IDS} to its __table_args__"
        )


def sqlite_autoincrement_tables() -> set[str]:
    """Tables whose SQLite definition says AUTOINCREMENT (autogenerate does not compare it)."""
    with db.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type='table'")
        return {name for name, sql in rows if "AUTOINCREMENT" in sql.upper()}


def test_upgrade_declares_autoincrement_on_sqlite(migration_app: Flask) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("AUTOINCREMENT is SQLite's; PostgreSQL sequences never reuse values")
    flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))
    assert sqlite_autoincrement_tables() == {table.name for table in integer_keyed_tables()}
    flask_migrate.downgrade(directory=str(MIGRATIONS_DIR), revision=PREVIOUS_REVISION)
    assert sqlite_autoincrement_tables() == {"events"}


def insert_rows(connection, suffix: str) -> dict[str, int]:
    """One row in every integer-keyed table (as of the previous revision); their ids."""
    now = "2026-01-01 00:00:00"

    def insert(sql: str, **values) -> int:
        return connection.execute(sa.text(sql + " RETURNING id"), values).scalar_one()

    org = insert(
        "INSERT INTO organizations (name, deployment_quota, created_at) VALUES (:n, 10, :t)",
        n=f"org-{suffix}",
        t=now,
    )
    user = insert(
        "INSERT INTO users (organization_id, username, username_key, display_name, password_hash,"
        " role, active, session_version, created_at) VALUES (:o, :u, :u, 'U', 'x', 'owner', true,"
        " 0, :t)",
        o=org,
        u=f"user-{suffix}",
        t=now,
    )
    ids = {"organizations": org, "users": user}
    ids["invites"] = insert(
        "INSERT INTO invites (organization_id, code_hash, created_by_id, created_at, expires_at)"
        " VALUES (:o, :h, :u, :t, :t)",
        o=org,
        h=suffix * 8,
        u=user,
        t=now,
    )
    ids["api_tokens"] = insert(
        "INSERT INTO api_tokens (user_id, token_hash, created_at, expires_at)"
        " VALUES (:u, :h, :t, :t)",
        u=user,
        h=(suffix * 8)[::-1],
        t=now,
    )
    cluster = insert(
        "INSERT INTO clusters (organization_id, name, max_deployments, created_by_id, created_at,"
        " state_version) VALUES (:o, :n, 5, :u, :t, 0)",
        o=org,
        n=f"c-{suffix}",
        u=user,
        t=now,
    )
    ids["clusters"] = cluster
    connection.execute(
        sa.text(
            "INSERT INTO cluster_resources (cluster_id, kind, position, capacity, used)"
            " VALUES (:c, 'cpu', 0, 1000, 0)"
        ),
        {"c": cluster},
    )
    ids["deployments"] = insert(
        "INSERT INTO deployments (organization_id, cluster_id, name, image, priority, requests,"
        " status, created_by_id, submitted_at, preemptions) VALUES (:o, :c, 'web', 'nginx', 100,"
        " '{\"cpu\": 100}', 'pending', :u, :t, 0)",
        o=org,
        c=cluster,
        u=user,
        t=now,
    )
    return ids


def test_upgrade_keeps_every_row_and_key_on_sqlite(migration_app: Flask) -> None:
    """The batch recreation copies the rows with their ids and leaves foreign keys whole."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the tables are recreated on SQLite only")
    flask_migrate.upgrade(directory=str(MIGRATIONS_DIR), revision=PREVIOUS_REVISION)
    with db.engine.begin() as connection:
        first = insert_rows(connection, "a")
        second = insert_rows(connection, "b")
        before = {
            table: connection.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1")).mappings().all()
            for table in (*first, "cluster_resources")
        }
    flask_migrate.upgrade(directory=str(MIGRATIONS_DIR), revision=IDS_REVISION)
    with db.engine.begin() as connection:
        # Later migrations may add columns: compare the columns the rows had before.
        after = {
            table: [
                {column: row[column] for column in rows[0]}
                for row in connection.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1"))
                .mappings()
                .all()
            ]
            for table, rows in before.items()
        }
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        # The migration turned foreign keys off only while it ran.
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert after == before
    assert all(second[table] > first[table] for table in first)


def delete_newest_and_insert(connection, ids: dict[str, int]) -> None:
    """Delete the newest row of every table (children first), as a user deleting them would."""
    for table in ("deployments", "cluster_resources", "clusters", "api_tokens", "invites"):
        key = "cluster_id" if table == "cluster_resources" else "id"
        value = ids["clusters"] if table == "cluster_resources" else ids[table]
        connection.execute(sa.text(f"DELETE FROM {table} WHERE {key} = :v"), {"v": value})
    connection.execute(sa.text("DELETE FROM users WHERE id = :v"), {"v": ids["users"]})
    connection.execute(
        sa.text("DELETE FROM organizations WHERE id = :v"), {"v": ids["organizations"]}
    )


def test_ids_are_never_reused_after_the_newest_row_is_deleted(migration_app: Flask) -> None:
    """On both databases: delete the newest row of each table; the next id is larger.

    At the revision that made it so; later revisions keep AUTOINCREMENT on every table they
    recreate (test_upgrade_declares_autoincrement_on_sqlite checks the head)."""
    flask_migrate.upgrade(directory=str(MIGRATIONS_DIR), revision=IDS_REVISION)
    with db.engine.begin() as connection:
        insert_rows(connection, "a")
        newest = insert_rows(connection, "b")
        delete_newest_and_insert(connection, newest)
        again = insert_rows(connection, "c")
    for table, deleted in newest.items():
        assert again[table] > deleted, f"{table}: id {deleted} was given again"


def deployments_fillfactor() -> list[str] | None:
    with db.engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT reloptions FROM pg_class WHERE relname = 'deployments'")
        ).scalar_one()


def test_postgresql_leaves_room_in_deployments_pages(migration_app: Flask) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("fillfactor is PostgreSQL's")
    flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))
    assert deployments_fillfactor() == ["fillfactor=70"]
    flask_migrate.downgrade(directory=str(MIGRATIONS_DIR), revision="c4d8e2f1a7b3")
    assert deployments_fillfactor() is None
