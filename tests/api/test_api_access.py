"""Another organization's objects answer 404 on every object route, exactly like absent ones,
and nothing is changed by trying."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.models import Cluster, ClusterResource, Deployment
from tests.api.conftest import error_of
from tests.factories import make_cluster

# (method, path template, body): every route that names an object of an organization.
OBJECT_ROUTES = [
    ("GET", "/cluster/{cluster}/", None),
    ("DELETE", "/cluster/{cluster}/", None),
    ("PATCH", "/cluster/{cluster}/resource/", {"resource": {"cpu": 1}}),
    ("POST", "/cluster/{cluster}/resource/", {"resource": {"cpu": 1}}),
    ("DELETE", "/cluster/{cluster}/resource/", {"resource": {"cpu": 1}}),
    ("GET", "/deployment/{deployment}/", None),
    ("DELETE", "/deployment/{deployment}/", None),
    ("DELETE", "/deployment/?cluster_id={cluster}", None),
    ("GET", "/deployment/?cluster_id={cluster}", None),
    (
        "PUT",
        "/deployment/",
        {"cluster_id": "{cluster}", "image": "nginx", "resource": {"cpu": 1}},
    ),
]


def snapshot(db) -> tuple:
    """Everything an attempt could change."""
    return (
        db.session.execute(sa.select(Cluster.id, Cluster.name)).all(),
        db.session.execute(
            sa.select(ClusterResource.cluster_id, ClusterResource.kind, ClusterResource.used)
        ).all(),
        db.session.execute(sa.select(Deployment.id, Deployment.status)).all(),
    )


def fill(template, ids):
    if isinstance(template, str):
        text = template.format(**ids)
        return int(text) if text.isdigit() and template.startswith("{") else text
    if isinstance(template, dict):
        return {key: fill(value, ids) for key, value in template.items()}
    return template


@pytest.mark.parametrize(("method", "path", "body"), OBJECT_ROUTES)
@pytest.mark.parametrize("whose", ["other organization", "nobody"])
def test_objects_of_other_organizations_are_404(
    api, owner, outsider, db, method, path, body, whose
):
    theirs = make_cluster(outsider.org, resources={"cpu": 4000})
    response = api.put(
        "/deployment/",
        json={"cluster_id": theirs.id, "image": "nginx", "resource": {"cpu": 1}},
        token=outsider.token,
    )
    deployment_id = response.get_json()["deployment"]["id"]
    if whose == "other organization":
        ids = {"cluster": theirs.id, "deployment": deployment_id}
    else:
        ids = {"cluster": 987_654, "deployment": 987_654}
    before = snapshot(db)
    response = api.request(method, fill(path, ids), json=fill(body, ids), token=owner.token)
    assert response.status_code == 404, response.get_json()
    assert error_of(response)["code"] == "not_found"
    assert snapshot(db) == before
