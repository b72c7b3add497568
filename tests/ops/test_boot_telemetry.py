"""Telemetry of the shipped start command: counts add up across workers, logs are JSON lines
that carry request ids and never a password, token or invite code."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.boot import running_boot_sh
from tests.support.databases import fresh_database

TOKEN = "scrape-token-0123456789"
REQUESTS = 90
PASSWORD = "a-long-Passphrase-42"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path, "telemetry") as url:
        yield url


def login_page_count(base: str) -> float:
    text = requests.get(
        f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "kargo_http_requests_total"
                and sample.labels.get("endpoint") == "/login"
            ):
                return sample.value
    return 0.0


def test_counts_add_up_across_workers_and_logs_keep_secrets(database_url, tmp_path) -> None:
    with running_boot_sh(database_url, tmp_path, workers=3, METRICS_TOKEN=TOKEN) as (base, log):
        # The login page, which nothing else asks for (a start-up probe of /healthz that timed
        # out on a loaded machine may still be answered, and counted, later).
        for _ in range(REQUESTS):
            # A new connection each time, so the three workers all take some.
            response = requests.get(f"{base}/login", headers={"Connection": "close"}, timeout=30)
            assert response.status_code == 200
        assert login_page_count(base) == REQUESTS

        signup = {
            "user": {"username": "opsowner", "password": PASSWORD, "display_name": "Ops"},
            "organization": {"name": "Ops"},
        }
        assert requests.put(f"{base}/api/v1/user/create/", json=signup, timeout=10).ok
        login = requests.post(
            f"{base}/api/v1/user/login/",
            json={"username": "opsowner", "password": PASSWORD},
            timeout=10,
        ).json()
        token = login["token"]
        invite = requests.patch(
            f"{base}/api/v1/organization/invite/",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()
        code = invite["code"]
        assert requests.get(f"{base}/invite/{code}", timeout=10).status_code == 200
        requests.get(f"{base}/api/v1/organization/invite/?code={code}", timeout=10)

    text = log.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line is one JSON object
    requests_logged = [entry for entry in parsed if entry["logger"] == "kargo.request"]
    assert len(requests_logged) >= REQUESTS + 5
    assert all(re.fullmatch(r"[0-9a-f]{16}", entry["request_id"]) for entry in requests_logged)
    # One line per request: the worker's handler replaces gunicorn's instead of doubling every
    # line, and gunicorn's own access line (raw path and query string) is not written.
    ids = Counter(entry["request_id"] for entry in requests_logged)
    assert max(ids.values()) == 1, ids.most_common(3)
    assert not [entry for entry in parsed if entry["logger"] == "gunicorn.access"]
    assert len([e for e in parsed if e["message"].startswith("Handling signal")]) <= 1
    invite_line = next(e for e in requests_logged if e["endpoint"].startswith("/invite/"))
    assert invite_line["status"] == 200 and invite_line["method"] == "GET"
    owner_lines = [e for e in requests_logged if e.get("user_id")]
    assert owner_lines and all(e["organization_id"] for e in owner_lines)
    for secret in (PASSWORD, token, code):
        assert secret not in text
