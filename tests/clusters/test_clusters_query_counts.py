"""The cluster pages run a constant number of SQL statements, however many clusters or
deployments there are (no N+1): the same count with 1 and with 50."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import event

from app.services import deployments
from tests.factories import make_cluster, make_deployment, make_user


def statements_during(db, request: Callable[[], object], expected: int = 200) -> list[str]:
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
    assert response.status_code == expected
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
    # The detail page also draws the usage chart (the trail and the capacity: two statements).
    assert counts[1] <= 12, counts


def test_the_partial_is_a_handful_of_small_queries(app, db, login_as):
    user, cluster_id = organization_with(3)
    client = login_as(app.test_client(), user)
    statements = statements_during(
        db,
        lambda: client.get(f"/clusters/{cluster_id}/utilization", headers={"HX-Request": "true"}),
    )
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    # The session's user, the state version (ETag), the cluster, its resources, its running
    # deployments and its queue (each cut to DASHBOARD_LIST_LIMIT, with their creators) and
    # the counts by status.
    assert len(selects) == 7, statements


def test_an_unchanged_partial_is_revalidated_with_two_small_queries(app, db, login_as):
    user, cluster_id = organization_with(3)
    client = login_as(app.test_client(), user)
    path, headers = f"/clusters/{cluster_id}/utilization", {"HX-Request": "true"}
    first = client.get(path, headers=headers)
    assert first.status_code == 200 and first.headers["ETag"]
    assert "no-cache" in first.headers["Cache-Control"]
    etag = first.headers["ETag"]
    statements = statements_during(
        db, lambda: client.get(path, headers={**headers, "If-None-Match": etag}), expected=304
    )
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, statements  # the session's user and the state version
    again = client.get(path, headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""

    # Any scheduling transaction changes the tag: the next poll renders the new state.
    deployments.submit(user, cluster_id, "team/web:1", "fresh", 500, {"cpu": "1"})
    changed = client.get(path, headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert b"fresh" in changed.data
