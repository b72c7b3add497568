"""Error pages for HTML requests and JSON errors for the API, chosen by path."""

from __future__ import annotations

from flask import Flask, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import (
    HTTPException,
    MethodNotAllowed,
    RequestEntityTooLarge,
    SecurityError,
)

from app.services import health
from app.services.errors import DomainError
from app.telemetry.web import request_id

_TITLES = {
    400: "Bad request",
    401: "Please log in",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Request too large",
    422: "Invalid input",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Unavailable",
}


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, message: str, code: str | None = None, fields=None):
    if wants_json():
        body = {
            "error": {
                "code": code or _code(status),
                "message": message,
                "fields": fields or {},
                "request_id": request_id(),
            }
        }
        return jsonify(body), status
    title = _TITLES.get(status, "Error")
    page = render_template(
        "errors/error.html", status=status, title=title, message=message, request_id=request_id()
    )
    return page, status


def with_retry_after(response, exc: HTTPException):
    """Copy a 429's Retry-After (seconds until the limit's window ends) onto our own page."""
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        seconds = retry_after if isinstance(retry_after, int) else None
        response.headers["Retry-After"] = str(seconds or 60)
    return response


def _code(status: int) -> str:
    return _TITLES.get(status, "error").lower().replace(" ", "_")


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return error_response(
            400,
            "Your form expired or was not sent from Kargo. Reload the page and try again.",
            code="csrf_failed",
        )

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        return error_response(exc.status, exc.message, exc.code, exc.fields)

    @app.errorhandler(429)
    def rate_limited(exc: HTTPException):
        response = make_response(
            error_response(
                429, "Too many attempts. Please wait a minute and try again.", code="rate_limited"
            )
        )
        return with_retry_after(response, exc)

    @app.errorhandler(SecurityError)
    def untrusted_host(exc: SecurityError):
        # A Host header outside TRUSTED_HOSTS: no URL can be built for it, so no page either.
        return app.response_class(
            "This host name is not served here.\n", 400, mimetype="text/plain"
        )

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge):
        limit = request.max_content_length or 0
        if wants_json():
            message = f"The request body is larger than the {limit:,} bytes accepted."
        else:
            message = (
                f"This form is larger than Kargo accepts ({limit // 1024} KiB at most). "
                "Go back, shorten what you typed and send it again."
            )
        response = make_response(error_response(413, message, code="too_large"))
        # The body was refused unread: close rather than read (and discard) the rest of it.
        response.headers["Connection"] = "close"
        return response

    def database_unavailable(exc: Exception):
        health.recover()
        app.logger.warning("database unavailable: %s", exc.__class__.__name__)
        body, status = error_response(
            503,
            "Kargo cannot reach its database right now. Please try again in a few seconds.",
            code="unavailable",
        )
        response = make_response(body, status)
        response.headers["Retry-After"] = str(app.config["RETRY_AFTER_SECONDS"])
        return response

    for error_class in health.UNAVAILABLE_ERRORS:
        app.register_error_handler(error_class, database_unavailable)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        body, status = error_response(
            exc.code or 500, exc.description or _TITLES.get(exc.code, "Error")
        )
        response = make_response(body, status)
        # A 405 must say which methods the path accepts (RFC 9110), for pages and the API alike.
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(500)
    def internal_error(exc: Exception):
        from app.extensions import db

        db.session.rollback()
        return error_response(500, "An unexpected error happened. It has been logged.")
