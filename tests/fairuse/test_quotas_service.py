"""Resource quotas through the service, the API and the owners' page (issue 15)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.models import ResourceQuota
from app.services import deployments, organizations, quotas
from app.services.errors import Forbidden, NotFound, QuotaExceeded, ValidationError
from tests.api.conftest import error_of, make_member
from tests.factories import make_cluster


def _submit(user, cluster, gpu, priority="normal", name=None):
    return deployments.submit(
        user,
        cluster.id,
        "trainer:1",
        name=name,
        priority=priority,
        requests_raw={"gpu": str(gpu), "cpu": "0.1"},
    )


def test_each_member_quota_waits_refuses_and_releases(app, db):
    owner = make_member(role="owner")
    ada = make_member(owner.org, role="member")
    bob = make_member(owner.org, role="member")
    cluster = make_cluster(owner.org, resources={"cpu": 8000, "gpu": 8})
    quotas.create(
        owner.user, {"scope": "each_member", "cluster_id": cluster.id, "kind": "gpu", "amount": 2}
    )
    first = _submit(ada.user, cluster, 2)
    assert first.status == "running"
    second = _submit(ada.user, cluster, 1)
    assert second.status == "pending"
    assert second.reason.startswith("over your gpu quota (2 of 2 used)")
    assert second.deployment.wait["cause"] == "quota"
    assert _submit(bob.user, cluster, 2).status == "running"  # Bob has his own quota
    with pytest.raises(QuotaExceeded) as caught:
        _submit(ada.user, cluster, 3)
    assert "resource.gpu" in caught.value.fields and "could never start" in caught.value.message
    deployments.delete(ada.user, first.deployment.id)
    assert deployments.get(ada.user, second.deployment.id).status == "running"
    overview = organizations.quota_overview(owner.user)
    lines = {line.who: line.used for line in overview[0].lines}
    assert lines[ada.user.display_name] == 1 and lines[bob.user.display_name] == 2


def test_an_organization_quota_across_clusters_and_priority_ranges(app, db):
    owner = make_member(role="owner")
    a = make_cluster(owner.org, resources={"cpu": 8000, "gpu": 8})
    b = make_cluster(owner.org, resources={"cpu": 8000, "gpu": 8})
    quotas.create(
        owner.user,
        {"scope": "organization", "kind": "gpu", "amount": "4", "min_priority": 501},
    )
    assert _submit(owner.user, a, 3, priority="high").status == "running"
    waits = _submit(owner.user, b, 2, priority="critical")
    assert waits.status == "pending"
    assert waits.reason.startswith("over your organization's gpu quota (3 of 4 used)")
    # Below the range the quota does not count.
    assert _submit(owner.user, b, 2, priority="normal").status == "running"


def test_quota_validation_and_permissions(app, db):
    owner = make_member(role="owner")
    admin = make_member(owner.org, role="admin")
    other = make_member(role="owner")
    foreign = make_cluster(other.org)
    bad = [
        ({"scope": "team", "kind": "gpu", "amount": 1}, "scope"),
        ({"scope": "organization", "kind": "gpu", "amount": "lots"}, "amount"),
        ({"scope": "organization", "kind": "", "amount": 1}, "kind"),
        ({"scope": "member", "user_id": other.user.id, "kind": "gpu", "amount": 1}, "user_id"),
        (
            {"scope": "organization", "cluster_id": foreign.id, "kind": "gpu", "amount": 1},
            "cluster_id",
        ),
        (
            {
                "scope": "organization",
                "kind": "gpu",
                "amount": 1,
                "min_priority": 900,
                "max_priority": 100,
            },
            "max_priority",
        ),
        (
            {"scope": "organization", "kind": "gpu", "amount": 1, "max_priority": 1001},
            "max_priority",
        ),
    ]
    for raw, field in bad:
        with pytest.raises(ValidationError) as caught:
            quotas.create(owner.user, raw)
        assert field in caught.value.fields, (raw, caught.value.fields)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ResourceQuota)) == 0
    with pytest.raises(Forbidden):
        quotas.create(admin.user, {"scope": "organization", "kind": "gpu", "amount": 1})
    with pytest.raises(Forbidden):
        organizations.quota_overview(admin.user)
    rule = quotas.create(owner.user, {"scope": "organization", "kind": "gpu", "amount": 1})
    with pytest.raises(NotFound):
        quotas.delete(other.user, rule.id)


def test_the_quota_api(api, db):
    owner = make_member(role="owner")
    member = make_member(owner.org, role="member")
    cluster = make_cluster(owner.org, resources={"cpu": 8000, "ram": 16384})
    made = api.post(
        "/organization/quotas/",
        json={
            "scope": "member",
            "user_id": member.id,
            "cluster_id": cluster.id,
            "kind": "ram",
            "amount": "8Gi",
        },
        token=owner.token,
    )
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["amount"] == 8 and body["member"] == member.user.display_name
    assert body["use"][0]["used"] == 0
    listed = api.get("/organization/quotas/", token=owner.token).get_json()["items"]
    assert [item["id"] for item in listed] == [body["id"]]
    assert api.get("/organization/quotas/", token=member.token).status_code == 403
    refused = api.post(
        "/organization/quotas/",
        json={"scope": "organization", "kind": "ram", "amount": -1},
        token=owner.token,
    )
    assert refused.status_code == 422 and "amount" in error_of(refused)["fields"]
    assert api.delete(f"/organization/quotas/{body['id']}/", token=member.token).status_code == 403
    assert api.delete(f"/organization/quotas/{body['id']}/", token=owner.token).status_code == 204
    assert api.delete(f"/organization/quotas/{body['id']}/", token=owner.token).status_code == 404


def test_the_quotas_page(client, login_as, db):
    owner = make_member(role="owner")
    member = make_member(owner.org, role="member")
    cluster = make_cluster(owner.org, name="gpu-pool")
    login_as(client, owner.user)
    page = client.get("/admin/quotas").get_data(as_text=True)
    assert "No quotas yet" in page and "gpu-pool" in page
    bad = client.post("/admin/quotas", data={"scope": "each_member", "kind": "gpu", "amount": "x"})
    assert bad.status_code == 422 and 'id="amount-error"' in bad.get_data(as_text=True)
    good = client.post(
        "/admin/quotas",
        data={
            "scope": "each_member",
            "cluster_id": str(cluster.id),
            "kind": "gpu",
            "amount": "8",
            "min_priority": "501",
            "max_priority": "1000",
        },
    )
    assert good.status_code == 302
    page = client.get("/admin/quotas").get_data(as_text=True)
    assert "each member: at most 8 gpu at priority 501-1000 on cluster gpu-pool" in page
    quota_id = db.session.scalar(sa.select(ResourceQuota.id))
    assert client.post(f"/admin/quotas/{quota_id}/delete").status_code == 302
    login_as(client, member.user)
    assert client.get("/admin/quotas").status_code == 403
