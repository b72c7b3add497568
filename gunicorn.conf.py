"""gunicorn settings that belong to Kargo rather than to one start command.

gunicorn reads this file from its working directory by default: `boot.sh` (the image and
compose, which also names it with --config), `make run` and the tests that start real workers
all get it. Command-line flags (bind address, worker count) still win over what is set here.

Worker class: gevent. With gunicorn's default sync workers every connection holds a whole
worker process until its request is read and answered, so a handful of clients sending their
bodies one byte a second took every worker and the service stopped answering. A gevent worker
serves each connection in a greenlet: a slow client waits on its socket without holding
anyone else up, up to WORKER_CONNECTIONS connections per worker.

Both database drivers cooperate: psycopg 3 sees gevent's monkey-patching (done by the worker
before the application is imported) and waits on its sockets through gevent; SQLite calls run
to completion without yielding, and a scheduling transaction does no network I/O between its
BEGIN IMMEDIATE and its COMMIT, so greenlets of one worker never interleave inside one.
Limits that the application enforces (form and JSON body sizes) are in config.py.
"""

from __future__ import annotations

import os


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


bind = f"0.0.0.0:{_int('PORT', 8001)}"
workers = _int("WEB_CONCURRENCY", 4)
worker_class = "gevent"
worker_connections = _int("WORKER_CONNECTIONS", 1000)
# A worker whose event loop is blocked this long (a runaway request) is restarted.
timeout = _int("WORKER_TIMEOUT_SECONDS", 30)
keepalive = _int("KEEPALIVE_SECONDS", 5)
# No control socket: Kargo does not use `gunicornc`, and the default socket under $HOME would
# need a writable home directory and collide between instances sharing one.
control_socket_disable = True

# Kargo writes one JSON access line per request itself (with the request id, the user and
# the route template rather than the raw path); gunicorn's own access log would repeat it.
accesslog = None


def _log_format() -> str:
    """The same choice as config.py: LOG_FORMAT, else JSON in production and text elsewhere."""
    chosen = os.environ.get("LOG_FORMAT", "").strip()
    if chosen:
        return chosen
    return "json" if os.environ.get("KARGO_ENV") == "production" else "text"


# gunicorn's own lines (the master's start and stop, a worker's timeout) in Kargo's JSON format;
# inside workers the app routes them through the same handler (app/telemetry/logs.py).
if _log_format() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "app.telemetry.logs.JsonFormatter"}},
        # Named "kargo" like the handler the app installs in each worker
        # (app/telemetry/logs.py), which replaces it there instead of printing every line twice.
        "handlers": {
            "kargo": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": "INFO", "handlers": ["kargo"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["kargo"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
    }


def child_exit(server, worker) -> None:
    """A worker left: its Prometheus samples stay in the totals, its live gauges go with it."""
    from app.telemetry.metrics import mark_worker_dead

    mark_worker_dead(worker.pid)


def post_worker_init(worker) -> None:
    """The application is loaded: move everything it holds (modules, the SQLAlchemy metadata
    and caches, the Flask app) out of the garbage collector's generations.

    A decision on a large cluster makes tens of thousands of short-lived objects, and each of
    the full collections they trigger walked this whole loaded heap again: at 10,000
    deployments in one cluster, collections took about a quarter of a decision's time
    (bench/decision_path_bench.py). Frozen objects are never collected, which is what objects
    living as long as the worker need anyway.
    """
    import gc

    gc.collect()
    gc.freeze()
