"""Alembic environment for Kargo, driven by Flask-Migrate (`flask db ...`).

The engine and metadata come from the running app (`FLASK_APP=wsgi.py`), so migrations use the
same DATABASE_URL and the same naming convention (app/extensions.py) as the application.
`render_as_batch` is switched on in `create_app()` so that ALTERs also work on SQLite.
"""

import logging
from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context
from flask import current_app

# Several app instances may run `flask db upgrade` at once against one PostgreSQL (boot.sh on
# every container start). A transaction-scoped advisory lock lets one apply the revisions; the
# others wait, then find the schema at head. The key is "KARGO" in ASCII.
MIGRATION_LOCK_KEY = 0x4B4152474F

config = context.config
# When the app already sends logs somewhere (JSON lines in production), Alembic's messages go
# there too; otherwise alembic.ini's console format applies. Either way the loggers the app
# (and the test suite) configured keep working.
if not any(handler.get_name() == "kargo" for handler in logging.getLogger().handlers):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

migrate_extension = current_app.extensions["migrate"]
target_metadata = migrate_extension.db.metadata
# `%` must be doubled because the Alembic config is an INI file with interpolation.
config.set_main_option(
    "sqlalchemy.url",
    migrate_extension.db.engine.url.render_as_string(hide_password=False).replace("%", "%%"),
)


def run_migrations_offline() -> None:
    """Emit SQL to stdout (`flask db upgrade --sql`) without connecting."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        **migrate_extension.configure_args,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations on a live connection from the app's engine."""

    def skip_empty_autogenerate(_context, _revision, directives) -> None:
        # `flask db migrate` with no model change must not write an empty revision file.
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    configure_args = dict(migrate_extension.configure_args)
    configure_args.setdefault("process_revision_directives", skip_empty_autogenerate)
    configure_args.setdefault("compare_type", True)

    with migrate_extension.db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch migrations recreate SQLite tables (copy, drop, rename). With foreign keys
            # enforced, dropping a parent table would cascade to its children or be refused,
            # so they are off while migrating; the pragma only works outside a transaction,
            # hence on the driver connection before anything begins. Migrations that recreate
            # tables run PRAGMA foreign_key_check before they commit.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            context.configure(
                connection=connection, target_metadata=target_metadata, **configure_args
            )
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                    )
                context.run_migrations()
        finally:
            if sqlite:
                if connection.in_transaction():
                    connection.rollback()
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
