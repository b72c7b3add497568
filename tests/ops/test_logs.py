"""Request ids and structured logs: one id per request, in the response, the error and the log."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from flask import Flask

from app.telemetry.logs import JsonFormatter, redact


def test_every_response_carries_a_request_id(client) -> None:
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert len(first) == 16 and first != second


def test_a_sane_incoming_request_id_is_kept_and_an_odd_one_replaced(client) -> None:
    kept = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a9c21"})
    assert kept.headers["X-Request-ID"] == "lb-7f3a9c21"
    for odd in ("short", "has space in it", "x" * 200, "<script>alert(1)</script>"):
        answered = client.get("/healthz", headers={"X-Request-ID": odd}).headers["X-Request-ID"]
        assert answered != odd and len(answered) == 16


def test_json_errors_and_error_pages_name_the_request_id(client) -> None:
    api = client.get("/api/v1/cluster/1/", headers={"X-Request-ID": "trace-api-0001"})
    assert api.status_code == 401
    assert api.get_json()["error"]["request_id"] == "trace-api-0001"
    page = client.get("/no-such-page", headers={"X-Request-ID": "trace-page-0001"})
    assert page.status_code == 404
    assert "Reference: <code>trace-page-0001</code>" in page.get_data(as_text=True)


@pytest.fixture
def failing_app(app: Flask) -> Flask:
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer 500 as production does

    @app.get("/boom/<code>")
    def boom(code: str):
        raise RuntimeError("the database said no")

    return app


def test_an_unhandled_error_is_logged_once_with_its_traceback_and_id(failing_app, caplog) -> None:
    client = failing_app.test_client()
    with caplog.at_level(logging.ERROR):
        response = client.get(
            "/boom/s3cr3t-invite-code", headers={"X-Request-ID": "trace-500-0001"}
        )
    assert response.status_code == 500
    assert "trace-500-0001" in response.get_data(as_text=True)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    (record,) = errors
    assert record.request_id == "trace-500-0001"
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "trace-500-0001"
    assert line["endpoint"] == "/boom/<code>"
    assert "RuntimeError: the database said no" in line["exception"]
    assert "s3cr3t-invite-code" not in json.dumps(line)


def test_the_json_line_has_the_context_fields() -> None:
    record = logging.LogRecord("kargo.request", logging.INFO, __file__, 1, "GET %s", ("/x",), None)
    record.request_id, record.user_id, record.status = "abc123abc123", 7, 200
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "GET /x"
    assert (line["level"], line["logger"], line["request_id"], line["user_id"], line["status"]) == (
        "info",
        "kargo.request",
        "abc123abc123",
        7,
        200,
    )
    assert line["ts"].endswith("+00:00")


def test_exceptions_in_the_json_line_are_redacted() -> None:
    try:
        raise ValueError("GET https://kargo.example/invite/AbCdEf0123456789xyz?token=abc")
    except ValueError:
        record = logging.LogRecord(
            "kargo", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    text = JsonFormatter().format(record)
    assert "AbCdEf0123456789xyz" not in text and "token=abc" not in text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("redirect to /invite/Zm9vYmFyYmF6cXV4cXV1eA-_ now", "Zm9vYmFyYmF6cXV4cXV1eA-_"),
        ("/reset/abcdefgh12345678 expired", "abcdefgh12345678"),
        ("Authorization: Bearer kg_abcdefghijklmnop", "kg_abcdefghijklmnop"),
        ("?code=123456789&next=/", "123456789"),
        ("password=hunter2hunter2", "hunter2hunter2"),
    ],
)
def test_redact_blanks_secrets(text: str, secret: str) -> None:
    assert secret not in redact(text)
    assert "[redacted]" in redact(text)
