"""Concurrency stress test: real gunicorn, 4 workers, 20 client threads, over the JSON API.

Against a migrated SQLite file (WAL) always, and against a fresh PostgreSQL database when
KARGO_TEST_DATABASE_URL is set. One organization and user are created through the API, then 3
clusters; 20 threads send at least 500 submits and deletes with mixed priorities at once.
Afterwards the database itself must satisfy scheduling rules 1-3 on every cluster (usage equals
the sum of running requests and fits the capacity; no pending deployment fits in free or in its
room_for), and no request may have had a 5xx answer. Bounded in count, and in time by a guard
against a hung server (not a measure of speed: the benchmarks are for that).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa

from tests.support.databases import fresh_database
from tests.support.gunicorn import running_gunicorn
from tests.support.rules import rule_violations

pytestmark = pytest.mark.stress

THREADS = 20
OPERATIONS_PER_THREAD = 25  # 500 in all: the issue asks for at least 500
# A guard against a hung server, far beyond what a loaded machine needs (an idle one ~15 s):
# all 500 operations must be sent, however slow the machine.
TIME_BUDGET_SECONDS = 600
REQUEST_TIMEOUT_SECONDS = 30
PASSWORD = "correct horse battery staple"
PRIORITIES = [0, 100, 100, 500, 500, 800, 1000]
CLUSTERS = [
    {"cluster_name": "alpha", "resource": {"cpu": "8", "gpu": 2, "ram": "16"}},
    {"cluster_name": "beta", "resource": {"cpu": "4", "ram": "8"}},
    {"cluster_name": "gamma", "resource": {"cpu": "16", "gpu": 4, "ram": "32", "tpu": 2}},
]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path, "stress") as url:
        yield url


def seed(base: str) -> tuple[str, list[int]]:
    """One organization and owner through the API, a token, and the clusters."""
    account = {
        "user": {"username": "stress", "password": PASSWORD, "display_name": "Stress"},
        "organization": {"name": "Stress"},
    }
    response = requests.put(f"{base}/api/v1/user/create/", json=account, timeout=30)
    assert response.status_code == 201, response.text
    response = requests.post(
        f"{base}/api/v1/user/login/",
        json={"username": "stress", "password": PASSWORD},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    cluster_ids = []
    for cluster in CLUSTERS:
        response = requests.put(
            f"{base}/api/v1/cluster/",
            json={**cluster, "max_deployments": 1000},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        cluster_ids.append(response.json()["id"])
    return token, cluster_ids


def random_request(rng: random.Random, cluster_index: int) -> dict[str, object]:
    wanted: dict[str, object] = {"cpu": rng.choice(["0.5", "1", "2", 3, "500m"])}
    if rng.random() < 0.6:
        wanted["ram"] = rng.choice([1, "2", " 4", "512Mi"])
    if cluster_index != 1 and rng.random() < 0.3:
        wanted["gpu"] = 1
    return wanted


def client_thread(base: str, token: str, cluster_ids: list[int], seed_value: int, shared: dict):
    rng = random.Random(seed_value)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    statuses: Counter[str] = Counter()
    for _ in range(OPERATIONS_PER_THREAD):
        if time.monotonic() > shared["deadline"]:
            break
        with shared["lock"]:
            known = list(shared["ids"])
        if known and rng.random() < 0.4:
            victim = rng.choice(known)
            response = session.delete(
                f"{base}/api/v1/deployment/{victim}/", timeout=REQUEST_TIMEOUT_SECONDS
            )
            statuses[f"delete {response.status_code}"] += 1
            if response.status_code in (204, 404):
                with shared["lock"]:
                    shared["ids"].discard(victim)
        else:
            index = rng.randrange(len(cluster_ids))
            body = {
                "cluster_id": cluster_ids[index],
                "image": rng.choice(["nginx:1.25", "registry.local:5000/team/api:2", "redis"]),
                "priority": rng.choice(PRIORITIES),
                "resource": random_request(rng, index),
            }
            response = session.put(
                f"{base}/api/v1/deployment/", json=body, timeout=REQUEST_TIMEOUT_SECONDS
            )
            statuses[f"submit {response.status_code}"] += 1
            if response.status_code == 201:
                with shared["lock"]:
                    shared["ids"].add(response.json()["deployment"]["id"])
    session.close()
    return statuses


def journal_mode(database_url: str) -> str:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    finally:
        engine.dispose()


def test_concurrent_submits_and_deletes_keep_the_rules(database_url):
    started = time.monotonic()
    with running_gunicorn(database_url, workers=4) as base:
        ready = time.monotonic()
        token, cluster_ids = seed(base)
        shared = {
            "lock": threading.Lock(),
            "ids": set(),
            "deadline": time.monotonic() + TIME_BUDGET_SECONDS,
        }
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            futures = [
                pool.submit(client_thread, base, token, cluster_ids, 1000 + n, shared)
                for n in range(THREADS)
            ]
            statuses = sum((future.result() for future in futures), Counter())
        traffic = time.monotonic() - ready
    total = sum(statuses.values())
    print(f"start {ready - started:.1f}s, traffic {traffic:.1f}s, {total} requests: {statuses}")
    server_errors = {key: n for key, n in statuses.items() if key.split()[1].startswith("5")}
    assert not server_errors, f"5xx answers: {server_errors} (all: {statuses})"
    assert total == THREADS * OPERATIONS_PER_THREAD, f"stopped by the time guard: {statuses}"
    assert statuses["submit 201"] > 100 and statuses["delete 204"] > 50, statuses
    assert rule_violations(database_url) == []
    if database_url.startswith("sqlite"):
        assert journal_mode(database_url) == "wal"
