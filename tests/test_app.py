"""The application factory, configuration, health check and security headers."""

from __future__ import annotations

import pytest

from app import create_app


def test_healthz_checks_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_security_headers_on_every_page(client):
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_production_refuses_to_start_without_a_real_secret(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app("production")
    monkeypatch.setenv("SECRET_KEY", "short")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app("production")


def test_unknown_environment_is_refused():
    with pytest.raises(RuntimeError, match="KARGO_ENV"):
        create_app("staging")


def test_unknown_page_is_a_clean_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert b"Not found" in response.data


def test_unknown_api_path_answers_json(client):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
