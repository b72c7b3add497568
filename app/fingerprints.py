"""Fingerprinted static URLs: every `url_for('static', ...)` carries the file's content hash
(`/static/app.css?v=3f2a...`), and a request naming the current hash is answered with a long
`Cache-Control: public, max-age=STATIC_MAX_AGE_SECONDS, immutable`. A page load then uses the
browser's copies without asking again; a changed file gets a new URL, so nobody keeps an old
one. A request without the hash, or with an outdated one, is revalidated as usual (no-cache).

Hashes are computed once per file and process (a file served by Kargo does not change under
a running process: deploying a new version restarts it); in debug mode they follow edits.
"""

from __future__ import annotations

import hashlib
import os

from flask import Flask, Response, request

HASH_LENGTH = 16


def register(app: Flask) -> None:
    cache: dict[str, tuple[float, str | None]] = {}

    def fingerprint(filename: str) -> str | None:
        """The content hash of a static file, or None for a file that does not exist."""
        path = os.path.join(app.static_folder or "", filename)
        try:
            mtime = os.stat(path).st_mtime if app.debug else 0.0
        except OSError:
            return None
        known = cache.get(filename)
        if known is not None and known[0] == mtime:
            return known[1]
        try:
            with open(path, "rb") as handle:
                digest: str | None = hashlib.sha256(handle.read()).hexdigest()[:HASH_LENGTH]
        except OSError:
            digest = None
        cache[filename] = (mtime, digest)
        return digest

    @app.url_defaults
    def add_fingerprint(endpoint: str, values: dict) -> None:
        if endpoint == "static" and "filename" in values and "v" not in values:
            digest = fingerprint(values["filename"])
            if digest is not None:
                values["v"] = digest

    @app.after_request
    def cache_fingerprinted(response: Response) -> Response:
        if request.endpoint != "static" or response.status_code != 200:
            return response
        filename = (request.view_args or {}).get("filename", "")
        if request.args.get("v") and request.args.get("v") == fingerprint(filename):
            max_age = app.config["STATIC_MAX_AGE_SECONDS"]
            response.headers["Cache-Control"] = f"public, max-age={max_age}, immutable"
            response.headers.pop("Expires", None)
        else:
            response.headers["Cache-Control"] = "no-cache"
        return response

    app.jinja_env.globals["static_fingerprint"] = fingerprint
