"""Operator ceilings bound what an organization can set for itself, and the pages work for
every cluster an organization has.

Issue: any owner raised its quota to 1,000,000, any member created clusters with
max_deployments 100,000 and 1,100 clusters in 6 s; clusters after the first 1,000 answered
404 on the deploy form and the list filter.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.models import Cluster, ClusterResource
from app.services import accounts, clusters, deployments
from app.services.errors import QuotaExceeded, ValidationError
from tests.factories import make_cluster, make_org, make_user


@pytest.fixture
def owner(app):
    return make_user(make_org(), "olivia", role="owner")


def _api(client, method, path, user, body=None):
    _, token = accounts.issue_token(user)
    return client.open(
        f"/api/v1{path}", method=method, json=body, headers={"Authorization": f"Bearer {token}"}
    )


def test_the_organization_quota_stops_at_the_operator_ceiling(app, client, login_as, owner):
    ceiling = app.config["MAX_ORGANIZATION_QUOTA"]
    with pytest.raises(ValidationError) as caught:
        accounts.update_settings(owner, "Acme", ceiling + 1)
    assert f"{ceiling:,}" in caught.value.fields["deployment_quota"]
    login_as(client, owner)
    response = client.post("/admin/settings", data={"name": "Acme", "deployment_quota": "1000000"})
    assert response.status_code == 422
    assert accounts.update_settings(owner, "Acme", ceiling).deployment_quota == ceiling


def test_a_cluster_maximum_stops_at_the_operator_ceiling(app, client, owner):
    ceiling = app.config["MAX_DEPLOYMENTS_PER_CLUSTER"]
    body = {"cluster_name": "big", "resource": {"cpu": 1}, "max_deployments": 100_000}
    response = _api(client, "PUT", "/cluster/", owner, body)
    assert response.status_code == 422
    assert f"1 to {ceiling:,}" in response.get_json()["error"]["fields"]["max_deployments"]


def test_an_older_cluster_above_a_lowered_ceiling_is_held_to_it(app, owner):
    cluster = make_cluster(owner.organization, "old", max_deployments=100)
    app.config["MAX_DEPLOYMENTS_PER_CLUSTER"] = 2
    for _ in range(2):
        deployments.submit(owner, cluster.id, "nginx", requests_raw={"cpu": "0.1"})
    with pytest.raises(QuotaExceeded, match="maximum of 2"):
        deployments.submit(owner, cluster.id, "nginx", requests_raw={"cpu": "0.1"})


class TestClustersPerOrganization:
    @pytest.fixture
    def app_config(self):
        return {"MAX_CLUSTERS_PER_ORGANIZATION": 3}

    def test_the_fourth_cluster_is_refused_with_the_ceiling(self, app, client, db, owner):
        for name in ("a", "b", "c"):
            clusters.create_cluster(owner, name, {"cpu": 1})
        with pytest.raises(QuotaExceeded, match=r"already has 3 clusters.*\(3\)"):
            clusters.create_cluster(owner, "d", {"cpu": 1})
        response = _api(
            client, "PUT", "/cluster/", owner, {"cluster_name": "e", "resource": {"cpu": 1}}
        )
        assert response.status_code == 422
        assert response.get_json()["error"]["code"] == "quota_exceeded"
        assert db.session.scalar(sa.select(sa.func.count(Cluster.id))) == 3
        # Another organization has its own count.
        other = make_user(make_org(), "oscar", role="owner")
        assert clusters.create_cluster(other, "a", {"cpu": 1}).name == "a"


def _many_clusters(organization_id: int, count: int) -> None:
    """`count` clusters in two statements (the services would take minutes for this many)."""
    from app.extensions import db

    ids = []
    for start in range(0, count, 500):
        rows = [
            {"organization_id": organization_id, "name": f"c{n:05d}", "max_deployments": 10}
            for n in range(start, min(count, start + 500))
        ]
        ids += db.session.scalars(sa.insert(Cluster).returning(Cluster.id), rows).all()
    db.session.execute(
        sa.insert(ClusterResource),
        [{"cluster_id": i, "kind": "cpu", "position": 0, "capacity": 1000, "used": 0} for i in ids],
    )
    db.session.commit()


def test_the_deploy_form_and_the_list_filter_work_for_every_cluster(app, client, login_as, owner):
    _many_clusters(owner.organization_id, 1005)
    last = max(deployments.cluster_choices(owner), key=lambda choice: choice.name)
    assert last.name == "c01004"
    login_as(client, owner)
    form = client.get(f"/deployments/new?cluster_id={last.id}")
    assert form.status_code == 200
    assert f'<option selected value="{last.id}">c01004</option>' in form.get_data(as_text=True)
    assert client.get(f"/deployments/?cluster_id={last.id}").status_code == 200
    response = client.post(
        "/deployments/new",
        data={"cluster_id": str(last.id), "image": "nginx", "resource_cpu": "0.5"},
    )
    assert response.status_code == 302
