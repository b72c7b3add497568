"""What a decision costs through the service, at 1,000 and 10,000 deployments in one cluster.

    .venv/bin/python bench/decision_path_bench.py     # SQLite; PostgreSQL too when
                                                      # KARGO_TEST_DATABASE_URL is set
    .venv/bin/python bench/decision_path_bench.py --sizes 1000 --trials 20 --databases sqlite

`bench/scheduler_bench.py` times the pure scheduler; this times what a person or a script waits
for: `deployments.submit` and `deployments.delete` (service calls, no HTTP) from the cluster's
lock to the commit, on a cluster holding n deployments, about 70% of them running. For each
size and database it creates a fresh database (SQLite file, or a PostgreSQL schema of its
own, dropped afterwards), migrates it, fills the cluster, then times `--trials` submissions,
deletes of a pending deployment and deletes of a running one, in turn. It prints p50 / p95 /
max wall milliseconds per operation and how much of it the scheduler's `schedule()` took.
Once the app is loaded and migrated, its objects are frozen out of the garbage collector, as
`post_worker_init` in gunicorn.conf.py does in a served worker.

Filling: the deployments are inserted as pending rows in one statement, and one placeholder
deployment holding the whole cluster is deleted through the service: that single decision
starts what fits and writes every queued deployment's position and reason, as any decision
would. Requests and priorities come from the scheduler benchmark's menus and tiers.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from bench.workloads import draw_requests, tiered_priority

PASSWORD = "decision-path-passphrase-2026"
OPERATIONS = ("submit", "delete pending", "delete running")


@contextmanager
def database(kind: str) -> Iterator[str]:
    """A fresh, empty database URL of `kind` (sqlite or postgresql), removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    base = os.environ["KARGO_TEST_DATABASE_URL"]
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in base else "?"
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def fill(n: int, rng: random.Random) -> tuple[object, int]:
    """An owner and a cluster holding n deployments, about 70% of them running."""
    from app.extensions import db
    from app.models import Deployment
    from app.services import accounts, clusters
    from app.services import deployments as service

    owner = accounts.signup(
        username="bench", password=PASSWORD, display_name="Bench", organization_name="Bench Org"
    )
    accounts.update_settings(owner, name="Bench Org", deployment_quota=10 * n + 100)
    drawn = [(tiered_priority(rng), draw_requests(rng)) for _ in range(n)]
    share = drawn[: int(n * 0.7)]
    totals: dict[str, int] = defaultdict(int)
    for _, requests in share:
        for kind, amount in requests.items():
            totals[kind] += amount
    # Whole units in the form the cluster form takes: cores, GiB, GPUs.
    resources = {
        "cpu": str(max(64, -(-totals["cpu"] // 1000))),
        "ram": str(max(256, -(-totals["ram"] // 1024))),
        "gpu": str(max(8, totals["gpu"])),
    }
    cluster = clusters.create_cluster(
        owner, name="bench", resources=resources, max_deployments=n + 1000
    )
    service.submit(
        owner, cluster_id=cluster.id, image="registry.local/app:1", name="placeholder",
        priority=1000, requests_raw={"cpu": resources["cpu"]},
    )  # fmt: skip
    start = db.session.execute(sa.select(sa.func.max(Deployment.submitted_at))).scalar_one()
    db.session.execute(
        sa.insert(Deployment),
        [
            {
                "organization_id": owner.organization_id,
                "cluster_id": cluster.id,
                "name": f"app-{i:05d}",
                "image": f"registry.local/app-{i % 7}:1",
                "priority": priority,
                "requests": requests,
                "status": "pending",
                "created_by_id": owner.id,
                "submitted_at": start + timedelta(microseconds=i + 1),
                "preemptions": 0,
            }
            for i, (priority, requests) in enumerate(drawn)
        ],
    )
    db.session.commit()
    placeholder_id = db.session.execute(
        sa.select(Deployment.id).where(Deployment.name == "placeholder")
    ).scalar_one()
    service.delete(owner, placeholder_id)
    return owner, cluster.id


def measure(n: int, trials: int, kind: str, seed: int) -> dict[str, dict[str, float]]:
    """Wall and scheduler milliseconds of each operation on a cluster of n deployments."""
    from app import create_app
    from app import scheduler as scheduler_package
    from app.extensions import db
    from app.models import Deployment
    from app.services import deployments as service

    rng = random.Random(f"decision-path-{seed}")
    spent = [0.0]
    plain = scheduler_package.schedule

    def timed(state: object, event: object) -> object:
        began = time.perf_counter()
        try:
            return plain(state, event)  # type: ignore[arg-type]
        finally:
            spent[0] += time.perf_counter() - began

    with database(kind) as url:
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": url,
                "TESTING": False,
                "MAX_DEPLOYMENTS_PER_CLUSTER": n + 1000,
                "MAX_ORGANIZATION_QUOTA": 10 * n + 100,
            }
        )
        with app.app_context():
            from flask_migrate import upgrade

            upgrade(directory=str(Path(__file__).resolve().parents[1] / "migrations"))
            # As a served worker does once the app is loaded (gunicorn.conf.py).
            gc.collect()
            gc.freeze()
            began = time.perf_counter()
            owner, cluster_id = fill(n, rng)
            filled = time.perf_counter() - began
            counts = dict(
                db.session.execute(
                    sa.select(Deployment.status, sa.func.count())
                    .where(Deployment.cluster_id == cluster_id)
                    .group_by(Deployment.status)
                ).all()
            )
            db.session.commit()
            service.scheduler.schedule = timed  # type: ignore[attr-defined]
            wall: dict[str, list[float]] = defaultdict(list)
            inside: dict[str, list[float]] = defaultdict(list)

            def one(name: str, call: object) -> None:
                spent[0] = 0.0
                began = time.perf_counter()
                call()  # type: ignore[operator]
                wall[name].append((time.perf_counter() - began) * 1e3)
                inside[name].append(spent[0] * 1e3)

            try:
                for t in range(trials):
                    priority, requests = tiered_priority(rng), draw_requests(rng)
                    raw = {"cpu": f"{requests['cpu']}m", "ram": f"{requests['ram']}Mi"}
                    if requests.get("gpu"):
                        raw["gpu"] = str(requests["gpu"])
                    one(
                        "submit",
                        partial(
                            service.submit, owner, cluster_id=cluster_id,
                            image="registry.local/new:1", name=f"new-{t:04d}",
                            priority=priority, requests_raw=raw,
                        ),
                    )  # fmt: skip
                    for status, name in (
                        ("pending", "delete pending"),
                        ("running", "delete running"),
                    ):
                        ids = (
                            db.session.execute(
                                sa.select(Deployment.id).where(
                                    Deployment.cluster_id == cluster_id, Deployment.status == status
                                )
                            )
                            .scalars()
                            .all()
                        )
                        db.session.commit()
                        if ids:
                            victim = rng.choice(ids)
                            one(name, lambda victim=victim: service.delete(owner, victim))
            finally:
                service.scheduler.schedule = plain  # type: ignore[attr-defined]
            db.session.remove()
            db.engine.dispose()
            gc.unfreeze()
    out: dict[str, dict[str, float]] = {
        "fill": {"seconds": filled, "running": counts.get("running", 0),
                 "pending": counts.get("pending", 0)},
    }  # fmt: skip
    for name in OPERATIONS:
        samples = sorted(wall[name])
        if not samples:
            continue
        out[name] = {
            "p50": statistics.median(samples),
            "p95": samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))],
            "max": samples[-1],
            "scheduler p50": statistics.median(inside[name]),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--databases", nargs="+", default=None, choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    kinds = args.databases or (
        ["sqlite", "postgresql"] if os.environ.get("KARGO_TEST_DATABASE_URL") else ["sqlite"]
    )
    os.environ.setdefault("KARGO_ENV", "development")
    for kind in kinds:
        for n in args.sizes:
            result = measure(n, args.trials, kind, args.seed)
            fill = result["fill"]
            print(
                f"{kind}, {n} deployments ({fill['running']:.0f} running, "
                f"{fill['pending']:.0f} pending; filled in {fill['seconds']:.1f} s):"
            )
            for name in OPERATIONS:
                if name in result:
                    r = result[name]
                    print(
                        f"  {name:15s} p50 {r['p50']:8.1f}  p95 {r['p95']:8.1f}  "
                        f"max {r['max']:8.1f} ms   scheduler p50 {r['scheduler p50']:6.2f} ms"
                    )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
