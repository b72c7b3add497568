"""Runtime benchmark: how fast the reconciler makes engines match the scheduler.

    .venv/bin/python bench/runtime_bench.py                     # docker and swarm, 1/10/50
    .venv/bin/python bench/runtime_bench.py --drivers docker --sizes 1,10 --pass-deployments 1000

Against the test run's private dockerd (tests/support/dockerd.py; started when absent, the
busybox image imported locally, nothing pulled), on a fresh SQLite database, with one
reconciler thread running its real loop (`app.reconciler.Reconciler.run`):

1. submit -> running: N deployments submitted at once (N threads through
   `services.deployments.submit`); per deployment, the time from its submission's commit to
   the reconciler writing "running" (the container started and inspected);
2. preempting submit -> victim stopped: N low-priority deployments fill the cluster, then N
   high-priority ones are submitted at once, each preempting one; per victim, the time from
   the preempting commit to the reconciler writing "stopped" (container stopped, with the
   image's own SIGTERM handling, and removed);
3. the reconciler's cost per pass with 1,000 running deployments on a simulated engine
   (observe, compare, nothing to do: the steady state), and the first pass that starts them.

Prints p50/p95 per driver and size and writes bench/results/runtime.json. Everything is
removed at the end (by this run's install label).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import DeploymentRuntime, Organization, User  # noqa: E402
from app.reconciler import Reconciler  # noqa: E402
from app.services import clusters, deployments, reconcile  # noqa: E402
from tests.support import dockerd  # noqa: E402

# Exits at once on SIGTERM, as a well-behaved service does (PID 1 ignores it otherwise).
COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(percentile(values, 0.5), 3),
        "p95": round(percentile(values, 0.95), 3),
        "mean": round(statistics.fmean(values), 3) if values else float("nan"),
    }


def make_app(url: str, engines: dict, install_id: str):
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "ENGINES": engines,
            "RUNTIME_INSTALL_ID": install_id,
            "RUNTIME_STOP_GRACE_SECONDS": 5,
            "RECONCILER_POLL_MS": 50,
            "RECONCILER_RESYNC_SECONDS": 2,
            "RECONCILER_LEASE_SECONDS": 30,
            "RECONCILER_WORKERS": 8,
            "MAX_DEPLOYMENTS_PER_CLUSTER": 5000,
            "DEFAULT_DEPLOYMENT_QUOTA": 100000,
            # One process here plays the web workers (N submitting threads) and the
            # reconciler; in production they are separate processes with their own pools.
            "SQLALCHEMY_ENGINE_OPTIONS": {
                "pool_pre_ping": True,
                "pool_size": 80,
                "max_overflow": 20,
            },
        }
    )
    with app.app_context():
        db.create_all()
    return app


def owner_of(app) -> int:
    with app.app_context():
        org = Organization(name=f"bench-{uuid.uuid4().hex[:6]}", deployment_quota=100000)
        db.session.add(org)
        db.session.flush()
        user = User(
            organization_id=org.id,
            username=f"bench{org.id}",
            username_key=f"bench{org.id}",
            display_name="Bench",
            password_hash="x",
            role="owner",
        )
        db.session.add(user)
        db.session.commit()
        return user.id


def submit_many(app, user_id: int, cluster_id: int, names: list[str], cpu: str, priority: str):
    """Submit at once (one thread each); returns name -> (deployment id, commit time)."""
    barrier = threading.Barrier(len(names))

    def one(name: str):
        with app.app_context():
            user = db.session.get(User, user_id)
            barrier.wait()
            result = deployments.submit(
                user,
                cluster_id,
                dockerd.BUSYBOX_IMAGE,
                name=name,
                priority=priority,
                requests_raw={"cpu": cpu, "ram": "8Mi"},
                command=COMMAND,
            )
            done = time.monotonic()
            return name, (result.deployment.id, done, result.preempted)

    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        return dict(pool.map(one, names))


def wait_statuses(app, ids: set[int], status: str, timeout: float) -> dict[int, float]:
    """When each deployment's runtime row first reads `status` (monotonic), polling 20 ms."""
    seen: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    with app.app_context():
        while len(seen) < len(ids) and time.monotonic() < deadline:
            rows = db.session.execute(
                db.select(DeploymentRuntime.deployment_id, DeploymentRuntime.status).where(
                    DeploymentRuntime.deployment_id.in_(ids - set(seen))
                )
            ).all()
            db.session.rollback()
            now = time.monotonic()
            for deployment_id, current in rows:
                if current == status:
                    seen[deployment_id] = now
            time.sleep(0.02)
    if len(seen) < len(ids):
        raise RuntimeError(f"{len(ids) - len(seen)} deployments never reached {status}")
    return seen


def run_driver(driver: str, sizes: list[int], daemon: dockerd.Daemon) -> dict:
    results = {}
    for size in sizes:
        install_id = f"bench-{uuid.uuid4().hex[:8]}"
        folder = tempfile.mkdtemp(prefix="kargo-runtime-bench-")
        app = make_app(
            f"sqlite:///{folder}/bench.db",
            {"local": {"driver": driver, "endpoint": daemon.host, "capacity": {"cpu": "2"}}},
            install_id,
        )
        user_id = owner_of(app)
        with app.app_context():
            user = db.session.get(User, user_id)
            cluster = clusters.create_cluster(user, f"{driver}-{size}", {}, 5000, engine="local")
        reconciler = Reconciler(app)
        thread = threading.Thread(target=reconciler.run, daemon=True)
        thread.start()
        try:
            share = f"{2000 // size}m"
            low = submit_many(
                app, user_id, cluster.id, [f"low-{i}" for i in range(size)], share, "low"
            )
            started = wait_statuses(app, {v[0] for v in low.values()}, "running", 300)
            to_running = [started[dep_id] - done for dep_id, done, _ in low.values()]
            high = submit_many(
                app, user_id, cluster.id, [f"high-{i}" for i in range(size)], share, "high"
            )
            victims = {}
            for _, done, preempted in high.values():
                for victim in preempted:
                    victims[victim.id] = done
            stopped = wait_statuses(app, set(victims), "stopped", 300)
            to_stopped = [stopped[victim] - victims[victim] for victim in victims]
            results[str(size)] = {
                "submit_to_running_s": summary(to_running),
                "preempting_submit_to_victim_stopped_s": summary(to_stopped),
            }
            print(
                f"{driver:6} N={size:<3} submit->running p50 {summary(to_running)['p50']:.2f} s "
                f"p95 {summary(to_running)['p95']:.2f} s | preempt->victim stopped p50 "
                f"{summary(to_stopped)['p50']:.2f} s p95 {summary(to_stopped)['p95']:.2f} s",
                flush=True,
            )
        finally:
            reconciler.stop()
            thread.join(timeout=60)
            cleanup(daemon, install_id)
    return results


def cleanup(daemon: dockerd.Daemon, install_id: str) -> None:
    label = f"label=kargo.install={install_id}"
    services = daemon.docker("service", "ls", "-q", "--filter", label, check=False).split()
    if services:
        daemon.docker("service", "rm", *services, check=False)
    containers = daemon.docker("ps", "-aq", "--filter", label, check=False).split()
    if containers:
        daemon.docker("rm", "-f", *containers, check=False)


def pass_cost(count: int) -> dict:
    folder = tempfile.mkdtemp(prefix="kargo-runtime-bench-")
    app = make_app(
        f"sqlite:///{folder}/bench.db",
        {"sim": {"driver": "simulated", "capacity": {"cpu": "10000", "ram": "100000"}}},
        "bench-sim",
    )
    user_id = owner_of(app)
    with app.app_context():
        user = db.session.get(User, user_id)
        cluster = clusters.create_cluster(user, "sim", {}, 5000, engine="sim")
        for number in range(count):
            deployments.submit(
                user,
                cluster.id,
                "nginx:1.27",
                name=f"d{number}",
                requests_raw={"cpu": "1", "ram": "1"},
            )
    with app.app_context():
        holder = "bench"
        started = time.perf_counter()
        reconcile.run_pass(holder)
        first = time.perf_counter() - started
        durations = []
        for _ in range(20):
            started = time.perf_counter()
            reports = reconcile.run_pass(holder)
            durations.append(time.perf_counter() - started)
            assert not reports[0].acted
    result = {
        "deployments": count,
        "first_pass_s": round(first, 3),
        "steady_pass_s": summary(durations),
    }
    print(
        f"reconciler pass, {count} running deployments (simulated engine): first (starts all) "
        f"{first:.2f} s, steady p50 {result['steady_pass_s']['p50'] * 1000:.1f} ms "
        f"p95 {result['steady_pass_s']['p95'] * 1000:.1f} ms",
        flush=True,
    )
    return result


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = subprocess.run(["free", "-g"], capture_output=True, text=True).stdout.split("\n")[1]
    return {
        "cpu": cpu,
        "cores": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(),
        "memory_gib": memory.split()[1] if memory else "",
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--drivers", default="docker,swarm")
    parser.add_argument("--sizes", default="1,10,50")
    parser.add_argument("--pass-deployments", type=int, default=1000)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",") if size]
    results: dict = {"machine": machine(), "drivers": {}}
    print(results["machine"], flush=True)
    drivers = [name for name in args.drivers.split(",") if name]
    if drivers:
        reason = dockerd.unavailable_reason()
        if reason:
            sys.exit(f"no private Docker daemon: {reason}")
        daemon = dockerd.start()
        if "swarm" in drivers:
            state = daemon.docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()
            if state != "active":
                daemon.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        for driver in drivers:
            results["drivers"][driver] = run_driver(driver, sizes, daemon)
    if args.pass_deployments:
        results["reconciler_pass"] = pass_cost(args.pass_deployments)
    out = REPO / "bench" / "results" / "runtime.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
