"""Kargo configuration: one class per environment, each value overridable by the environment.

Every limit, timeout and interval the application uses lives here with its default, and is
documented in the README's configuration table.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSECURE_SECRET = "dev-insecure-secret-key-change-me"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw.strip())
    except ValueError as exc:
        raise RuntimeError(f"environment variable {name} must be an integer, got {raw!r}") from exc


def _default_database_url() -> str:
    return f"sqlite:///{BASE_DIR / 'instance' / 'kargo.db'}"


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", INSECURE_SECRET)
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL", _default_database_url())
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}

    # Accounts and invites.
    INVITE_TTL_SECONDS = _int("INVITE_TTL_SECONDS", 72 * 3600)
    PASSWORD_MIN_LENGTH = _int("PASSWORD_MIN_LENGTH", 10)
    LOGIN_RATE_LIMIT_PER_CLIENT = os.environ.get("LOGIN_RATE_LIMIT_PER_CLIENT", "20 per minute")
    LOGIN_RATE_LIMIT_PER_USERNAME = os.environ.get("LOGIN_RATE_LIMIT_PER_USERNAME", "5 per minute")
    # Accounts created (sign-ups and invite redemptions, pages and API) per client address.
    SIGNUP_RATE_LIMIT_PER_CLIENT = os.environ.get("SIGNUP_RATE_LIMIT_PER_CLIENT", "20 per hour")
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_HEADERS_ENABLED = True

    # Request bodies. Werkzeug refuses a larger body from its Content-Length, before reading
    # it (413); the API sets its own, smaller limit per request (API_MAX_BODY_BYTES).
    FORM_MAX_BODY_BYTES = _int("FORM_MAX_BODY_BYTES", 256 * 1024)
    MAX_CONTENT_LENGTH = FORM_MAX_BODY_BYTES

    # API tokens.
    API_TOKEN_TTL_SECONDS = _int("API_TOKEN_TTL_SECONDS", 24 * 3600)
    API_MAX_BODY_BYTES = _int("API_MAX_BODY_BYTES", 64 * 1024)
    API_MAX_PAGE_SIZE = _int("API_MAX_PAGE_SIZE", 100)

    # Clusters and deployments.
    DEFAULT_MAX_DEPLOYMENTS = _int("DEFAULT_MAX_DEPLOYMENTS", 100)
    DEFAULT_DEPLOYMENT_QUOTA = _int("DEFAULT_DEPLOYMENT_QUOTA", 1000)
    MAX_RESOURCE_KINDS = _int("MAX_RESOURCE_KINDS", 16)
    POLL_INTERVAL_SECONDS = _int("POLL_INTERVAL_SECONDS", 3)
    # Rows of the running list and of the queue shown on a cluster's live dashboard.
    DASHBOARD_LIST_LIMIT = _int("DASHBOARD_LIST_LIMIT", 50)
    PAGE_SIZE = _int("PAGE_SIZE", 20)
    SQLITE_BUSY_TIMEOUT_SECONDS = _int("SQLITE_BUSY_TIMEOUT_SECONDS", 30)

    # Cookies and CSRF. The CSRF token must outlive a dashboard left open all day.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None
    PUBLIC_URL = os.environ.get("PUBLIC_URL", "")


class DevelopmentConfig(Config):
    DEBUG = False


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "testing-secret-key"
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    WTF_CSRF_ENABLED = False
    RATELIMIT_ENABLED = True
    RATELIMIT_STORAGE_URI = "memory://"
    # Tests create many accounts from one address; the limit itself has its own tests.
    SIGNUP_RATE_LIMIT_PER_CLIENT = "10000 per minute"
    SERVER_NAME = None


class ProductionConfig(Config):
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "1") != "0"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE

    @classmethod
    def validate(cls) -> None:
        """Refuse to start production with a missing or known-insecure secret key."""
        key = os.environ.get("SECRET_KEY", "")
        if not key or key == INSECURE_SECRET or len(key) < 16:
            raise RuntimeError(
                "SECRET_KEY must be set to a random value of at least 16 characters in production"
            )


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}
