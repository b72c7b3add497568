"""Plain factory functions that build rows directly, for tests that need data in place.

They write through the models (not the services) and flush, so tests stay independent of the
flows they are not about; services are tested through their own functions.
"""

from __future__ import annotations

import itertools

import sqlalchemy as sa

from app.extensions import db
from app.models import Cluster, ClusterResource, Deployment, Organization, User
from app.services.accounts import hash_password

DEFAULT_PASSWORD = "correct horse battery"
_counter = itertools.count(1)
_hash_cache: dict[str, str] = {}


def _hashed(password: str) -> str:
    # scrypt is deliberately slow; tests reuse one hash per password.
    if password not in _hash_cache:
        _hash_cache[password] = hash_password(password)
    return _hash_cache[password]


def make_org(name: str | None = None, deployment_quota: int = 1000) -> Organization:
    org = Organization(name=name or f"Org {next(_counter)}", deployment_quota=deployment_quota)
    db.session.add(org)
    db.session.commit()
    return org


def make_user(
    org: Organization | None = None,
    username: str | None = None,
    role: str = "owner",
    password: str = DEFAULT_PASSWORD,
    display_name: str | None = None,
    active: bool = True,
) -> User:
    org = org or make_org()
    username = username or f"user{next(_counter)}"
    user = User(
        organization_id=org.id,
        username=username,
        username_key=username.lower(),
        display_name=display_name or username.title(),
        password_hash=_hashed(password),
        role=role,
        active=active,
    )
    db.session.add(user)
    db.session.commit()
    return user


def make_cluster(
    org: Organization,
    name: str | None = None,
    resources: dict[str, int] | None = None,
    max_deployments: int = 100,
    created_by: User | None = None,
) -> Cluster:
    """A cluster with capacities in base units (cpu millicores, ram MiB, others whole units)."""
    resources = resources or {"cpu": 4000, "gpu": 2, "ram": 8192}
    cluster = Cluster(
        organization_id=org.id,
        name=name or f"cluster-{next(_counter)}",
        max_deployments=max_deployments,
        created_by_id=created_by.id if created_by else None,
    )
    cluster.resources = [
        ClusterResource(kind=kind, capacity=amount, used=0, position=i)
        for i, (kind, amount) in enumerate(resources.items())
    ]
    db.session.add(cluster)
    db.session.commit()
    return cluster


def make_deployment(
    cluster: Cluster,
    name: str | None = None,
    status: str = "running",
    priority: int = 100,
    requests: dict[str, int] | None = None,
    created_by: User | None = None,
    queue_position: int | None = None,
    reason: str | None = None,
    image: str = "registry.example.com/team/app:1.0",
) -> Deployment:
    """A deployment row written directly (no scheduler); a running one also adds its requests
    to the cluster's usage, so the accounting stays true. Amounts are in base units."""
    from app.models import utcnow

    requests = requests if requests is not None else {"cpu": 100}
    deployment = Deployment(
        organization_id=cluster.organization_id,
        cluster_id=cluster.id,
        name=name or f"app-{next(_counter)}",
        image=image,
        priority=priority,
        requests=dict(requests),
        status=status,
        created_by_id=created_by.id if created_by else None,
        started_at=utcnow() if status == "running" else None,
        queue_position=queue_position if status == "pending" else None,
        reason=reason if status == "pending" else None,
    )
    db.session.add(deployment)
    if status == "running":
        for resource in db.session.scalars(
            sa.select(ClusterResource).where(ClusterResource.cluster_id == cluster.id)
        ):
            resource.used += requests.get(resource.kind, 0)
    db.session.commit()
    return deployment
