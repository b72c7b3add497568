"""The cluster pages run a constant number of SQL statements, however many clusters or
deployments there are (no N+1): the same count with 1 and with 50."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import event

from tests.factories import make_cluster, make_deployment, make_user


def statements_during(db, request: Callable[[], object]) -> list[str]:
    """SQL statements sent while `request` runs, on a fresh session (nothing cached)."""
    db.session.remove()
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = request()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert response.status_code == 200
    return seen


def organization_with(count: int):
    """A user whose organization has `count` clusters, each with running and pending work,
    and one cluster (the first) holding `count` running and `count` pending deployments."""
    user = make_user()
    clusters = [
        make_cluster(user.organization, name=f"c{i:03}", resources={"cpu": 10**6, "gpu": 10**3})
        for i in range(count)
    ]
    for cluster in clusters:
        make_deployment(cluster, status="running", requests={"cpu": 100}, created_by=user)
        make_deployment(cluster, status="pending", requests={"gpu": 1}, created_by=user)
    for i in range(count - 1):
        make_deployment(clusters[0], status="running", requests={"cpu": 100}, created_by=user)
        make_deployment(
            clusters[0], status="pending", requests={"gpu": 1}, queue_position=i, created_by=user
        )
    return user, clusters[0].id


@pytest.mark.parametrize(
    "path",
    ["/clusters/", "/clusters/{id}", "/clusters/{id}/utilization"],
    ids=["list", "detail", "partial"],
)
def test_statement_count_does_not_grow_with_the_data(app, db, login_as, path):
    counts = []
    for size in (1, 50):
        db.session.remove()
        client = app.test_client()
        user, cluster_id = organization_with(size)
        login_as(client, user)
        url = path.format(id=cluster_id)
        client.get(url)  # warm up anything cached per process
        statements = statements_during(db, lambda c=client, u=url: c.get(u))
        counts.append(len(statements))
    assert counts[0] == counts[1], counts
    assert counts[1] <= 8, counts


def test_the_partial_is_a_handful_of_small_queries(app, db, login_as):
    user, cluster_id = organization_with(3)
    client = login_as(app.test_client(), user)
    statements = statements_during(
        db,
        lambda: client.get(f"/clusters/{cluster_id}/utilization", headers={"HX-Request": "true"}),
    )
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    # The session's user, the cluster, its resources, its deployments with their creators.
    assert len(selects) == 4, statements
