"""Scale-out: two Kargo instances (boot.sh, production settings, gevent workers) on one
PostgreSQL database, started at the same moment (both run `flask db upgrade`), with a bounded
mixed load sent to both alternately.

Client threads submit, delete, change priorities and list, each request going to the other
instance than the previous one, and keep a ledger of what the servers told them. Afterwards
the database must hold exactly the deployments the clients were told exist (none lost, none
doubled: every submission carries a unique image tag), each with the last priority a client
was told it has, and every scheduling rule must hold on every cluster (usage equals the sum of
running requests, capacity never exceeded, nothing waits that fits; tests/support/rules.py).
Only PostgreSQL: it is what several instances share (SQLite is one machine's database).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import requests
import sqlalchemy as sa

from tests.support.boot import running_boot_shs
from tests.support.databases import postgres_url, temporary_postgres_database
from tests.support.rules import rule_violations

pytestmark = pytest.mark.stress

INSTANCES = 2
WORKERS_PER_INSTANCE = 2
THREADS = 8
OPERATIONS_PER_THREAD = 40  # 320 requests in all
TIME_BUDGET_SECONDS = 90  # a safety net on a loaded machine; the load stops there
REQUEST_TIMEOUT_SECONDS = 30
PASSWORD = "scale-out-Passphrase-9"
PRIORITIES = [0, 100, 500, 500, 800, 1000]
CLUSTERS = [
    {"cluster_name": "north", "resource": {"cpu": "6", "gpu": 2, "ram": "12"}},
    {"cluster_name": "south", "resource": {"cpu": "4", "ram": "8"}},
]


@pytest.fixture
def database_url() -> Iterator[str]:
    base = postgres_url()
    if base is None:
        pytest.skip("KARGO_TEST_DATABASE_URL is not set: several instances need PostgreSQL")
    with temporary_postgres_database(base, "scale") as url:
        yield url


@dataclass
class Ledger:
    """What one client thread was told: its live deployments and their priorities."""

    live: dict[int, int] = field(default_factory=dict)  # id -> priority
    images: dict[int, str] = field(default_factory=dict)  # id -> the unique image it sent
    deleted: set[int] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)
    by_instance: Counter[int] = field(default_factory=Counter)


def seed(base: str) -> tuple[str, list[int]]:
    api = f"{base}/api/v1"
    account = {
        "user": {"username": "scaleowner", "password": PASSWORD, "display_name": "Scale"},
        "organization": {"name": "Scale Out"},
    }
    response = requests.put(f"{api}/user/create/", json=account, timeout=30)
    assert response.status_code == 201, response.text
    response = requests.post(
        f"{api}/user/login/", json={"username": "scaleowner", "password": PASSWORD}, timeout=30
    )
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    cluster_ids = []
    for cluster in CLUSTERS:
        response = requests.put(
            f"{api}/cluster/",
            json={**cluster, "max_deployments": 1000},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        cluster_ids.append(response.json()["id"])
    return token, cluster_ids


def client(bases: list[str], token: str, cluster_ids: list[int], number: int, deadline: float):
    rng = random.Random(7000 + number)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    ledger = Ledger()
    for step in range(OPERATIONS_PER_THREAD):
        if time.monotonic() > deadline:
            break
        instance = (number + step) % len(bases)  # alternately to each instance
        api = f"{bases[instance]}/api/v1"
        ledger.by_instance[instance] += 1
        roll = rng.random()
        if ledger.live and roll < 0.25:
            victim = rng.choice(sorted(ledger.live))
            response = session.delete(
                f"{api}/deployment/{victim}/", timeout=REQUEST_TIMEOUT_SECONDS
            )
            ledger.statuses[f"delete {response.status_code}"] += 1
            if response.status_code == 204:
                del ledger.live[victim]
                ledger.deleted.add(victim)
        elif ledger.live and roll < 0.45:
            target = rng.choice(sorted(ledger.live))
            priority = rng.choice(PRIORITIES)
            response = session.patch(
                f"{api}/deployment/{target}/",
                json={"priority": priority},
                timeout=REQUEST_TIMEOUT_SECONDS,
            )
            ledger.statuses[f"priority {response.status_code}"] += 1
            if response.status_code == 200:
                assert response.json()["deployment"]["priority"] == priority
                ledger.live[target] = priority
        elif roll < 0.6:
            cluster_id = rng.choice(cluster_ids)
            response = session.get(
                f"{api}/deployment/",
                params={"cluster_id": cluster_id},
                timeout=REQUEST_TIMEOUT_SECONDS,
            )
            ledger.statuses[f"list {response.status_code}"] += 1
        else:
            index = rng.randrange(len(cluster_ids))
            wanted: dict[str, object] = {"cpu": rng.choice(["0.5", "1", "2", "500m"])}
            if rng.random() < 0.6:
                wanted["ram"] = rng.choice([1, "2", "512Mi"])
            if index == 0 and rng.random() < 0.3:
                wanted["gpu"] = 1
            image = f"registry.local/scale/c{number}-s{step}:1"
            priority = rng.choice(PRIORITIES)
            body = {
                "cluster_id": cluster_ids[index],
                "image": image,
                "priority": priority,
                "resource": wanted,
            }
            response = session.put(f"{api}/deployment/", json=body, timeout=REQUEST_TIMEOUT_SECONDS)
            ledger.statuses[f"submit {response.status_code}"] += 1
            if response.status_code == 201:
                created = response.json()["deployment"]["id"]
                ledger.live[created] = priority
                ledger.images[created] = image
    session.close()
    return ledger


def database_deployments(database_url: str) -> dict[int, tuple[str, int]]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT id, image, priority FROM deployments")).all()
    finally:
        engine.dispose()
    return {row.id: (row.image, row.priority) for row in rows}


def test_two_instances_lose_and_double_nothing_and_keep_the_rules(database_url, tmp_path):
    folders = [tmp_path / f"instance-{n}" for n in range(INSTANCES)]
    for folder in folders:
        folder.mkdir()
    with running_boot_shs(database_url, folders, workers=WORKERS_PER_INSTANCE) as started:
        bases = [base for base, _ in started]
        token, cluster_ids = seed(bases[0])
        began = time.monotonic()
        deadline = began + TIME_BUDGET_SECONDS
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            futures = [
                pool.submit(client, bases, token, cluster_ids, number, deadline)
                for number in range(THREADS)
            ]
            ledgers = [future.result() for future in futures]
        seconds = time.monotonic() - began
        logs = [log.read_text() for _, log in started]

    statuses = sum((ledger.statuses for ledger in ledgers), Counter())
    per_instance = sum((ledger.by_instance for ledger in ledgers), Counter())
    total = sum(statuses.values())
    print(f"{total} requests in {seconds:.1f} s, per instance {dict(per_instance)}: {statuses}")

    # Exactly one instance applied the migrations; the other found the schema at head.
    migrated = [log.count("Running upgrade") for log in logs]
    assert sorted(migrated)[0] == 0 and sorted(migrated)[-1] > 0, migrated

    unexpected = {key: n for key, n in statuses.items() if not key.endswith(("200", "201", "204"))}
    assert not unexpected, f"answers other than success: {unexpected} (all: {statuses})"
    assert total >= 200, f"only {total} requests in {TIME_BUDGET_SECONDS} s: {statuses}"
    assert min(per_instance.values()) >= total // INSTANCES - THREADS, per_instance
    for kind in ("submit 201", "delete 204", "priority 200", "list 200"):
        assert statuses[kind] > 0, statuses

    told_live = {id_: priority for ledger in ledgers for id_, priority in ledger.live.items()}
    told_images = {id_: image for ledger in ledgers for id_, image in ledger.images.items()}
    deleted = set().union(*(ledger.deleted for ledger in ledgers))
    stored = database_deployments(database_url)
    lost = sorted(set(told_live) - set(stored))
    resurrected = sorted(deleted & set(stored))
    unknown = sorted(set(stored) - set(told_live))
    assert not lost, f"deployments the clients were given are gone: {lost}"
    assert not resurrected, f"deleted deployments are back: {resurrected}"
    assert not unknown, f"deployments no client was told of (doubled?): {unknown}"
    images = Counter(image for image, _ in stored.values())
    assert all(count == 1 for count in images.values()), images.most_common(3)
    for id_, (image, priority) in stored.items():
        assert image == told_images[id_]
        assert priority == told_live[id_], f"#{id_}: priority {priority}, told {told_live[id_]}"
    assert rule_violations(database_url) == []
