"""Scheduling rules checked on a live database, for tests that drive real servers.

`rule_violations(database_url)` reads every cluster's capacity and usage and every deployment
straight from the database and returns what breaks: usage must equal the sum of the running
deployments' requests exactly, and rules 1-3 (`app.scheduler.violations`) must hold.
"""

from __future__ import annotations

import json
from collections import Counter

import sqlalchemy as sa

from app import scheduler


def rule_violations(database_url: str) -> list[str]:
    """Rules 1-3 on every cluster, read straight from the database."""
    engine = sa.create_engine(database_url)
    problems: list[str] = []
    try:
        with engine.connect() as connection:
            resources = connection.execute(
                sa.text("SELECT cluster_id, kind, capacity, used FROM cluster_resources")
            ).all()
            deployments = connection.execute(
                sa.text(
                    "SELECT id, cluster_id, priority, requests, status, submitted_at "
                    "FROM deployments ORDER BY submitted_at, id"
                )
            ).all()
    finally:
        engine.dispose()
    capacity: dict[int, dict[str, int]] = {}
    used: dict[int, dict[str, int]] = {}
    for cluster_id, kind, cap, in_use in resources:
        capacity.setdefault(cluster_id, {})[kind] = cap
        used.setdefault(cluster_id, {})[kind] = in_use
    running: dict[int, list[scheduler.Job]] = {cluster_id: [] for cluster_id in capacity}
    pending: dict[int, list[scheduler.Job]] = {cluster_id: [] for cluster_id in capacity}
    for order, (job_id, cluster_id, priority, wanted, status, _) in enumerate(deployments):
        if isinstance(wanted, str):  # SQLite returns the JSON column's text here
            wanted = json.loads(wanted)
        job = scheduler.Job(job_id, priority, wanted, order)
        (running if status == "running" else pending)[cluster_id].append(job)
    for cluster_id, caps in capacity.items():
        summed = Counter()
        for job in running[cluster_id]:
            summed.update(job.requests)
        for kind in caps:
            if used[cluster_id][kind] != summed.get(kind, 0):
                problems.append(
                    f"cluster {cluster_id}: {kind} used {used[cluster_id][kind]} but running "
                    f"deployments request {summed.get(kind, 0)}"
                )
        problems += [
            f"cluster {cluster_id}: {problem}"
            for problem in scheduler.violations(caps, running[cluster_id], pending[cluster_id])
        ]
    return problems
