"""Preemption policy and maximum run time per deployment, and a cluster's fair-use settings,
through the service, the API and the pages (issue 15)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.models import Cluster, Deployment, utcnow
from app.services import clusters, deployments
from app.services.errors import Forbidden, ValidationError
from tests.api.conftest import error_of, make_member
from tests.factories import make_cluster, make_deployment


def deploy(api, token, cluster_id, **fields):
    body = {"cluster_id": cluster_id, "image": "nginx:1.25", "resource": {"cpu": 1}, **fields}
    response = api.put("/deployment/", json=body, token=token)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["deployment"]


def test_a_never_preempting_deployment_waits_instead_of_evicting(api, db):
    owner = make_member(role="owner")
    cluster = make_cluster(owner.org, resources={"cpu": 4000})
    low = deploy(api, owner.token, cluster.id, priority="low", resource={"cpu": 3})
    assert low["preemption_policy"] == "preempt_lower"
    polite = deploy(
        api,
        owner.token,
        cluster.id,
        priority="critical",
        resource={"cpu": 2},
        preemption_policy="never",
        max_run="2h",
    )
    assert polite["status"] == "pending" and polite["preemption_policy"] == "never"
    assert polite["max_run_minutes"] == 120
    assert polite["wait"]["cause"] == "no_preempt"
    assert "never preempts" in polite["reason"]
    # The low one is untouched; deleting it lets the polite one start by itself.
    assert api.get(f"/deployment/{low['id']}/", token=owner.token).get_json()["status"] == (
        "running"
    )
    assert api.delete(f"/deployment/{low['id']}/", token=owner.token).status_code in (200, 204)
    shown = api.get(f"/deployment/{polite['id']}/", token=owner.token).get_json()
    assert shown["status"] == "running" and shown["ends_at"] is not None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"preemption_policy": "sometimes"}, "preemption_policy"),
        ({"max_run": "soon"}, "max_run"),
        ({"max_run": 0}, "max_run"),
        ({"max_run": "10000000d"}, "max_run"),
    ],
)
def test_bad_policies_are_refused_and_nothing_is_written(api, db, fields, field):
    owner = make_member(role="owner")
    cluster = make_cluster(owner.org)
    body = {"cluster_id": cluster.id, "image": "nginx:1.25", "resource": {"cpu": 1}, **fields}
    response = api.put("/deployment/", json=body, token=owner.token)
    assert response.status_code == 422
    assert field in error_of(response)["fields"]
    assert deployments.organization_count(owner.org.id) == 0


def test_the_deploy_form_takes_the_policy_and_shows_errors(client, login_as, db):
    owner = make_member(role="owner")
    cluster = make_cluster(owner.org)
    login_as(client, owner.user)
    page = client.get(f"/deployments/new?cluster_id={cluster.id}").get_data(as_text=True)
    assert "Never preempts" in page and "Maximum run time" in page
    data = {
        "cluster_id": str(cluster.id),
        "image": "nginx:1.25",
        "priority_preset": "normal",
        "resource_cpu": "1",
        "preemption_policy": "never",
        "max_run": "forever",
    }
    bad = client.post("/deployments/new", data=data)
    assert bad.status_code == 422 and "maximum run time" in bad.get_data(as_text=True)
    good = client.post("/deployments/new", data={**data, "max_run": "90m"})
    assert good.status_code == 302
    row = db.session.scalar(sa.select(Deployment))
    assert (row.may_preempt, row.max_run_minutes) == (False, 90)


def test_cluster_fair_use_settings_through_the_api_and_the_page(api, client, login_as, db):
    owner = make_member(role="owner")
    member = make_member(owner.org, role="member")
    cluster = make_cluster(owner.org)
    body = {"fair_use": {"min_run_minutes": 5, "starvation_minutes": "30"}}
    shown = api.patch(f"/cluster/{cluster.id}/", json=body, token=owner.token).get_json()
    assert shown["fair_use"]["min_run_minutes"] == 5
    assert shown["fair_use"]["starvation_minutes"] == 30
    assert api.patch(f"/cluster/{cluster.id}/", json=body, token=member.token).status_code == 403
    bad = api.patch(
        f"/cluster/{cluster.id}/", json={"fair_use": {"min_run_minutes": -1}}, token=owner.token
    )
    assert bad.status_code == 422
    assert "fair_use.min_run_minutes" in error_of(bad)["fields"]
    off = api.patch(
        f"/cluster/{cluster.id}/",
        json={"fair_use": {"starvation_minutes": "off"}},
        token=owner.token,
    ).get_json()
    assert off["fair_use"]["starvation_minutes"] is None
    assert off["fair_use"]["min_run_minutes"] == 5
    login_as(client, owner.user)
    page = client.get(f"/clusters/{cluster.id}").get_data(as_text=True)
    assert "Fair use" in page and "younger than 5 minutes" in page
    saved = client.post(
        f"/clusters/{cluster.id}/fair-use",
        data={"min_run_minutes": "0", "starvation_minutes": "45"},
    )
    assert saved.status_code == 302
    db.session.expire_all()
    row = db.session.get(Cluster, cluster.id)
    assert (row.min_run_minutes, row.starvation_minutes) == (0, 45)
    with pytest.raises(Forbidden):
        clusters.update_fair_use(member.user, cluster.id, {"min_run_minutes": 1})
    with pytest.raises(ValidationError):
        clusters.update_fair_use(owner.user, cluster.id, {"starvation_minutes": "lots"})


def test_the_minimum_run_time_spares_a_young_deployment_in_the_service(app, db):
    owner = make_member(role="owner")
    cluster = make_cluster(owner.org, resources={"cpu": 8000})
    clusters.update_fair_use(owner.user, cluster.id, {"min_run_minutes": 10})
    old = make_deployment(cluster, "old", priority=100, requests={"cpu": 4000})
    young = make_deployment(cluster, "young", priority=100, requests={"cpu": 4000})
    db.session.execute(
        sa.update(Deployment)
        .where(Deployment.id == old.id)
        .values(started_at=utcnow() - timedelta(hours=1))
    )
    db.session.commit()
    result = deployments.submit(
        owner.user, cluster.id, "nginx:1", priority="high", requests_raw={"cpu": "4"}
    )
    assert result.status == "running"
    assert [victim.id for victim in result.preempted] == [old.id]
    assert deployments.get(owner.user, young.id).status == "running"
