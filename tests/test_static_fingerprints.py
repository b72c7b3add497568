"""Static files are linked by fingerprinted URLs (a hash of their content) and such a URL is
cached for a long time (`immutable`); anything else is revalidated."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[1] / "app" / "static"


def test_pages_link_static_files_by_their_content_hash(client, app):
    html = client.get("/login").get_data(as_text=True)
    links = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
    assert {"app.css", "app.js", "vendor/htmx-2.0.11.min.js"} <= {
        link.split("?")[0].removeprefix("/static/") for link in links
    }
    for link in links:
        path, _, query = link.partition("?")
        content = (STATIC / path.removeprefix("/static/")).read_bytes()
        assert query == "v=" + hashlib.sha256(content).hexdigest()[:16], link


def test_a_fingerprinted_url_is_cached_for_long_and_never_revalidated(client, app):
    app.config["STATIC_MAX_AGE_SECONDS"] = 1234
    html = client.get("/login").get_data(as_text=True)
    css = re.search(r'href="(/static/app\.css\?v=[0-9a-f]{16})"', html).group(1)
    response = client.get(css)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=1234, immutable"
    assert "Expires" not in response.headers


def test_an_unversioned_or_outdated_url_is_revalidated(client):
    for url in ("/static/app.css", "/static/app.css?v=0000000000000000"):
        response = client.get(url)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-cache", url


def test_a_changed_file_gets_a_new_url(app, tmp_path):
    (tmp_path / "a.css").write_text("body { color: red; }")
    app.static_folder = str(tmp_path)
    app.debug = True  # follows edits, like a developer's server
    with app.test_request_context():
        from flask import url_for

        first = url_for("static", filename="a.css")
        (tmp_path / "a.css").write_text("body { color: blue; }")
        import os

        os.utime(tmp_path / "a.css", (1, 1))
        second = url_for("static", filename="a.css")
        missing = url_for("static", filename="nope.css")
    assert first != second and first.startswith("/static/a.css?v=")
    assert missing == "/static/nope.css"
