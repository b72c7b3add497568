"""gunicorn settings that belong to Kargo rather than to one start command.

gunicorn reads this file from its working directory by default: `boot.sh` (the image and
compose), `make run` and the tests that start real workers all get it. Command-line flags
(bind address, worker count) still win over what is set here.
"""

from __future__ import annotations

import os

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
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
    }


def child_exit(server, worker) -> None:
    """A worker left: its Prometheus samples stay in the totals, its live gauges go with it."""
    from app.telemetry.metrics import mark_worker_dead

    mark_worker_dead(worker.pid)
