"""The clusters service through the real database: create/list/get/delete and the internal
interface (lock, snapshot, check, utilize, free) with its errors.

Amounts are base units: cpu millicores, ram MiB, every other kind whole units.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.models import Cluster, ClusterResource, Organization
from app.quantities import MAX_BASE_UNITS, parse
from app.services import clusters, deployments
from app.services.clusters import CapacityError
from app.services.errors import BadRequest, Conflict, NotFound, ValidationError
from tests.factories import make_cluster, make_deployment, make_org, make_user


@pytest.fixture
def owner(app):
    return make_user(role="owner")


def cluster_count(db) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Cluster))


def resource_count(db) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(ClusterResource))


def used(db, cluster_id: int) -> dict[str, int]:
    db.session.expire_all()
    return dict(
        db.session.execute(
            sa.select(ClusterResource.kind, ClusterResource.used).where(
                ClusterResource.cluster_id == cluster_id
            )
        ).all()
    )


# --- create -----------------------------------------------------------------------------------


def test_create_parses_every_kind_into_base_units(db, owner, app):
    snap = clusters.create_cluster(
        owner,
        " Prod-1 ",
        {"cpu": " 1.5", "gpu": 2, "ram": "512Mi", "tpu": "8", "disk_gb": 100},
        None,
    )
    assert snap.name == "prod-1"
    assert snap.capacity == {"cpu": 1500, "gpu": 2, "ram": 512, "tpu": 8, "disk_gb": 100}
    assert snap.used == {kind: 0 for kind in snap.capacity}
    assert snap.max_deployments == app.config["DEFAULT_MAX_DEPLOYMENTS"]
    stored = clusters.get_cluster(owner.organization_id, snap.id)
    assert stored.capacity == snap.capacity
    assert [r.kind for r in stored.resources] == ["cpu", "gpu", "ram", "tpu", "disk_gb"]
    assert stored.created_by_name == owner.display_name


def test_blank_standard_kinds_are_left_out(db, owner):
    snap = clusters.create_cluster(owner, "cpu-only", {"cpu": "4", "gpu": "", "ram": "  "}, 5)
    assert snap.capacity == {"cpu": 4000}
    assert snap.max_deployments == 5


@pytest.mark.parametrize(
    ("resources", "field", "words"),
    [
        ({"cpu": "0"}, "resource.cpu", "greater than zero"),
        ({"cpu": "-1"}, "resource.cpu", "greater than zero"),
        ({"cpu": "abc"}, "resource.cpu", "not a number"),
        ({"cpu": "0.0001"}, "resource.cpu", "0.001"),
        ({"cpu": "2x"}, "resource.cpu", "unknown unit"),
        ({"ram": "4Pi"}, "resource.ram", "unknown unit"),
        ({"gpu": "1.5"}, "resource.gpu", "whole number"),
        ({"gpu": str(MAX_BASE_UNITS + 1)}, "resource.gpu", "too large"),
        ({"cpu": "1e9"}, "resource.cpu", "not a number"),
        ({"cpu": "9" * 40}, "resource.cpu", "too long"),
        ({"tpu": ""}, "resource.tpu", "give an amount"),
        ({"Bad Kind!": "1"}, "resource.Bad Kind!", "resource kind"),
        ({"": "1"}, "resource.", "name this resource kind"),
        ([("tpu", "1"), ("TPU", "2")], "resource.tpu", "given twice"),
        ([("cpu", "1"), ("cpu", "2")], "resource.cpu", "given twice"),
        ({}, "resources", "at least one"),
        ({"cpu": "", "gpu": "", "ram": ""}, "resources", "at least one"),
    ],
)
def test_every_bad_quantity_is_a_field_error_and_writes_nothing(db, owner, resources, field, words):
    with pytest.raises(ValidationError) as caught:
        clusters.create_cluster(owner, "c1", resources, None)
    assert words in caught.value.fields[field]
    assert cluster_count(db) == 0 and resource_count(db) == 0


def test_all_problems_are_reported_at_once(db, owner):
    with pytest.raises(ValidationError) as caught:
        clusters.create_cluster(owner, "-bad-", {"cpu": "0", "ram": "x", "tpu": "1"}, "0")
    assert set(caught.value.fields) == {"name", "resource.cpu", "resource.ram", "max_deployments"}
    assert cluster_count(db) == 0


def test_too_many_kinds(db, owner, app):
    app.config["MAX_RESOURCE_KINDS"] = 3
    with pytest.raises(ValidationError) as caught:
        clusters.create_cluster(owner, "c1", {"cpu": 1, "gpu": 1, "ram": 1, "tpu": 1}, None)
    assert "at most 3" in caught.value.fields["resources"]


@pytest.mark.parametrize(
    "name", ["", "   ", "-x", "x-", "UPPER_", "a" * 64, "a b", "é", None, 5, "a.b"]
)
def test_bad_names(db, owner, name):
    with pytest.raises(ValidationError) as caught:
        clusters.create_cluster(owner, name, {"cpu": 1}, None)
    assert "name" in caught.value.fields
    assert cluster_count(db) == 0


@pytest.mark.parametrize("name", ["a", "a1", "gpu-pool-1", "a" * 63, "9lives"])
def test_good_names(db, owner, name):
    assert clusters.create_cluster(owner, name, {"cpu": 1}, None).name == name


@pytest.mark.parametrize("limit", [0, -1, 1001, "abc", "1.5", True, 2.5, "9" * 30])
def test_bad_max_deployments(db, owner, limit):
    """The operator's MAX_DEPLOYMENTS_PER_CLUSTER (1,000 by default) is the ceiling."""
    with pytest.raises(ValidationError) as caught:
        clusters.create_cluster(owner, "c1", {"cpu": 1}, limit)
    assert "1 to 1,000" in caught.value.fields["max_deployments"]


@pytest.mark.parametrize("limit", [1, 1000, " 7 "])
def test_good_max_deployments(db, owner, limit):
    assert clusters.create_cluster(owner, "c1", {"cpu": 1}, limit).max_deployments == int(limit)


def test_names_are_unique_in_an_organization_case_insensitively(db, owner):
    clusters.create_cluster(owner, "prod", {"cpu": 1}, None)
    with pytest.raises(ValidationError) as caught:
        clusters.create_cluster(owner, "PROD", {"cpu": 1}, None)
    assert caught.value.fields["name"] == "a cluster named prod already exists"
    # Another organization may use the same name.
    other = make_user(role="owner")
    assert clusters.create_cluster(other, "prod", {"cpu": 1}, None).name == "prod"


def test_a_racing_duplicate_is_caught_by_the_constraint(db, owner, monkeypatch):
    clusters.create_cluster(owner, "prod", {"cpu": 1}, None)
    monkeypatch.setattr(clusters, "_name_taken", lambda *_: False)  # lose the race
    with pytest.raises(ValidationError) as caught:
        clusters.create_cluster(owner, "prod", {"gpu": 1}, None)
    assert caught.value.fields["name"] == "a cluster named prod already exists"
    assert cluster_count(db) == 1 and resource_count(db) == 1


# --- list / get --------------------------------------------------------------------------------


def test_list_is_paginated_by_name_and_scoped_to_the_organization(db, owner):
    org = owner.organization
    for name in ["delta", "alpha", "charlie", "bravo", "echo"]:
        make_cluster(org, name=name)
    make_cluster(make_org(), name="aaa-other")
    page1, total = clusters.list_clusters(org.id, 1, 2)
    page3, _ = clusters.list_clusters(org.id, 3, 2)
    assert total == 5
    assert [c.name for c in page1] == ["alpha", "bravo"]
    assert [c.name for c in page3] == ["echo"]
    assert page1[0].capacity == {"cpu": 4000, "gpu": 2, "ram": 8192}
    assert clusters.list_clusters(org.id, 9, 2) == ([], 5)


@pytest.mark.parametrize(("page", "per_page"), [(0, 20), (-1, 20), (1, 0), (1, 5000), ("1", 2)])
def test_list_refuses_bad_paging(db, owner, page, per_page):
    with pytest.raises(BadRequest):
        clusters.list_clusters(owner.organization_id, page, per_page)


@pytest.mark.parametrize("cluster_id", ["other", 0, -1, 2**31, 10**20, 999])
def test_get_answers_not_found_for_other_orgs_and_impossible_ids(db, owner, cluster_id):
    foreign = make_cluster(make_org())
    target = foreign.id if cluster_id == "other" else cluster_id
    for call in (
        lambda: clusters.get_cluster(owner.organization_id, target),
        lambda: clusters.snapshot(target, owner.organization_id),
        lambda: clusters.check(target, owner.organization_id, {"cpu": 1}),
    ):
        with pytest.raises(NotFound) as caught:
            call()
        assert caught.value.message == "No such cluster."


# --- delete ------------------------------------------------------------------------------------


def test_delete_an_empty_cluster(db, owner):
    cluster = make_cluster(owner.organization)
    deployments.delete_cluster(owner, cluster.id)
    assert cluster_count(db) == 0 and resource_count(db) == 0


def test_delete_refuses_while_deployments_remain_with_the_counts(db, owner):
    cluster = make_cluster(owner.organization, name="busy")
    for _ in range(3):
        make_deployment(cluster, status="running")
    for _ in range(2):
        make_deployment(cluster, status="pending")
    with pytest.raises(Conflict) as caught:
        deployments.delete_cluster(owner, cluster.id)
    assert caught.value.message == (
        "Cluster busy still has 3 running and 2 pending deployments; delete them first."
    )
    assert cluster_count(db) == 1


def test_delete_another_organizations_cluster_is_not_found(db, owner):
    foreign = make_cluster(make_org())
    with pytest.raises(NotFound):
        deployments.delete_cluster(owner, foreign.id)
    assert cluster_count(db) == 1


# --- the internal interface --------------------------------------------------------------------


def test_check_says_what_fits_and_what_is_short(db, owner):
    cluster = make_cluster(owner.organization, resources={"cpu": 4000, "gpu": 2})
    result = clusters.check(cluster.id, owner.organization_id, {"cpu": 4000, "gpu": 1})
    assert result.fits and result.short == {}
    result = clusters.check(cluster.id, owner.organization_id, {"cpu": 4500, "tpu": 1})
    assert not result.fits
    assert result.short == {"cpu": 500, "tpu": 1}
    assert result.available == {"cpu": 4000, "gpu": 2}


def test_utilize_and_free_keep_usage_within_bounds(db, owner):
    cluster = make_cluster(owner.organization, resources={"cpu": 1000, "gpu": 1})
    clusters.lock(cluster.id, owner.organization_id)
    clusters.utilize(cluster.id, {"cpu": 600, "gpu": 1})
    db.session.commit()
    assert used(db, cluster.id) == {"cpu": 600, "gpu": 1}

    clusters.lock(cluster.id, owner.organization_id)
    with pytest.raises(CapacityError, match="above its capacity"):
        clusters.utilize(cluster.id, {"cpu": 401})
    db.session.rollback()
    clusters.lock(cluster.id, owner.organization_id)
    with pytest.raises(CapacityError, match="below zero"):
        clusters.free(cluster.id, {"gpu": 2})
    db.session.rollback()
    clusters.lock(cluster.id, owner.organization_id)
    with pytest.raises(CapacityError, match="no tpu"):
        clusters.utilize(cluster.id, {"tpu": 1})
    db.session.rollback()
    clusters.lock(cluster.id, owner.organization_id)
    with pytest.raises(CapacityError, match="negative"):
        clusters.free(cluster.id, {"cpu": -5})
    db.session.rollback()
    assert used(db, cluster.id) == {"cpu": 600, "gpu": 1}

    clusters.lock(cluster.id, owner.organization_id)
    clusters.free(cluster.id, {"cpu": 600, "gpu": 1})
    db.session.commit()
    assert used(db, cluster.id) == {"cpu": 0, "gpu": 0}


def test_a_thousand_tenths_of_a_cpu_return_usage_to_exactly_zero(db, owner):
    """A thousand reservations then a thousand releases of 0.1 cpu, each through the real
    guarded UPDATE, in ten scheduling transactions per direction (ten keeps the test fast)."""
    snap = clusters.create_cluster(owner, "exact", {"cpu": "100"}, None)
    tenth = parse("cpu", "0.1")
    for adjust in (clusters.utilize, clusters.free):
        for _ in range(10):
            clusters.lock(snap.id, owner.organization_id)
            for _ in range(100):
                adjust(snap.id, {"cpu": tenth})
            db.session.commit()
        if adjust is clusters.utilize:
            assert used(db, snap.id) == {"cpu": 100_000}  # a thousand tenths: 100 cores, full
    assert used(db, snap.id) == {"cpu": 0}


def test_lock_refuses_to_start_after_writes(db, owner):
    cluster_id, organization_id = make_cluster(owner.organization).id, owner.organization_id
    db.session.add(Organization(name="x", deployment_quota=1))
    with pytest.raises(RuntimeError, match="clean session"):
        clusters.lock(cluster_id, organization_id)
    db.session.rollback()
