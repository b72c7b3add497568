"""Portal load benchmark: real gunicorn on loopback, seeded data, simulated users.

    .venv/bin/python bench/http_bench.py                 # SQLite (WAL); PostgreSQL too if
                                                         # KARGO_TEST_DATABASE_URL is set
    .venv/bin/python bench/http_bench.py --users 10,50 --seconds 10 --databases sqlite

For each database it starts gunicorn with the production config (4 workers) on 127.0.0.1 on a
fresh database migrated with `flask db upgrade`, seeds one organization with 20 clusters and
2,000 deployments through the real services, then for each concurrency level runs three phases:

1. ``healthz`` (saturation): every user requests ``/healthz`` back to back, no pause: the
   trivial endpoint's throughput on this machine, for scale;
2. ``partial`` (saturation): every user polls its cluster's utilization partial back to back,
   revalidating with its last ETag as a browser does; the ratio of this throughput to
   ``healthz``'s is the number that means something on any machine;
3. ``mixed`` (people): three users in five are open dashboards polling their cluster's partial
   every ``--poll-seconds`` (3 s, the portal's default); the others list clusters and
   deployments, open cluster pages, deploy and delete over the JSON API, pausing about
   ``--think-seconds`` between actions. Latency percentiles and errors are read here.

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


# The bench fills clusters far beyond the default operator ceilings, on purpose.
CEILINGS = {"MAX_DEPLOYMENTS_PER_CLUSTER": 10_000, "MAX_ORGANIZATION_QUOTA": 1_000_000}


def seed(database_url: str, clusters: int, deployments: int) -> dict:
    """Create the organization, clusters and deployments through the real services."""
    from app import create_app
    from app.extensions import db
    from app.services import accounts
    from app.services import clusters as clusters_service
    from app.services import deployments as deploy_service

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": False, **CEILINGS})
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


@dataclass(frozen=True)
class Plan:
    """What one phase asks of its simulated users."""

    phase: str  # "healthz", "partial" (both closed loops, no pause) or "mixed"
    seconds: float
    poll_seconds: float  # a dashboard's polling interval in the mixed phase
    think_seconds: float  # a person's pause between two actions in the mixed phase


def user_loop(base, cookies, token, cluster_ids, plan: Plan, deadline, samples, number: int):
    """One simulated user. In the mixed phase three users in five are open dashboards that poll
    their cluster's partial every `poll_seconds`; the others browse, deploy and delete with a
    pause of about `think_seconds` between actions. Each user watches one home cluster."""
    rng = random.Random(number)
    session = requests.Session()
    session.cookies.update(cookies)
    auth = {"Authorization": f"Bearer {token}"}
    home = cluster_ids[number % len(cluster_ids)]
    dashboard = number % 5 < 3
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

    def act() -> None:
        cluster_id = rng.choice(cluster_ids)
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

    if plan.phase == "mixed":
        # Users arrive spread over one polling interval, as people open pages at random.
        time.sleep(rng.uniform(0, plan.poll_seconds))
    while time.monotonic() < deadline:
        if plan.phase == "healthz":
            call("healthz", "GET", "/healthz")
        elif plan.phase == "partial":
            poll(home)
        elif dashboard:
            started = time.monotonic()
            poll(home)
            time.sleep(max(0.0, plan.poll_seconds - (time.monotonic() - started)))
        else:
            act()
            time.sleep(rng.uniform(0.5, 1.5) * plan.think_seconds)


def client_process(base, cookies, token, cluster_ids, plan, users, first_user, out):
    samples: list[Sample] = []
    deadline = time.monotonic() + plan.seconds
    threads = [
        threading.Thread(
            target=user_loop,
            args=(base, cookies, token, cluster_ids, plan, deadline, samples, first_user + i),
        )
        for i in range(users)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=plan.seconds + REQUEST_TIMEOUT + 5)
    out.put([(s.endpoint, s.seconds, s.ok, s.status) for s in samples])


def run_phase(base, cookies, token, cluster_ids, plan, users, processes) -> list[Sample]:
    """Spread `users` over client processes so the client's GIL is not the bottleneck."""
    queue: Queue = Queue()
    shares = [users // processes + (1 if i < users % processes else 0) for i in range(processes)]
    firsts = [sum(shares[:i]) for i in range(len(shares))]
    workers = [
        Process(
            target=client_process,
            args=(base, cookies, token, cluster_ids, plan, share, first, queue),
        )
        for share, first in zip(shares, firsts, strict=True)
        if share
    ]
    for worker in workers:
        worker.start()
    samples: list[Sample] = []
    for _ in workers:
        samples.extend(Sample(*row) for row in queue.get(timeout=plan.seconds + 120))
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
    with (
        database(kind) as url,
        running_gunicorn(
            url, args.workers, extra, **{name: str(value) for name, value in CEILINGS.items()}
        ) as base,
    ):
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
                seconds = args.mixed_seconds if phase == "mixed" else args.seconds
                plan = Plan(phase, seconds, args.poll_seconds, args.think_seconds)
                samples = run_phase(
                    base, cookies, token, seeded["cluster_ids"], plan, users, processes
                )
                stats = summarize(samples, seconds)
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
    parser.add_argument("--mixed-seconds", type=float, default=20.0,
                        help="length of the mixed phase")  # fmt: skip
    parser.add_argument("--poll-seconds", type=float, default=3.0,
                        help="dashboards' polling interval in the mixed phase")  # fmt: skip
    parser.add_argument("--think-seconds", type=float, default=1.0,
                        help="pause between a person's actions in the mixed phase")  # fmt: skip
    parser.add_argument("--databases", default=None, help="comma list: sqlite,postgres")
    parser.add_argument("--clusters", type=int, default=CLUSTERS)
    parser.add_argument("--deployments", type=int, default=DEPLOYMENTS)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-class", default="sync")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    for name in ("seconds", "mixed_seconds"):
        if not 0 < getattr(args, name) <= 300:
            parser.error(f"--{name.replace('_', '-')} must be within (0, 300]")
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
