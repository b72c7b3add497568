"""Portal load benchmark: real gunicorn on loopback, seeded data, simulated users.

    .venv/bin/python bench/http_bench.py                 # SQLite (WAL); PostgreSQL too if
                                                         # KARGO_TEST_DATABASE_URL is set
    .venv/bin/python bench/http_bench.py --users 10,50 --seconds 10 --databases sqlite

For each database it migrates a fresh database with `flask db upgrade`, seeds one organization
with 20 clusters and 2,000 deployments through the real services, starts gunicorn with the
production config (4 workers) on 127.0.0.1, then for each concurrency level runs three phases
of equal length:

1. ``healthz``: every user requests ``/healthz`` (the trivial endpoint, for scale);
2. ``partial``: every user polls a cluster's utilization partial, as open dashboards do;
3. ``mixed``: dashboards polling, cluster and deployment listings, a cluster page, deploys and
   deletes over the JSON API.

It prints requests per second and p50/p95/p99 latency per endpoint and phase, error counts,
and the partial/healthz throughput ratio, and writes bench/results/http.json. Traffic goes to
127.0.0.1 only; every phase is bounded in time and every request has a timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import Process, Queue
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.databases import temporary_postgres_database  # noqa: E402
from tests.support.gunicorn import running_gunicorn  # noqa: E402

PASSWORD = "load-test-passphrase-2026"
CLUSTERS = 20
DEPLOYMENTS = 2000
REQUEST_TIMEOUT = 30


# --------------------------------------------------------------------------- seeding


def seed(database_url: str, clusters: int, deployments: int) -> dict:
    """Create the organization, clusters and deployments through the real services."""
    from app import create_app
    from app.extensions import db
    from app.services import accounts
    from app.services import clusters as clusters_service
    from app.services import deployments as deploy_service

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": False})
    rng = random.Random(7)
    with app.app_context():
        owner = accounts.signup(
            username="bench",
            password=PASSWORD,
            display_name="Bench Owner",
            organization_name="Bench Org",
        )
        accounts.update_settings(owner, name="Bench Org", deployment_quota=1_000_000)
        cluster_ids = []
        for i in range(clusters):
            snap = clusters_service.create_cluster(
                owner,
                name=f"bench-{i:02d}",
                resources={"cpu": "64", "ram": "256", "gpu": "8"},
                max_deployments=10_000,
            )
            cluster_ids.append(snap.id)
        per_cluster = deployments // clusters
        for cluster_id in cluster_ids:
            for j in range(per_cluster):
                deploy_service.submit(
                    owner,
                    cluster_id=cluster_id,
                    image=f"registry.local:5000/team/app-{j % 7}:1.{j % 5}",
                    name=f"app-{j:04d}",
                    priority=rng.choice([100, 100, 100, 500, 500, 800, 1000]),
                    requests_raw={
                        "cpu": rng.choice(["250m", "500m", "1", "2", "4"]),
                        "ram": rng.choice(["512Mi", "1", "2", "8"]),
                        **({"gpu": "1"} if rng.random() < 0.1 else {}),
                    },
                )
        db.session.remove()
        db.engine.dispose()
    return {"cluster_ids": cluster_ids}


# --------------------------------------------------------------------------- clients


@dataclass
class Sample:
    endpoint: str
    seconds: float
    ok: bool
    status: int


def login_session(base: str) -> tuple[dict, str]:
    """Log in once through the API (token) and the login form (session cookie)."""
    api = requests.post(
        base + "/api/v1/user/login/",
        json={"username": "bench", "password": PASSWORD},
        timeout=REQUEST_TIMEOUT,
    )
    api.raise_for_status()
    token = api.json()["token"]
    with requests.Session() as browser:
        page = browser.get(base + "/login", timeout=REQUEST_TIMEOUT)
        marker = 'name="csrf_token" type="hidden" value="'
        start = page.text.index(marker) + len(marker)
        csrf = page.text[start : page.text.index('"', start)]
        response = browser.post(
            base + "/login",
            data={"username": "bench", "password": PASSWORD, "csrf_token": csrf},
            timeout=REQUEST_TIMEOUT,
            allow_redirects=False,
        )
        if response.status_code not in (302, 303):
            raise RuntimeError(f"form login failed with {response.status_code}")
        return browser.cookies.get_dict(), token


def user_loop(base, cookies, token, cluster_ids, phase, deadline, samples, seed_value):
    rng = random.Random(seed_value)
    session = requests.Session()
    session.cookies.update(cookies)
    auth = {"Authorization": f"Bearer {token}"}
    mine: list[int] = []
    # Like a browser's HTTP cache: revalidate each cluster's partial with its last ETag.
    etags: dict[int, str] = {}

    def call(endpoint: str, method: str, path: str, expect=(200,), **kwargs):
        started = time.perf_counter()
        try:
            response = session.request(method, base + path, timeout=REQUEST_TIMEOUT, **kwargs)
            status = response.status_code
        except requests.RequestException:
            status = 0
            response = None
        samples.append(Sample(endpoint, time.perf_counter() - started, status in expect, status))
        return response

    def poll(cluster_id: int) -> None:
        headers = {"HX-Request": "true"}
        if cluster_id in etags:
            headers["If-None-Match"] = etags[cluster_id]
        path = f"/clusters/{cluster_id}/utilization"
        response = call("partial", "GET", path, expect=(200, 304), headers=headers)
        if response is not None and response.status_code == 200 and "ETag" in response.headers:
            etags[cluster_id] = response.headers["ETag"]

    while time.monotonic() < deadline:
        cluster_id = rng.choice(cluster_ids)
        if phase == "healthz":
            call("healthz", "GET", "/healthz")
            continue
        if phase == "partial" or rng.random() < 0.60:
            poll(cluster_id)
            continue
        roll = rng.random()
        if roll < 0.25:
            call("clusters list", "GET", f"/clusters/?page={rng.randint(1, 2)}")
        elif roll < 0.50:
            call("deployments list", "GET", f"/deployments/?cluster_id={cluster_id}")
        elif roll < 0.65:
            call("cluster page", "GET", f"/clusters/{cluster_id}")
        elif roll < 0.83 or not mine:
            response = call(
                "deploy (API)",
                "PUT",
                "/api/v1/deployment/",
                expect=(201,),
                headers=auth,
                json={
                    "cluster_id": cluster_id,
                    "image": "registry.local/team/load:1",
                    "priority": rng.choice([100, 500, 800]),
                    "resource": {"cpu": rng.choice(["250m", "1"]), "ram": "512Mi"},
                },
            )
            if response is not None and response.status_code == 201:
                mine.append(response.json()["deployment"]["id"])
        else:
            deployment_id = mine.pop(rng.randrange(len(mine)))
            call("delete (API)", "DELETE", f"/api/v1/deployment/{deployment_id}/",
                 expect=(204,), headers=auth)  # fmt: skip


def client_process(base, cookies, token, cluster_ids, phase, users, seconds, seed_value, out):
    samples: list[Sample] = []
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(
            target=user_loop,
            args=(base, cookies, token, cluster_ids, phase, deadline, samples, seed_value + i),
        )
        for i in range(users)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + REQUEST_TIMEOUT + 5)
    out.put([(s.endpoint, s.seconds, s.ok, s.status) for s in samples])


def run_phase(base, cookies, token, cluster_ids, phase, users, seconds, processes) -> list[Sample]:
    """Spread `users` over client processes so the client's GIL is not the bottleneck."""
    queue: Queue = Queue()
    shares = [users // processes + (1 if i < users % processes else 0) for i in range(processes)]
    workers = [
        Process(
            target=client_process,
            args=(base, cookies, token, cluster_ids, phase, share, seconds, 1000 * i, queue),
        )
        for i, share in enumerate(shares)
        if share
    ]
    for worker in workers:
        worker.start()
    samples: list[Sample] = []
    for _ in workers:
        samples.extend(Sample(*row) for row in queue.get(timeout=seconds + 120))
    for worker in workers:
        worker.join(timeout=10)
    return samples


# --------------------------------------------------------------------------- report


@dataclass
class EndpointStats:
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    statuses: dict = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summarize(samples: list[Sample], seconds: float) -> dict[str, EndpointStats]:
    grouped: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        grouped[sample.endpoint].append(sample)
    stats = {}
    for endpoint, rows in sorted(grouped.items()):
        latencies = [row.seconds * 1000 for row in rows]
        statuses: dict[int, int] = defaultdict(int)
        for row in rows:
            statuses[row.status] += 1
        stats[endpoint] = EndpointStats(
            requests=len(rows),
            errors=sum(not row.ok for row in rows),
            rps=len(rows) / seconds,
            p50_ms=statistics.median(latencies),
            p95_ms=percentile(latencies, 95),
            p99_ms=percentile(latencies, 99),
            statuses=dict(statuses),
        )
    return stats


def print_table(title: str, stats: dict[str, EndpointStats]) -> None:
    print(f"\n{title}")
    print(f"  {'endpoint':<18} {'requests':>8} {'errors':>6} {'req/s':>8} "
          f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")  # fmt: skip
    for endpoint, row in stats.items():
        print(
            f"  {endpoint:<18} {row.requests:>8} {row.errors:>6} {row.rps:>8.1f} "
            f"{row.p50_ms:>8.1f} {row.p95_ms:>8.1f} {row.p99_ms:>8.1f}"
        )


@contextmanager
def database(kind: str):
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="kargo-bench-") as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    with temporary_postgres_database(os.environ["KARGO_TEST_DATABASE_URL"], "bench") as url:
        yield url


def bench_database(kind: str, args) -> dict:
    results: dict = {"database": kind, "levels": {}}
    extra = [
        "--worker-class",
        args.worker_class,
        "--threads",
        str(args.threads),
        "--backlog",
        "2048",
    ]
    with database(kind) as url, running_gunicorn(url, args.workers, extra) as base:
        # The server migrated the database; seed it through the services meanwhile.
        started = time.perf_counter()
        seeded = seed(url, args.clusters, args.deployments)
        results["seed_seconds"] = round(time.perf_counter() - started, 1)
        print(f"\n== {kind}: seeded {args.clusters} clusters and {args.deployments} deployments "
              f"in {results['seed_seconds']} s")  # fmt: skip
        cookies, token = login_session(base)
        for users in args.users:
            processes = max(1, min(args.client_processes, users))
            level: dict = {}
            for phase in ("healthz", "partial", "mixed"):
                samples = run_phase(
                    base, cookies, token, seeded["cluster_ids"], phase, users,
                    args.seconds, processes,
                )  # fmt: skip
                stats = summarize(samples, args.seconds)
                level[phase] = {name: vars(row) for name, row in stats.items()}
                print_table(f"[{kind}] {users} users · phase {phase}", stats)
            healthz_rps = level["healthz"]["healthz"]["rps"]
            partial_rps = level["partial"]["partial"]["rps"]
            level["partial_to_healthz"] = round(partial_rps / healthz_rps, 3)
            level["errors"] = sum(
                row["errors"] for phase in ("healthz", "partial", "mixed")
                for row in level[phase].values()
            )  # fmt: skip
            print(f"  partial/healthz throughput ratio: {level['partial_to_healthz']:.2f}; "
                  f"errors at {users} users: {level['errors']}")  # fmt: skip
            results["levels"][str(users)] = level
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", default="10,50,200",
                        type=lambda s: [int(x) for x in s.split(",")])  # fmt: skip
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--databases", default=None, help="comma list: sqlite,postgres")
    parser.add_argument("--clusters", type=int, default=CLUSTERS)
    parser.add_argument("--deployments", type=int, default=DEPLOYMENTS)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-class", default="sync")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    if args.seconds <= 0 or args.seconds > 300:
        parser.error("--seconds must be within (0, 300]")
    kinds = args.databases.split(",") if args.databases else ["sqlite"]
    if args.databases is None and os.environ.get("KARGO_TEST_DATABASE_URL"):
        kinds.append("postgres")
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        "runs": [bench_database(kind, args) for kind in kinds],
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "http.json").write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out / 'http.json'}")


if __name__ == "__main__":
    main()
