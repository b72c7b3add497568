"""Answers to the polls of live partials (cluster dashboard, deployment page, lists).

A live partial's root carries its version (`data-live-version`, the partial's ETag) and
polls its own URL every POLL_INTERVAL_SECONDS; app.js sends that version back in the
`X-Kargo-Live-Version` header. An unchanged poll costs one small read and answers:

- 204 when the header names the current version: htmx swaps nothing on a 204, so focus,
  selection and scroll inside the partial stay untouched;
- 304 when `If-None-Match` names it (a client without the header, such as curl). A browser
  would hand htmx its cached 200 for a 304, which is why the header answer comes first.

A changed poll gets 200 with the partial, which htmx morphs into the page (idiomorph): the
elements that survive keep focus, selection and scroll.

A poll from a browser whose session ended gets 286 (htmx stops polling) and an HX-Redirect
to the login page; a poll for an object that is gone gets the `gone` template with 286.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, current_app, render_template, request, url_for
from flask_login import current_user

from app.extensions import login_manager
from app.services.errors import NotFound

# htmx stops polling when a poll is answered with this status.
STOP_POLLING = 286
VERSION_HEADER = "X-Kargo-Live-Version"


def unchanged(etag: str) -> Response | None:
    """The empty answer to a poll that already shows `etag` (204 or 304), else None."""
    if request.headers.get(VERSION_HEADER) == etag:
        return revalidated(current_app.response_class(status=204), etag)
    if etag in request.if_none_match:
        return revalidated(current_app.response_class(status=304), etag)
    return None


def revalidated(response: Response, etag: str) -> Response:
    """Let the browser keep the partial but revalidate it on every poll (If-None-Match)."""
    response.set_etag(etag)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def poll(
    etag_of: Callable[[], str],
    render: Callable[[str], str],
    page_url: str,
    gone: str | None = None,
) -> Response:
    """Answer one poll: `etag_of()` reads the current version (may raise NotFound),
    `render(etag)` renders the partial; `page_url` is where to come back after a login;
    `gone` is the template shown (with 286) when the object no longer exists."""
    polling = bool(request.headers.get("HX-Request"))
    if not current_user.is_authenticated:
        if polling:  # the session ended under an open page: stop and go to login
            response = current_app.response_class("", STOP_POLLING)
            response.headers["HX-Redirect"] = url_for("accounts.login", next=page_url)
            return response
        return login_manager.unauthorized()
    try:
        etag = etag_of()
        if (answer := unchanged(etag)) is not None:
            return answer  # nothing changed since this page's last poll: no load, no render
        body = render(etag)
    except NotFound:
        if not polling or gone is None:
            raise
        return current_app.response_class(render_template(gone), STOP_POLLING)
    return revalidated(current_app.make_response(body), etag)
