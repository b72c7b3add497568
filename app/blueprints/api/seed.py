"""The seed's unprefixed API paths: a 308 to the same path under /api/v1 for API clients.

The original design served its API without a prefix (`/user/login/`, `/cluster/<pk>/`,
`/deployment/?clusterId=`), and its curl examples follow redirects (`--location`). Kargo keeps
the API under /api/v1 and the pages at the root, so a request to a path under one of the seed's
roots (`SEED_ROOTS`) is answered with a 308 Permanent Redirect to the same path under the
prefix, query string kept, when it is an API client's. A 308 keeps the method and the body, so
curl repeats a PUT or a POST with its JSON at the new address.

Who is an API client is decided from the request alone, so browsers keep the pages:
  * a request with a bearer token, a JSON body, or an Accept header that prefers JSON over HTML
    is an API client's wherever it goes;
  * a request that says nothing either way (curl's `Accept: */*`) is redirected only where no
    page answers it (every seed path but `/organization`, whose page stays a page);
  * a browser (htmx's `HX-Request`, or an Accept header naming text/html, as every navigation
    does) is never redirected: it gets the page, or the usual 404 page.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Response, redirect, request

from app.blueprints.api import PREFIX, bp
from app.blueprints.api.auth import bearer_token

SEED_ROOTS = frozenset({"user", "organization", "cluster", "deployment"})
# Characters a path keeps unescaped in the Location header (RFC 3986 pchar and "/").
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def is_seed_path(path: str) -> bool:
    """Is `path` (without the prefix) under one of the seed's API roots?"""
    return path.strip("/").split("/", 1)[0] in SEED_ROOTS


def asks_for_html() -> bool:
    """Does the Accept header name text/html itself (not only through a wildcard)?"""
    return any(value == "text/html" and quality > 0 for value, quality in request.accept_mimetypes)


def is_browser() -> bool:
    """htmx, or a navigation (browsers name text/html in Accept when they want a page)."""
    return bool(request.headers.get("HX-Request")) or asks_for_html()


def is_api_client() -> bool:
    """A bearer token, a JSON body, or JSON preferred over HTML: nobody's browser tab."""
    if request.headers.get("HX-Request"):
        return False
    if bearer_token() is not None or request.is_json:
        return True
    accept = request.accept_mimetypes
    return bool(request.headers.get("Accept")) and accept["application/json"] > accept["text/html"]


def page_answers() -> bool:
    """Would a page (not the API) answer this request as it stands?"""
    return request.url_rule is not None and not request.url_rule.endpoint.startswith("api.")


@bp.before_app_request
def redirect_seed_paths() -> Response | None:
    if not is_seed_path(request.path):
        return None
    if not is_api_client() and (is_browser() or page_answers()):
        return None
    location = request.script_root + PREFIX + quote(request.path, safe=_PATH_SAFE)
    if request.query_string:
        location += "?" + request.query_string.decode("latin-1")
    response = redirect(location, 308)
    # The answer depends on these headers, and a browser must never reuse it for a page.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Accept, Authorization, Content-Type, HX-Request"
    return response
