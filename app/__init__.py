"""Kargo application factory.

`create_app()` is a list of small named steps; each binds one concern to the app.
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, g, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.extensions import csrf, db, limiter, login_manager, migrate
from config import CONFIGS, ProductionConfig

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "object-src 'none'"
)


def create_app(config: str | dict[str, Any] | None = None) -> Flask:
    """Build the app. `config` is an environment name or a dict of overrides on top of testing."""
    app = Flask(__name__, instance_relative_config=True)
    configure(app, config)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_security_headers(app)
    register_telemetry(app)
    register_template_helpers(app)
    register_cli(app)
    return app


def configure(app: Flask, config: str | dict[str, Any] | None) -> None:
    if isinstance(config, dict):
        app.config.from_object(CONFIGS["testing"])
        app.config.update(config)
        return
    name = config or os.environ.get("KARGO_ENV", "development")
    if name not in CONFIGS:
        raise RuntimeError(f"unknown KARGO_ENV {name!r}; use one of {', '.join(CONFIGS)}")
    if CONFIGS[name] is ProductionConfig:
        ProductionConfig.validate()
    app.config.from_object(CONFIGS[name])
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(uri.removeprefix("sqlite:///")) or ".", exist_ok=True)


def register_extensions(app: Flask) -> None:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite"):
        options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}))
        connect_args = dict(options.get("connect_args", {}))
        connect_args.setdefault("timeout", app.config["SQLITE_BUSY_TIMEOUT_SECONDS"])
        connect_args.setdefault("check_same_thread", False)
        options["connect_args"] = connect_args
        options.pop("pool_pre_ping", None)
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine)


def _configure_sqlite(engine: Engine) -> None:
    """Foreign keys on, WAL for file databases, and transactions we begin ourselves.

    pysqlite's own transaction handling cannot take a write lock up front; we need
    `BEGIN IMMEDIATE` for scheduling transactions (see services.clusters.lock), so the driver's
    autocommit is turned off and SQLAlchemy's begin event emits the BEGIN.
    """

    if getattr(engine, "_kargo_configured", False):
        return
    engine._kargo_configured = True  # type: ignore[attr-defined]

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record) -> None:  # pragma: no cover - driver level
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection) -> None:
        if connection.get_execution_options().get("kargo_immediate"):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


def register_blueprints(app: Flask) -> None:
    from app.blueprints.accounts import bp as accounts_bp
    from app.blueprints.admin import bp as admin_bp
    from app.blueprints.api import bp as api_bp
    from app.blueprints.clusters import bp as clusters_bp
    from app.blueprints.deployments import bp as deployments_bp
    from app.blueprints.history import bp as history_bp
    from app.blueprints.main import bp as main_bp
    from app.blueprints.webhooks import bp as webhooks_bp

    app.register_blueprint(main_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(clusters_bp, url_prefix="/clusters")
    app.register_blueprint(deployments_bp, url_prefix="/deployments")
    app.register_blueprint(history_bp, url_prefix="/history")
    app.register_blueprint(webhooks_bp, url_prefix="/admin/webhooks")
    app.register_blueprint(api_bp)  # at its own prefix, /api/v1
    csrf.exempt(api_bp)


def register_errorhandlers(app: Flask) -> None:
    from app.blueprints.main.errors import register

    register(app)


def register_security_headers(app: Flask) -> None:
    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if hsts_seconds := app.config.get("HSTS_SECONDS"):
            response.headers.setdefault("Strict-Transport-Security", f"max-age={hsts_seconds}")
        if request.headers.get("HX-Request"):
            response.headers.add("Vary", "HX-Request")
        return response


def register_telemetry(app: Flask) -> None:
    from app.telemetry import web

    web.init_app(app)


def register_template_helpers(app: Flask) -> None:
    from app import quantities
    from app.services import accounts, clusters, deployments

    # What the viewer may do, from the same functions the services enforce: templates offer
    # an action only when these say so, and never check roles themselves.
    app.jinja_env.globals.update(
        can_see_admin=accounts.can_see_admin,
        can_manage_members=accounts.can_manage_members,
        can_create_cluster=clusters.can_create_cluster,
        can_delete_cluster=clusters.can_delete_cluster,
        can_change_repack=clusters.can_change_repack,
        can_delete_all_deployments=deployments.can_delete_all,
    )
    app.jinja_env.globals.update(
        format_amount=quantities.format_amount,
        format_number=quantities.format_number,
        unit_label=quantities.unit_label,
        poll_seconds=lambda: app.config["POLL_INTERVAL_SECONDS"],
    )


def register_cli(app: Flask) -> None:
    from app.cli import kargo_cli

    app.cli.add_command(kargo_cli)

    @app.shell_context_processor
    def shell_context() -> dict[str, Any]:
        from app import models

        return {"db": db, "sa": sa, "models": models, "g": g}
