"""Signing a browser in without the login form (the login form has its own tests)."""

from __future__ import annotations

from flask import Flask
from flask_login.utils import _create_identifier


def sign_in(page, live_server, user) -> None:
    """Put a signed session cookie for `user` in the page's browser context.

    Strong session protection ties a session to the address and user agent, so the identifier
    is computed for this browser's. Call it on the blank page, before any visit: a response
    still in flight from an earlier page (a favicon's 404 sets an anonymous session cookie)
    would overwrite the cookie.
    """
    from app.services import accounts

    app: Flask = live_server.app
    user_agent = page.evaluate("navigator.userAgent")
    environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": user_agent}
    with app.test_request_context(environ_base=environ):
        identifier = _create_identifier()
    session = {"_user_id": accounts.open_session(user), "_fresh": True, "_id": identifier}
    cookie = app.session_interface.get_signing_serializer(app).dumps(session)
    page.context.add_cookies(
        [{"name": app.config["SESSION_COOKIE_NAME"], "value": cookie, "url": live_server.url}]
    )
