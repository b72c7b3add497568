"""Backup and restore of the whole Kargo database, with each database's own tools.

- SQLite: the online backup API of `sqlite3` copies the database page by page into a new file,
  a consistent snapshot even while the portal keeps writing (WAL mode). Restoring copies that
  file into the configured database the same way.
- PostgreSQL: `pg_dump --format=custom` (a consistent snapshot in one transaction, sequences
  included, so ids keep growing after a restore) and `pg_restore` into an empty database. The
  `pg_dump` on PATH must be at least as new as the server.

A restore goes only into an empty database (no tables), never over live data; `flask db
upgrade` afterwards brings a backup made by an older Kargo to the current schema.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from app.extensions import db
from app.services.errors import Conflict, ValidationError

PG_TIMEOUT_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    bytes: int
    dialect: str


def backup(path: str | Path) -> BackupResult:
    """Write a backup of the configured database to `path` (which must not exist yet)."""
    target = Path(path)
    if target.exists():
        raise Conflict(f"{target} already exists; choose a new file name.")
    url = db.engine.url
    if url.get_backend_name() == "sqlite":
        source = _sqlite_file(url)
        with sqlite3.connect(source) as origin, sqlite3.connect(target) as copy:
            origin.backup(copy)
    else:
        _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(target), _libpq(url)])
    return BackupResult(target, target.stat().st_size, url.get_backend_name())


def restore(path: str | Path) -> None:
    """Load the backup at `path` into the configured database, which must have no tables."""
    source = Path(path)
    if not source.is_file():
        raise ValidationError(f"{source} is not a backup file.")
    tables = sa.inspect(db.engine).get_table_names()
    db.session.remove()
    if tables:
        raise Conflict(
            f"The database already has {len(tables)} tables: restore only into an empty "
            "database (create a new one and point DATABASE_URL at it)."
        )
    url = db.engine.url
    db.engine.dispose()
    if url.get_backend_name() == "sqlite":
        with sqlite3.connect(source) as origin, sqlite3.connect(_sqlite_file(url)) as copy:
            origin.backup(copy)
    else:
        _run(["pg_restore", "--no-owner", "--exit-on-error", "--dbname", _libpq(url), str(source)])


def _sqlite_file(url: URL) -> str:
    if not url.database or url.database == ":memory:":
        raise ValidationError("An in-memory SQLite database cannot be backed up or restored.")
    return url.database


def _libpq(url: URL) -> str:
    """The SQLAlchemy URL as libpq understands it (no "+driver" part)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _run(command: list[str]) -> None:
    if shutil.which(command[0]) is None:
        raise ValidationError(
            f"{command[0]} is not installed here; install the PostgreSQL client tools "
            "(at least the server's version) or run it in the database container."
        )
    result = subprocess.run(command, capture_output=True, text=True, timeout=PG_TIMEOUT_SECONDS)
    if result.returncode != 0:
        raise ValidationError(f"{command[0]} failed: {result.stderr.strip()[-2000:]}")
