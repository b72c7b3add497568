"""Absolute links that the pages and the JSON API both hand out."""

from __future__ import annotations

from flask import current_app, url_for


def invite_link(code: str) -> str:
    """The link an invitee opens: under PUBLIC_URL when configured (behind a proxy), else on
    this request's host."""
    public_url = (current_app.config.get("PUBLIC_URL") or "").rstrip("/")
    if public_url:
        return public_url + url_for("accounts.invite", code=code)
    return url_for("accounts.invite", code=code, _external=True)
