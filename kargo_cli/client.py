"""A small JSON client of Kargo's API, on the standard library's urllib.

Every call returns the decoded JSON of a 2xx answer or raises `ApiError` carrying the exit code
the command line ends with (see `ExitCode`), the server's message and its per-field problems.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from enum import IntEnum
from typing import Any

API_PREFIX = "/api/v1"
DEFAULT_HTTP_TIMEOUT_SECONDS = 30


class ExitCode(IntEnum):
    """How `kargo` ends. Documented in the README and docs/api.md; scripts rely on them."""

    OK = 0
    ERROR = 1  # the server refused the request (invalid, forbidden, conflict, limit), or failed
    USAGE = 2  # wrong options or arguments (Click's own code)
    AUTH = 3  # no token, or the token is unknown, expired or revoked: run `kargo login`
    NOT_FOUND = 4  # no such deployment or cluster in your organization
    NOT_RUNNING = 5  # --wait timed out before it ran; a plan that would wait
    UNREACHABLE = 6  # the server could not be reached, or did not answer as Kargo does


class ApiError(Exception):
    def __init__(
        self,
        message: str,
        exit_code: ExitCode = ExitCode.ERROR,
        status: int | None = None,
        code: str | None = None,
        fields: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.status = status
        self.code = code
        self.fields = fields or {}
        self.details = details or {}  # more JSON for --json output, beside "error"


def _exit_code_for(status: int) -> ExitCode:
    if status == 401:
        return ExitCode.AUTH
    if status == 404:
        return ExitCode.NOT_FOUND
    return ExitCode.ERROR


def normalize_url(url: str) -> str:
    """`http://host:8001`, with or without a trailing slash or the /api/v1 prefix."""
    url = url.strip().rstrip("/")
    if url.endswith(API_PREFIX):
        url = url[: -len(API_PREFIX)]
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(
            f"{url!r} is not a server address; give one like http://kargo.example.com:8001",
            ExitCode.USAGE,
        )
    return url


class Client:
    def __init__(
        self, url: str, token: str | None = None, timeout: float = DEFAULT_HTTP_TIMEOUT_SECONDS
    ) -> None:
        self.url = normalize_url(url)
        self.token = token
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        authenticated: bool = True,
    ) -> Any:
        """Send one request to /api/v1 + `path`; the JSON answer (None for 204)."""
        url = self.url + API_PREFIX + path
        if query:
            given = {key: value for key, value in query.items() if value is not None}
            if given:
                url += "?" + urllib.parse.urlencode(given)
        headers = {"Accept": "application/json", "User-Agent": "kargo-cli"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if authenticated:
            if not self.token:
                raise ApiError(
                    "You are not logged in: run `kargo login`, or set KARGO_TOKEN.",
                    ExitCode.AUTH,
                )
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return _decode(response.status, response.read(), url)
        except urllib.error.HTTPError as error:
            raise _api_error(error.code, error.read(), url) from None
        except (TimeoutError, urllib.error.URLError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise ApiError(
                f"Cannot reach Kargo at {self.url}: {reason}", ExitCode.UNREACHABLE
            ) from None

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query)

    def pages(self, path: str, page_size: int = 100, **query: Any) -> list[dict[str, Any]]:
        """Every item of a paged list, page after page."""
        items: list[dict[str, Any]] = []
        page = 0
        while True:
            body = self.get(path, page=page, offset=page_size, **query)
            items.extend(body["items"])
            if not body["items"] or len(items) >= body["total"]:
                return items
            page += 1


def _decode(status: int, raw: bytes, url: str) -> Any:
    if status == 204 or not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(
            f"{url} did not answer JSON: is this a Kargo server?", ExitCode.UNREACHABLE
        ) from None


def _api_error(status: int, raw: bytes, url: str) -> ApiError:
    try:
        error = json.loads(raw)["error"]
        message, code, fields = error["message"], error.get("code"), error.get("fields") or {}
    except (ValueError, KeyError, TypeError):
        return ApiError(
            f"{url} answered {status} without a Kargo error: is this a Kargo server?",
            ExitCode.UNREACHABLE if status != 401 else ExitCode.AUTH,
            status,
        )
    if status == 401 and code in ("token_invalid", "token_missing"):
        message += " Run `kargo login`, or set KARGO_TOKEN."
    return ApiError(message, _exit_code_for(status), status, code, fields)
