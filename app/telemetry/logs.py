"""Structured logs: one JSON object per line, carrying the request id people see.

`JsonFormatter` writes `ts`, `level`, `logger`, `message`, and whatever context the record
carries: the request id, the user and organization ids where known, the route template (never
the raw path, which may hold an invite or reset code), the status and the duration, and a
traceback under `exception`. Request context comes from `install_context`, given a function
by the app (this module imports nothing of Flask's), so gunicorn's own log lines get it too
when they are written inside a request.

Secrets never reach a log line by construction: Kargo logs no request bodies, no headers and no
query strings, and route templates instead of paths. `redact` is a last line of defence for
messages built from exceptions, which may quote a URL.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

# Context fields copied from a record to the JSON line when present.
CONTEXT_FIELDS = (
    "request_id",
    "user_id",
    "organization_id",
    "method",
    "endpoint",
    "status",
    "duration_ms",
    "remote_addr",
)

# Query parameters and path segments that carry secrets anywhere in Kargo.
_SECRET_QUERY = re.compile(r"(?i)\b(code|token|password|secret)=([^&\s\"']+)")
_SECRET_PATH = re.compile(r"(?i)/(invite|reset)/[A-Za-z0-9_\-]{8,}")
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{8,}")


def redact(text: str) -> str:
    """Blank out what looks like a secret in free text (a URL quoted by an exception, say)."""
    text = _SECRET_QUERY.sub(lambda m: f"{m.group(1)}=[redacted]", text)
    text = _SECRET_PATH.sub(lambda m: f"/{m.group(1)}/[redacted]", text)
    return _BEARER.sub("Bearer [redacted]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = redact("".join(traceback.format_exception(*record.exc_info)))
        return json.dumps(line, default=str, ensure_ascii=False)


_context: Callable[[], Mapping[str, Any]] = dict
_factory_installed = False


def install_context(context: Callable[[], Mapping[str, Any]]) -> None:
    """Give every log record written from now on the context `context()` returns.

    A log record factory rather than a handler filter, so the context reaches every handler,
    pytest's included, and records of every logger (Kargo's, Flask's, gunicorn's).
    """
    global _context, _factory_installed
    _context = context
    if _factory_installed:
        return
    _factory_installed = True
    original = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = original(*args, **kwargs)
        try:
            values = _context()
        except Exception:  # outside an app or request context: nothing to add
            values = {}
        for name, value in values.items():
            setattr(record, name, value)
        return record

    logging.setLogRecordFactory(factory)


def configure(level: str, fmt: str) -> None:
    """Send every log record (Kargo's, Flask's, gunicorn's) to stderr in the chosen format.

    `fmt` is "json", "text", or "off" (leave logging as the host set it up: the tests). Called
    by `create_app`; calling it again replaces the handler rather than adding a second one.
    """
    if fmt == "off":
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name("kargo")
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
        handler.addFilter(_DefaultRequestId())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "kargo":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # gunicorn's error logger keeps its own handlers unless told to propagate to the root.
    error_log = logging.getLogger("gunicorn.error")
    error_log.handlers.clear()
    error_log.propagate = True
    # Its access log stays silent: Kargo writes one line per request itself (kargo.request,
    # with the route template), while gunicorn's line would repeat it with the raw path and
    # query string, where invite codes and reset tokens travel.
    access_log = logging.getLogger("gunicorn.access")
    access_log.handlers[:] = [logging.NullHandler()]
    access_log.propagate = False


class _DefaultRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        return True
