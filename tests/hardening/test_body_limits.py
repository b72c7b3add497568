"""HTML form posts have a body limit with a clear 413 page (the API keeps its own, smaller one).

Issue: an anonymous 100 MB form POST to /login was parsed, and the worker grew from 80 to
265 MB. Werkzeug refuses a body over MAX_CONTENT_LENGTH (FORM_MAX_BODY_BYTES) from its
Content-Length alone, before reading it; the slow-client test checks the same against real
gunicorn with a 100 MB announcement.
"""

from __future__ import annotations

import io

import sqlalchemy as sa

from app.models import User


def test_a_form_over_the_limit_gets_a_clear_413_page_and_writes_nothing(app, client, db):
    limit = app.config["MAX_CONTENT_LENGTH"]
    assert limit == app.config["FORM_MAX_BODY_BYTES"]
    data = {
        "username": "mallory",
        "display_name": "x" * limit,
        "organization_name": "Big",
        "password": "difference-engine",
        "confirm": "difference-engine",
    }
    response = client.post("/signup", data=data)
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "Request too large" in page
    assert f"{limit // 1024} KiB" in page
    assert response.headers["Connection"] == "close"
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 0


def test_a_huge_announced_body_is_refused_without_being_read(client):
    """100 MB announced: refused from the header; the stream is never consumed."""
    stream = io.BytesIO(b"username=a&password=b")
    response = client.post(
        "/login",
        input_stream=stream,
        content_type="application/x-www-form-urlencoded",
        environ_overrides={"CONTENT_LENGTH": str(100 * 1024 * 1024)},
    )
    assert response.status_code == 413
    assert stream.tell() == 0


def test_a_form_under_the_limit_is_served(client):
    response = client.post("/login", data={"username": "nobody", "password": "x" * 1000})
    assert response.status_code == 401


def test_the_api_keeps_its_own_limit_and_json_errors(app, client):
    size = app.config["API_MAX_BODY_BYTES"] + 1
    response = client.post(
        "/api/v1/user/login/",
        data=b"{" + b" " * size + b"}",
        content_type="application/json",
    )
    assert response.status_code == 413
    error = response.get_json()["error"]
    assert error["code"] == "too_large"
    assert f"{app.config['API_MAX_BODY_BYTES']:,} bytes" in error["message"]
