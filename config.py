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


def _list(name: str) -> list[str] | None:
    """A comma-separated environment variable as a list; None when unset or empty."""
    items = [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]
    return items or None


def _default_database_url() -> str:
    return f"sqlite:///{BASE_DIR / 'instance' / 'kargo.db'}"


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", INSECURE_SECRET)
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL", _default_database_url())
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}

    # Accounts, login sessions, invites and password reset links.
    INVITE_TTL_SECONDS = _int("INVITE_TTL_SECONDS", 72 * 3600)
    PASSWORD_RESET_TTL_SECONDS = _int("PASSWORD_RESET_TTL_SECONDS", 24 * 3600)
    # A login session (a row; the cookie holds its key) ends after this long, or at logout.
    SESSION_LIFETIME_SECONDS = _int("SESSION_LIFETIME_SECONDS", 14 * 24 * 3600)
    # Flask refuses a signed cookie older than this too.
    PERMANENT_SESSION_LIFETIME = SESSION_LIFETIME_SECONDS
    PASSWORD_MIN_LENGTH = _int("PASSWORD_MIN_LENGTH", 10)
    # Failed logins (pages and API count together; see app/blueprints/limits.py).
    LOGIN_RATE_LIMIT_PER_CLIENT = os.environ.get("LOGIN_RATE_LIMIT_PER_CLIENT", "20 per minute")
    LOGIN_RATE_LIMIT_PER_CLIENT_USERNAME = os.environ.get(
        "LOGIN_RATE_LIMIT_PER_CLIENT_USERNAME", "5 per minute"
    )
    # The ceiling per username from every client together; reaching it is logged.
    LOGIN_RATE_LIMIT_PER_USERNAME = os.environ.get("LOGIN_RATE_LIMIT_PER_USERNAME", "100 per hour")
    # Accounts created (sign-ups and invite redemptions, pages and API) per client address.
    SIGNUP_RATE_LIMIT_PER_CLIENT = os.environ.get("SIGNUP_RATE_LIMIT_PER_CLIENT", "20 per hour")
    # Where the counters live: redis://host:6379/0 shares them between workers and instances
    # (production); memory:// counts per worker process.
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_KEY_PREFIX = os.environ.get("RATELIMIT_KEY_PREFIX", "kargo")
    RATELIMIT_HEADERS_ENABLED = True
    # If Redis goes away, count per worker in memory until it is back, rather than fail.
    RATELIMIT_SWALLOW_ERRORS = True
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True

    # Request bodies. Werkzeug refuses a larger body from its Content-Length, before reading
    # it (413); the API sets its own, smaller limit per request (API_MAX_BODY_BYTES).
    FORM_MAX_BODY_BYTES = _int("FORM_MAX_BODY_BYTES", 256 * 1024)
    MAX_CONTENT_LENGTH = FORM_MAX_BODY_BYTES

    # API tokens.
    API_TOKEN_TTL_SECONDS = _int("API_TOKEN_TTL_SECONDS", 24 * 3600)
    # Personal tokens (the tokens page) live from 1 day to this many days.
    API_TOKEN_MAX_TTL_DAYS = _int("API_TOKEN_MAX_TTL_DAYS", 365)
    # A token's "last used" time is written at most this often.
    TOKEN_LAST_USED_INTERVAL_SECONDS = _int("TOKEN_LAST_USED_INTERVAL_SECONDS", 60)
    API_MAX_BODY_BYTES = _int("API_MAX_BODY_BYTES", 64 * 1024)
    API_MAX_PAGE_SIZE = _int("API_MAX_PAGE_SIZE", 100)

    # Clusters and deployments. The MAX_ values are the operator's ceilings: what an
    # organization may set for itself stays within them.
    DEFAULT_MAX_DEPLOYMENTS = _int("DEFAULT_MAX_DEPLOYMENTS", 100)
    DEFAULT_DEPLOYMENT_QUOTA = _int("DEFAULT_DEPLOYMENT_QUOTA", 1000)
    MAX_CLUSTERS_PER_ORGANIZATION = _int("MAX_CLUSTERS_PER_ORGANIZATION", 100)
    MAX_DEPLOYMENTS_PER_CLUSTER = _int("MAX_DEPLOYMENTS_PER_CLUSTER", 1000)
    MAX_ORGANIZATION_QUOTA = _int("MAX_ORGANIZATION_QUOTA", 5000)
    MAX_RESOURCE_KINDS = _int("MAX_RESOURCE_KINDS", 16)
    POLL_INTERVAL_SECONDS = _int("POLL_INTERVAL_SECONDS", 3)
    # Rows of the running list and of the queue shown on a cluster's live dashboard.
    DASHBOARD_LIST_LIMIT = _int("DASHBOARD_LIST_LIMIT", 50)
    PAGE_SIZE = _int("PAGE_SIZE", 20)
    # How long browsers keep a static file fetched by its fingerprinted URL (app/fingerprints.py).
    STATIC_MAX_AGE_SECONDS = _int("STATIC_MAX_AGE_SECONDS", 31_536_000)
    SQLITE_BUSY_TIMEOUT_SECONDS = _int("SQLITE_BUSY_TIMEOUT_SECONDS", 30)
    # Retry-After of the 503 answered when the database is unreachable for a moment.
    RETRY_AFTER_SECONDS = _int("RETRY_AFTER_SECONDS", 5)

    # Scheduling. The admission search's work budget per decision, in counted steps (about
    # 1-4 us each; docs/scheduling.md, "Exactness and the budget"), and how many of the
    # deployments holding what a queued one waits for its reason names.
    SCHEDULER_WORK_BUDGET = _int("SCHEDULER_WORK_BUDGET", 12_000)
    SCHEDULER_BLOCKERS_LISTED = _int("SCHEDULER_BLOCKERS_LISTED", 5)
    # Fair use (docs/scheduling.md, "Fair use"): simulated end events per start-time estimate
    # or reservation, follow-up decisions after one that freed room while work was held, the
    # longest maximum run time a deployment may ask for (minutes), and how often
    # `flask kargo expire` finishes deployments whose maximum run time is over (seconds).
    SCHEDULER_ESTIMATE_EVENTS = _int("SCHEDULER_ESTIMATE_EVENTS", 200)
    SCHEDULER_SETTLE_ROUNDS = _int("SCHEDULER_SETTLE_ROUNDS", 3)
    MAX_RUN_MINUTES_CEILING = _int("MAX_RUN_MINUTES_CEILING", 525_600)
    EXPIRE_INTERVAL_SECONDS = _int("EXPIRE_INTERVAL_SECONDS", 30)
    # Defaults of a new cluster's repack settings (off by default; owners and admins turn it
    # on per cluster): the gain each move must bring, in percent of mean utilization, the
    # moves allowed per hour, and the minutes before the same deployment may move again.
    REPACK_THRESHOLD_PERCENT = os.environ.get("REPACK_THRESHOLD_PERCENT", "2")
    REPACK_MAX_PER_HOUR = _int("REPACK_MAX_PER_HOUR", 6)
    REPACK_COOLDOWN_MINUTES = _int("REPACK_COOLDOWN_MINUTES", 60)

    # Runtime (app/runtime, docs in the README's "Going live"). Engines are declared by the
    # operator in the TOML file ENGINES_FILE (or ENGINES, a mapping, in code); clusters
    # without one stay simulated. RUNTIME_INSTALL_ID labels this installation's containers.
    ENGINES_FILE = os.environ.get("ENGINES_FILE", "")
    ENGINES: dict = {}
    RUNTIME_INSTALL_ID = os.environ.get("RUNTIME_INSTALL_ID", "kargo")
    RUNTIME_ENGINE_TIMEOUT_SECONDS = _int("RUNTIME_ENGINE_TIMEOUT_SECONDS", 10)
    RUNTIME_STOP_GRACE_SECONDS = _int("RUNTIME_STOP_GRACE_SECONDS", 10)
    RUNTIME_PIDS_LIMIT = _int("RUNTIME_PIDS_LIMIT", 256)
    # A container that exits is restarted after 2, 4, 8 ... seconds, at most the maximum.
    RUNTIME_RESTART_BACKOFF_SECONDS = _int("RUNTIME_RESTART_BACKOFF_SECONDS", 2)
    RUNTIME_RESTART_BACKOFF_MAX_SECONDS = _int("RUNTIME_RESTART_BACKOFF_MAX_SECONDS", 300)
    RUNTIME_PULL_RETRY_SECONDS = _int("RUNTIME_PULL_RETRY_SECONDS", 60)
    RUNTIME_LOG_LINES = _int("RUNTIME_LOG_LINES", 50)
    # What a deployment may ask of a real container.
    DEPLOYMENT_MAX_PORTS = _int("DEPLOYMENT_MAX_PORTS", 16)
    DEPLOYMENT_MAX_ENV = _int("DEPLOYMENT_MAX_ENV", 64)
    DEPLOYMENT_ENV_VALUE_MAX = _int("DEPLOYMENT_ENV_VALUE_MAX", 4096)
    DEPLOYMENT_COMMAND_MAX = _int("DEPLOYMENT_COMMAND_MAX", 1000)
    # The reconciler (`flask kargo reconcile`): how often it looks for a scheduling change
    # (PostgreSQL also wakes it at once with LISTEN/NOTIFY), how often it resyncs with nothing
    # changed, how long a cluster's lease lasts without renewal, and its parallel engine calls.
    RECONCILER_POLL_MS = _int("RECONCILER_POLL_MS", 500)
    RECONCILER_RESYNC_SECONDS = _int("RECONCILER_RESYNC_SECONDS", 15)
    RECONCILER_LEASE_SECONDS = _int("RECONCILER_LEASE_SECONDS", 20)
    RECONCILER_WORKERS = _int("RECONCILER_WORKERS", 8)
    # The reconciler process's own Prometheus endpoint (0: off).
    RECONCILER_METRICS_PORT = _int("RECONCILER_METRICS_PORT", 0)
    RECONCILER_METRICS_ADDRESS = os.environ.get("RECONCILER_METRICS_ADDRESS", "127.0.0.1")

    # Cookies and CSRF. The CSRF token must outlive a dashboard left open all day.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None
    # The address people open (https://kargo.example.com): invite and reset links are built on
    # it. Production needs it, or TRUSTED_HOSTS, so a forged Host header cannot steer them.
    PUBLIC_URL = os.environ.get("PUBLIC_URL", "").strip()
    # Host names Kargo answers to (comma-separated); any other Host header gets 400.
    TRUSTED_HOSTS = _list("TRUSTED_HOSTS")
    # Strict-Transport-Security max-age sent in production (0: no header).
    HSTS_SECONDS = 0

    # History: audit entries (and the usage trail's finest rows) older than this many days are
    # deleted by `flask kargo prune-history`.
    HISTORY_RETENTION_DAYS = _int("HISTORY_RETENTION_DAYS", 365)
    # The resource trail (usage per cluster and kind): change rows are rolled up into minute
    # rows after USAGE_RAW_HOURS, minute rows into hour rows after USAGE_MINUTE_DAYS (by the
    # prune command). A usage query may ask for at most USAGE_MAX_POINTS points, each at
    # least USAGE_MIN_STEP_SECONDS long.
    USAGE_RAW_HOURS = _int("USAGE_RAW_HOURS", 48)
    USAGE_MINUTE_DAYS = _int("USAGE_MINUTE_DAYS", 14)
    USAGE_MAX_POINTS = _int("USAGE_MAX_POINTS", 1000)
    USAGE_MIN_STEP_SECONDS = _int("USAGE_MIN_STEP_SECONDS", 10)

    # Webhooks and the notify worker (`flask kargo notify`; docs/webhooks.md).
    MAX_WEBHOOKS_PER_ORGANIZATION = _int("MAX_WEBHOOKS_PER_ORGANIZATION", 20)
    WEBHOOK_TIMEOUT_SECONDS = _int("WEBHOOK_TIMEOUT_SECONDS", 5)
    WEBHOOK_MAX_ATTEMPTS = _int("WEBHOOK_MAX_ATTEMPTS", 8)
    WEBHOOK_RETRY_BASE_SECONDS = _int("WEBHOOK_RETRY_BASE_SECONDS", 30)
    WEBHOOK_RETRY_MAX_SECONDS = _int("WEBHOOK_RETRY_MAX_SECONDS", 6 * 3600)
    # Only these hosts may receive webhooks (comma-separated); unset: any public host.
    WEBHOOK_ALLOWED_HOSTS = _list("WEBHOOK_ALLOWED_HOSTS")
    # 1 lets webhooks reach loopback and private addresses (a receiver on the same network).
    WEBHOOK_ALLOW_PRIVATE_TARGETS = os.environ.get("WEBHOOK_ALLOW_PRIVATE_TARGETS", "0") == "1"
    # Settled deliveries (and their attempts) are pruned after this many days.
    DELIVERY_RETENTION_DAYS = _int("DELIVERY_RETENTION_DAYS", 30)
    # How long a worker holds a delivery it is sending (longer than the timeout).
    DELIVERY_CLAIM_SECONDS = _int("DELIVERY_CLAIM_SECONDS", 60)
    NOTIFY_INTERVAL_SECONDS = _int("NOTIFY_INTERVAL_SECONDS", 5)
    NOTIFY_BATCH_SIZE = _int("NOTIFY_BATCH_SIZE", 50)
    # A queued deployment waiting longer than this is reported once (deployment.queued_long).
    QUEUED_TOO_LONG_SECONDS = _int("QUEUED_TOO_LONG_SECONDS", 1800)

    # Mail about one's own deployments (preempted, started after waiting, failed), sent by the
    # notify worker when SMTP_HOST is set; each user chooses on their profile.
    SMTP_HOST = os.environ.get("SMTP_HOST", "").strip()
    SMTP_PORT = _int("SMTP_PORT", 25)
    SMTP_USERNAME = os.environ.get("SMTP_USERNAME", "")
    SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD", "")
    SMTP_STARTTLS = os.environ.get("SMTP_STARTTLS", "0") == "1"
    SMTP_TIMEOUT_SECONDS = _int("SMTP_TIMEOUT_SECONDS", 10)
    MAIL_FROM = os.environ.get("MAIL_FROM", "kargo@localhost")
    # A start is worth a mail only after waiting at least this long in the queue.
    MAIL_STARTED_AFTER_WAIT_SECONDS = _int("MAIL_STARTED_AFTER_WAIT_SECONDS", 60)

    # Telemetry. LOG_FORMAT: json (one object per line), text, or off (leave logging alone).
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "text")
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
    LOG_REQUESTS = os.environ.get("LOG_REQUESTS", "1") != "0"
    # Bearer token that GET /metrics requires; empty turns the endpoint off (404).
    METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")


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
    LOG_FORMAT = "off"  # pytest captures records itself


class ProductionConfig(Config):
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "json")
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "1") != "0"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    HSTS_SECONDS = _int("HSTS_SECONDS", 365 * 24 * 3600)

    @classmethod
    def validate(cls) -> None:
        """Refuse to start production with a missing or known-insecure secret key, or with
        links that would be built from whatever Host header a request sends."""
        key = os.environ.get("SECRET_KEY", "")
        if not key or key == INSECURE_SECRET or len(key) < 16:
            raise RuntimeError(
                "SECRET_KEY must be set to a random value of at least 16 characters in production"
            )
        public_url = os.environ.get("PUBLIC_URL", "").strip()
        if public_url and not public_url.startswith(("https://", "http://")):
            raise RuntimeError(f"PUBLIC_URL must start with https:// (got {public_url!r})")
        if not public_url and not _list("TRUSTED_HOSTS"):
            raise RuntimeError(
                "set PUBLIC_URL (the address people open, such as https://kargo.example.com) "
                "or TRUSTED_HOSTS in production: invite and reset links must not be built from "
                "the request's Host header"
            )


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}
