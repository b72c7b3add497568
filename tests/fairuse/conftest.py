"""Fixtures of the fair-use tests: the API's JSON client, member helpers, and a submission of
cpu-only work with a maximum run time."""

from __future__ import annotations

from app.services import deployments
from tests.api.conftest import api  # noqa: F401  (the JSON client fixture)


def submit_cpu(user, cluster, name, cpu, max_run=None, priority="normal"):
    """Submit `cpu` cores of an nginx deployment (the outcome: status, deployment, ...)."""
    return deployments.submit(
        user,
        cluster.id,
        "nginx:1",
        name=name,
        priority=priority,
        requests_raw={"cpu": str(cpu)},
        max_run=max_run,
    )
