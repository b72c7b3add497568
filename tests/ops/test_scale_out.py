"""Scale-out: two Kargo instances (boot.sh, production settings, gevent workers) on one
PostgreSQL database, started at the same moment (both run `flask db upgrade`), with a bounded
mixed load sent to both alternately; then the same with two reconcilers and real containers.

Client threads submit, delete, change priorities and list, each request going to the other
instance than the previous one, and keep a ledger of what the servers told them. Afterwards
the database must hold exactly the deployments the clients were told exist (none lost, none
doubled: every submission carries a unique mark), each with the last priority a client was
told it has, and every scheduling rule must hold on every cluster (usage equals the sum of
running requests, capacity never exceeded, nothing waits that fits; tests/support/rules.py).

With reconcilers (`flask kargo reconcile`, the reconciler service's command): two of them on
the same database and two engine clusters on the tests' private dockerd. A sampler reads the
lease table (cluster_runtime) all along: while both run, each cluster has one holder the
whole time; the containers converge to exactly one per running deployment; when one
reconciler is stopped, the other takes its clusters over and keeps converging.
Only PostgreSQL: it is what several instances share (SQLite is one machine's database).
"""

from __future__ import annotations

import random
import re
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.support import dockerd
from tests.support.boot import running_boot_shs, running_reconcilers
from tests.support.databases import postgres_url, temporary_postgres_database
from tests.support.rules import rule_violations

pytestmark = pytest.mark.stress

INSTANCES = 2
WORKERS_PER_INSTANCE = 2
THREADS = 8
OPERATIONS_PER_THREAD = 40  # 320 requests in all
# A guard against a hung instance, far beyond what a loaded machine needs: every operation
# is sent, however slow the machine (speed is the benchmarks' business).
TIME_BUDGET_SECONDS = 600
REQUEST_TIMEOUT_SECONDS = 30
PASSWORD = "scale-out-Passphrase-9"
PRIORITIES = [0, 100, 500, 500, 800, 1000]
CLUSTERS = [
    {"cluster_name": "north", "resource": {"cpu": "6", "gpu": 2, "ram": "12"}},
    {"cluster_name": "south", "resource": {"cpu": "4", "ram": "8"}},
]

# The run with reconcilers: fewer requests (each running deployment is a real container).
ENGINES = ("east", "west")
RECONCILER_THREADS = 4
RECONCILER_OPERATIONS = 20  # 80 requests in all
CONVERGE_TIMEOUT_SECONDS = 120
SAMPLE_INTERVAL_SECONDS = 0.1
# The lease keeps its default (RECONCILER_LEASE_SECONDS, 20 s). A reconciler renews it when a
# pass begins (at least every 2 s here), before each start or stop and while slow calls run;
# when it renewed only between passes, a pass longer than a 4 s lease on this loaded 2-core
# machine let the other reconciler take the cluster five times in 40 s.
RUNTIME_SETTINGS = {
    "RECONCILER_POLL_MS": "100",
    "RECONCILER_RESYNC_SECONDS": "2",
    "RUNTIME_STOP_GRACE_SECONDS": "1",
}


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
    marks: dict[int, str] = field(default_factory=dict)  # id -> its unique image or name
    deleted: set[int] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)
    by_instance: Counter[int] = field(default_factory=Counter)


def seed(base: str, clusters: list[dict]) -> tuple[str, list[int]]:
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
    for cluster in clusters:
        response = requests.put(
            f"{api}/cluster/",
            json={**cluster, "max_deployments": 1000},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        cluster_ids.append(response.json()["id"])
    return token, cluster_ids


def simulated_submission(rng: random.Random, cluster_ids: list[int], mark: str) -> dict:
    """A deployment for a simulated cluster; its image carries the submission's unique mark."""
    index = rng.randrange(len(cluster_ids))
    wanted: dict[str, object] = {"cpu": rng.choice(["0.5", "1", "2", "500m"])}
    if rng.random() < 0.6:
        wanted["ram"] = rng.choice([1, "2", "512Mi"])
    if index == 0 and rng.random() < 0.3:
        wanted["gpu"] = 1
    return {
        "cluster_id": cluster_ids[index],
        "image": f"registry.local/scale/{mark}:1",
        "priority": rng.choice(PRIORITIES),
        "resource": wanted,
    }


def container_submission(rng: random.Random, cluster_ids: list[int], mark: str) -> dict:
    """A deployment that runs for real (busybox sleeping); its name is the unique mark."""
    return {
        "cluster_id": rng.choice(cluster_ids),
        "name": mark,
        "image": dockerd.BUSYBOX_IMAGE,
        "command": ["sleep", "600"],
        "priority": rng.choice(PRIORITIES),
        "resource": {"cpu": rng.choice(["0.25", "0.5"]), "ram": rng.choice(["16Mi", "32Mi"])},
    }


def client(
    bases: list[str],
    token: str,
    cluster_ids: list[int],
    number: int,
    deadline: float,
    submission: Callable[[random.Random, list[int], str], dict] = simulated_submission,
    operations: int = OPERATIONS_PER_THREAD,
) -> Ledger:
    rng = random.Random(7000 + number)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    ledger = Ledger()
    for step in range(operations):
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
            response = session.get(
                f"{api}/deployment/",
                params={"cluster_id": rng.choice(cluster_ids)},
                timeout=REQUEST_TIMEOUT_SECONDS,
            )
            ledger.statuses[f"list {response.status_code}"] += 1
        else:
            body = submission(rng, cluster_ids, f"c{number}-s{step}")
            response = session.put(f"{api}/deployment/", json=body, timeout=REQUEST_TIMEOUT_SECONDS)
            ledger.statuses[f"submit {response.status_code}"] += 1
            if response.status_code == 201:
                created = response.json()["deployment"]["id"]
                ledger.live[created] = body["priority"]
                ledger.marks[created] = body.get("name") or body["image"]
    session.close()
    return ledger


def send_load(bases: list[str], token: str, cluster_ids: list[int], threads: int, **options):
    began = time.monotonic()
    deadline = began + TIME_BUDGET_SECONDS
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [
            pool.submit(client, bases, token, cluster_ids, number, deadline, **options)
            for number in range(threads)
        ]
        ledgers = [future.result() for future in futures]
    return ledgers, time.monotonic() - began


def query(database_url: str, sql: str) -> list[sa.Row]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text(sql)).all())
    finally:
        engine.dispose()


def check_statuses(ledgers: list[Ledger], expected: int, threads: int) -> Counter[str]:
    statuses = sum((ledger.statuses for ledger in ledgers), Counter())
    per_instance = sum((ledger.by_instance for ledger in ledgers), Counter())
    total = sum(statuses.values())
    unexpected = {key: n for key, n in statuses.items() if not key.endswith(("200", "201", "204"))}
    assert not unexpected, f"answers other than success: {unexpected} (all: {statuses})"
    assert total == expected, f"stopped by the {TIME_BUDGET_SECONDS} s guard: {statuses}"
    assert min(per_instance.values()) >= total // INSTANCES - threads, per_instance
    for kind in ("submit 201", "delete 204", "priority 200", "list 200"):
        assert statuses[kind] > 0, statuses
    return statuses


def check_ledgers(ledgers: list[Ledger], database_url: str, mark: str) -> None:
    """The database holds exactly what the clients were told: none lost, none doubled, none
    back from the dead, each with its last confirmed priority; and every rule holds."""
    told_live = {id_: priority for ledger in ledgers for id_, priority in ledger.live.items()}
    told_marks = {id_: value for ledger in ledgers for id_, value in ledger.marks.items()}
    deleted = set().union(*(ledger.deleted for ledger in ledgers))
    rows = query(database_url, f"SELECT id, {mark} AS mark, priority FROM deployments")
    stored = {row.id: (row.mark, row.priority) for row in rows}
    lost = sorted(set(told_live) - set(stored))
    resurrected = sorted(deleted & set(stored))
    unknown = sorted(set(stored) - set(told_live))
    assert not lost, f"deployments the clients were given are gone: {lost}"
    assert not resurrected, f"deleted deployments are back: {resurrected}"
    assert not unknown, f"deployments no client was told of (doubled?): {unknown}"
    marks = Counter(value for value, _ in stored.values())
    assert all(count == 1 for count in marks.values()), marks.most_common(3)
    for id_, (value, priority) in stored.items():
        assert value == told_marks[id_]
        assert priority == told_live[id_], f"#{id_}: priority {priority}, told {told_live[id_]}"
    assert rule_violations(database_url) == []


def test_two_instances_lose_and_double_nothing_and_keep_the_rules(database_url, tmp_path):
    folders = [tmp_path / f"instance-{n}" for n in range(INSTANCES)]
    for folder in folders:
        folder.mkdir()
    with running_boot_shs(database_url, folders, workers=WORKERS_PER_INSTANCE) as started:
        bases = [base for base, _ in started]
        token, cluster_ids = seed(bases[0], CLUSTERS)
        ledgers, seconds = send_load(bases, token, cluster_ids, THREADS)
        logs = [log.read_text() for _, log in started]

    statuses = check_statuses(ledgers, THREADS * OPERATIONS_PER_THREAD, threads=THREADS)
    print(f"{sum(statuses.values())} requests in {seconds:.1f} s: {statuses}")
    # Exactly one instance applied the migrations; the other found the schema at head.
    migrated = [log.count("Running upgrade") for log in logs]
    assert sorted(migrated)[0] == 0 and sorted(migrated)[-1] > 0, migrated
    check_ledgers(ledgers, database_url, "image")


class LeaseSampler(threading.Thread):
    """Reads the lease table every SAMPLE_INTERVAL_SECONDS: per cluster, its holder and whether
    that lease had run out (by the database's clock) when read."""

    def __init__(self, database_url: str) -> None:
        super().__init__(daemon=True)
        self.engine = sa.create_engine(database_url)
        self.samples: list[tuple[float, dict[int, tuple[str | None, bool]]]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                # Stamped before the query: a reading stamped after a moment was taken after
                # it, however long this thread then waits for the CPU.
                at = time.monotonic()
                with self.engine.connect() as connection:
                    rows = connection.execute(
                        sa.text(
                            "SELECT cluster_id, holder, lease_expires_at < "
                            "(now() AT TIME ZONE 'utc') FROM cluster_runtime"
                        )
                    ).all()
                leases = {row[0]: (row[1], bool(row[2])) for row in rows}
                self.samples.append((at, leases))
                self.stopping.wait(SAMPLE_INTERVAL_SECONDS)
        finally:
            self.engine.dispose()

    def holders(self, since: float = 0.0, until: float = float("inf")) -> dict[int, set[str]]:
        seen: dict[int, set[str]] = {}
        for at, leases in self.samples:
            if since <= at <= until:
                for cluster_id, (holder, _) in leases.items():
                    if holder:
                        seen.setdefault(cluster_id, set()).add(holder)
        return seen

    def current(self) -> dict[int, str]:
        """The holder of each held lease at the last reading."""
        _, leases = self.samples[-1]
        return {cluster_id: holder for cluster_id, (holder, _) in leases.items() if holder}

    def handovers(self, since: float = 0.0, until: float = float("inf")) -> list[str]:
        """Every change of holder: when, from whom to whom, and how the lease given up looked
        at the last reading before the change (expired, released, or still LIVE)."""
        changes: list[str] = []
        last: dict[int, tuple[str, str]] = {}  # cluster -> (holder, state of its lease)
        for at, leases in self.samples:
            if not since <= at <= until:
                continue
            for cluster_id, (holder, expired) in leases.items():
                before = last.get(cluster_id)
                if holder is None:
                    if before is not None:
                        last[cluster_id] = (before[0], "released")
                    continue
                if before is not None and before[0] != holder:
                    changes.append(
                        f"{at - since:.1f}s cluster {cluster_id}: {before[0]} ({before[1]}) "
                        f"-> {holder}"
                    )
                last[cluster_id] = (holder, "expired" if expired else "LIVE")
        return changes


def containers_by_deployment(daemon: dockerd.Daemon, install_id: str) -> Counter[int]:
    """How many containers (running or not) carry each deployment's label for this install."""
    labels = daemon.docker(
        "ps",
        "-a",
        "--filter",
        f"label=kargo.install={install_id}",
        "--format",
        '{{.Label "kargo.deployment"}} {{.State}}',
    ).splitlines()
    counted: Counter[int] = Counter()
    for line in labels:
        deployment, state = line.split()
        counted[int(deployment)] += 1 if state == "running" else 1000  # a stopped one is wrong
    return counted


def wait_until_converged(daemon: dockerd.Daemon, install_id: str, database_url: str) -> None:
    """Every running deployment has exactly one running container, and nothing else runs."""
    deadline = time.monotonic() + CONVERGE_TIMEOUT_SECONDS
    while True:
        running = {
            row.id
            for row in query(database_url, "SELECT id FROM deployments WHERE status = 'running'")
        }
        containers = containers_by_deployment(daemon, install_id)
        if containers == Counter({id_: 1 for id_ in running}):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"not converged: running {sorted(running)}, containers {dict(containers)}")
        time.sleep(0.5)


def reconciler_holder(log: Path) -> str:
    """The holder name a reconciler announces when it starts ("reconciler NAME running")."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"reconciler (\S+) running", log.read_text())
        if found:
            return found.group(1)
        time.sleep(0.2)
    pytest.fail(f"the reconciler did not start:\n{log.read_text()[-3000:]}")


def test_two_reconcilers_hold_each_cluster_alone_and_take_over(
    database_url, docker_daemon, tmp_path
):
    install_id = f"scale{uuid.uuid4().hex[:10]}"
    engines_file = tmp_path / "engines.toml"
    engines_file.write_text(
        "".join(
            f'[engines.{name}]\ndriver = "docker"\nendpoint = "{docker_daemon.host}"\n'
            f'[engines.{name}.capacity]\ncpu = "2"\nram = "1"\n'
            for name in ENGINES
        )
    )
    settings = {"ENGINES_FILE": str(engines_file), "RUNTIME_INSTALL_ID": install_id}
    folders = [tmp_path / f"node-{n}" for n in range(INSTANCES)]
    for folder in folders:
        folder.mkdir()
    sampler = LeaseSampler(database_url)
    try:
        with running_boot_shs(
            database_url, folders, workers=WORKERS_PER_INSTANCE, **settings
        ) as started:
            bases = [base for base, _ in started]
            clusters = [{"cluster_name": name, "engine": name} for name in ENGINES]
            token, cluster_ids = seed(bases[0], clusters)
            with running_reconcilers(
                database_url, folders, **settings, **RUNTIME_SETTINGS
            ) as reconcilers:
                holders = {reconciler_holder(log): process for process, log in reconcilers}
                sampler.start()
                began = time.monotonic()
                ledgers, seconds = send_load(
                    bases,
                    token,
                    cluster_ids,
                    RECONCILER_THREADS,
                    submission=container_submission,
                    operations=RECONCILER_OPERATIONS,
                )
                wait_until_converged(docker_daemon, install_id, database_url)
                both_until = time.monotonic()
                together = sampler.holders(began, both_until)
                handovers = sampler.handovers(began, both_until)
                # The two share the clusters: the first to start gives back what is beyond its
                # share once the other is live. Every change of hands is such a release (seen
                # by the sampler, or said in the giver's log when it fell between two
                # readings): never a lease taken while its holder held it, nor one run out.
                logs = {reconciler_holder(log): log.read_text() for _, log in reconcilers}
                for change in handovers:
                    found = re.search(r"cluster (\d+): (\S+) \((\w+)\) ->", change)
                    assert found, change
                    cluster, giver, state = found.groups()
                    given = f"reconciler {giver} gives back cluster {cluster}"
                    assert state == "released" or given in logs.get(giver, ""), (change, logs)
                assert set(together) == set(cluster_ids), together
                assert set().union(*together.values()) <= set(holders), (together, holders)
                now = sampler.current()
                assert sorted(now) == sorted(cluster_ids), now
                assert set(now.values()) == set(holders), f"not shared: {now}"

                # Stop the reconciler holding the first cluster: it gives its leases back, and
                # the other one takes that cluster over and starts what is submitted there.
                leaving = now[cluster_ids[0]]
                holders[leaving].send_signal(signal.SIGTERM)
                holders[leaving].wait(timeout=30)
                stopped_at = time.monotonic()
                extra = container_submission(random.Random(1), cluster_ids[:1], "after-takeover")
                extra["priority"] = 1000
                response = requests.put(
                    f"{bases[1]}/api/v1/deployment/",
                    json=extra,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=REQUEST_TIMEOUT_SECONDS,
                )
                assert response.status_code == 201, response.text
                created = response.json()["deployment"]["id"]
                ledgers.append(Ledger(live={created: 1000}, marks={created: "after-takeover"}))
                wait_until_converged(docker_daemon, install_id, database_url)
                remaining = set(holders) - {leaving}
                after = sampler.holders(stopped_at + 0.5)
                assert after.get(cluster_ids[0]) == remaining, after
                print("handovers:", sampler.handovers(began))
                sampler.stopping.set()
                sampler.join(timeout=10)
    finally:
        sampler.stopping.set()
        ids = docker_daemon.docker(
            "ps", "-aq", "--filter", f"label=kargo.install={install_id}", check=False
        ).split()
        if ids:
            docker_daemon.docker("rm", "--force", *ids, check=False, timeout=300)

    statuses = check_statuses(
        ledgers[:-1], RECONCILER_THREADS * RECONCILER_OPERATIONS, threads=RECONCILER_THREADS
    )
    print(
        f"{sum(statuses.values())} requests in {seconds:.1f} s with 2 reconcilers: {statuses}; "
        f"leases while both ran: {together}"
    )
    check_ledgers(ledgers, database_url, "name")
