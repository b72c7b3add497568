"""A cluster's opt-in repack: its settings (service, pages, API), and the moves it makes when
deployments are submitted and deleted, with their budget, cooldown and history.

docs/scheduling.md, "Repack": off by default; when on, running work of a priority may be moved
back to the queue to start queued work of the same priority, each move raising mean
utilization by at least the threshold, within an hourly budget and a cooldown per deployment.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.models import Cluster, Deployment, Event
from app.services import clusters, deployments, history
from app.services.errors import Forbidden, NotFound, ValidationError
from tests.factories import make_cluster, make_org, make_user


@pytest.fixture
def owner(app):
    return make_user(role="owner")


@pytest.fixture
def cluster(owner):
    return make_cluster(owner.organization, resources={"cpu": 4000})


def submit(user, cluster, name, priority=500, **requests):
    return deployments.submit(user, cluster.id, "nginx:1.27", name, priority, requests)


def row(db, deployment_id: int) -> Deployment:
    db.session.expire_all()
    return db.session.get(Deployment, deployment_id)


def turn_on(owner, cluster, **settings) -> clusters.ClusterSnapshot:
    return clusters.update_repack(owner, cluster.id, {"enabled": True, **settings})


# -- settings ------------------------------------------------------------------------------


def test_a_new_cluster_has_repack_off_with_the_configured_defaults(app, owner, cluster):
    snap = clusters.get_cluster(owner.organization_id, cluster.id)
    assert snap.repack == clusters.RepackSettings(False, 200, 6, 60)
    assert snap.repack.describe().startswith("Repack is off")


def test_owners_and_admins_change_the_settings_with_a_history_entry(db, owner, cluster):
    admin = make_user(owner.organization, role="admin")
    snap = clusters.update_repack(
        admin,
        cluster.id,
        {"enabled": "on", "threshold": "1.5", "max_per_hour": "3", "cooldown_minutes": 30},
    )
    assert snap.repack == clusters.RepackSettings(True, 150, 3, 30)
    assert "at least 1.5%, at most 3 moves an hour" in snap.repack.describe()
    entry = db.session.scalars(sa.select(Event).where(Event.action == "cluster.repack_changed"))
    assert [e.data["after"]["threshold_bp"] for e in entry] == [150]
    # Settings not given keep their values.
    snap = clusters.update_repack(owner, cluster.id, {"enabled": False})
    assert snap.repack == clusters.RepackSettings(False, 150, 3, 30)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"threshold": "abc"}, "repack.threshold"),
        ({"threshold": 0}, "repack.threshold"),
        ({"threshold": "100.5"}, "repack.threshold"),
        ({"threshold": "0.005"}, "repack.threshold"),
        ({"threshold": True}, "repack.threshold"),
        ({"max_per_hour": 0}, "repack.max_per_hour"),
        ({"max_per_hour": "1001"}, "repack.max_per_hour"),
        ({"cooldown_minutes": -1}, "repack.cooldown_minutes"),
        ({"cooldown_minutes": "soon"}, "repack.cooldown_minutes"),
        ({"enabled": "maybe"}, "repack.enabled"),
        ({"speed": 2}, "repack.speed"),
    ],
)
def test_bad_settings_are_refused_and_nothing_changes(db, owner, cluster, raw, field):
    with pytest.raises(ValidationError) as caught:
        clusters.update_repack(owner, cluster.id, {"enabled": True, **raw})
    assert field in caught.value.fields
    assert clusters.get_cluster(owner.organization_id, cluster.id).repack.enabled is False


def test_members_cannot_turn_it_on_and_others_see_no_cluster(db, owner, cluster):
    owner.organization.members_can_create_clusters = True  # members may create clusters
    db.session.commit()
    member = make_user(owner.organization, role="member")
    with pytest.raises(Forbidden):
        clusters.update_repack(member, cluster.id, {"enabled": True})
    with pytest.raises(Forbidden):
        clusters.create_cluster(member, "mine", {"cpu": "2"}, None, {"enabled": True})
    with pytest.raises(NotFound):
        clusters.update_repack(make_user(make_org()), cluster.id, {"enabled": True})
    # The member may still create a cluster (repack off).
    assert clusters.create_cluster(member, "plain", {"cpu": "2"}).repack.enabled is False


def test_a_cluster_can_be_created_with_repack_on(db, owner):
    snap = clusters.create_cluster(
        owner, "packed", {"cpu": "8"}, None, {"enabled": True, "threshold": "0.5"}
    )
    assert snap.repack == clusters.RepackSettings(True, 50, 6, 60)


# -- the moves -----------------------------------------------------------------------------


def test_without_repack_equal_priority_work_is_never_moved(db, owner, cluster):
    small = submit(owner, cluster, "small", cpu="3").deployment
    big = submit(owner, cluster, "big", cpu="4")
    assert big.status == "pending" and row(db, small.id).status == "running"


def test_with_repack_a_move_that_is_worth_it_is_made_and_named_in_history(db, owner, cluster):
    """cpu 4: small (3) runs; big (4) arrives at the same priority. Moving small raises
    utilization from 75% to 100% (25 points, above the 2% threshold): small is moved."""
    turn_on(owner, cluster)
    small = submit(owner, cluster, "small", cpu="3").deployment
    big = submit(owner, cluster, "big", cpu="4")
    assert big.status == "running"
    assert [p.id for p in big.repacked] == [small.id]
    assert "repack moved" in big.message
    moved = row(db, small.id)
    assert moved.status == "pending" and moved.preempted_by_id == big.deployment.id
    assert moved.last_event == f"repacked to fit #{big.deployment.id}"
    assert moved.wait["cause"] == "repacked"
    assert moved.reason.startswith(f"repacked to fit deployment #{big.deployment.id}")
    timeline = history.of_subject(owner.organization_id, "deployment", small.id)
    assert timeline[-1].action == "deployment.repacked"
    assert timeline[-1].message.startswith(f"Repacked to fit #{big.deployment.id} big")
    # Deleting big restarts small by itself.
    deployments.delete(owner, big.deployment.id)
    assert row(db, small.id).status == "running"


def test_a_move_below_the_threshold_is_not_made(db, owner, cluster):
    """cpu 4: small (3.9) runs; 4 arrives. Moving gains 2.5 points, below a 5% threshold."""
    turn_on(owner, cluster, threshold="5")
    small = submit(owner, cluster, "small", cpu="3.9").deployment
    big = submit(owner, cluster, "big", cpu="4")
    assert big.status == "pending" and row(db, small.id).status == "running"


def test_the_hourly_budget_and_the_cooldown_hold(db, owner, cluster):
    turn_on(owner, cluster, max_per_hour=1)
    first = submit(owner, cluster, "first", cpu="3").deployment
    second = submit(owner, cluster, "second", cpu="4")  # moves `first`: the hour's one move
    assert second.repacked and second.status == "running"
    deployments.delete(owner, second.deployment.id)  # `first` restarts
    third = submit(owner, cluster, "third", cpu="4")
    assert third.status == "pending" and not third.repacked  # the budget is spent
    assert row(db, first.id).status == "running"

    # An hour later the budget is back, but `first` is still cooling down (60 minutes from
    # its move: move the clock of the history back 61 minutes, then 59).
    def age(minutes: int) -> None:
        for event in db.session.scalars(
            sa.select(Event).where(Event.action == "deployment.repacked")
        ):
            event.at -= timedelta(minutes=minutes)
        db.session.commit()

    clusters.update_repack(owner, cluster.id, {"cooldown_minutes": 120})
    age(61)
    deployments.delete(owner, third.deployment.id)
    fourth = submit(owner, cluster, "fourth", cpu="4")
    assert fourth.status == "pending" and not fourth.repacked  # cooling down (61 < 120)
    age(60)
    deployments.delete(owner, fourth.deployment.id)
    fifth = submit(owner, cluster, "fifth", cpu="4")
    assert [p.id for p in fifth.repacked] == [first.id]


def test_the_dry_run_says_what_the_repack_would_do_and_writes_nothing(db, owner, cluster):
    turn_on(owner, cluster)
    small = submit(owner, cluster, "small", cpu="3").deployment
    preview = deployments.submit(owner, cluster.id, "nginx:1.27", "big", 500, {"cpu": "4"}, True)
    assert preview.status == "running" and [p.id for p in preview.repacked] == [small.id]
    assert "repack would move" in preview.message
    assert row(db, small.id).status == "running"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Deployment)) == 1


# -- pages ---------------------------------------------------------------------------------


def page(client, cluster) -> str:
    return client.get(f"/clusters/{cluster.id}").get_data(as_text=True)


def test_the_cluster_page_shows_the_setting_and_owners_change_it(
    client, login_as, db, owner, cluster
):
    login_as(client, owner)
    assert "Repack is off" in page(client, cluster)
    assert "Save repack settings" in page(client, cluster)
    response = client.post(
        f"/clusters/{cluster.id}/repack",
        data={
            "repack-enabled": "y",
            "repack-threshold": "1.5",
            "repack-max_per_hour": "3",
            "repack-cooldown_minutes": "30",
        },
    )
    assert response.status_code == 302
    shown = page(client, cluster)
    assert "Repack is on" in shown and "at least 1.5%" in shown
    # Bad input: said in words, nothing changed.
    response = client.post(
        f"/clusters/{cluster.id}/repack",
        data={"repack-enabled": "y", "repack-threshold": "abc", "repack-max_per_hour": "0"},
        follow_redirects=True,
    )
    text = response.get_data(as_text=True)
    assert "The minimum gain per move must be a percent" in text
    assert "Moves per hour must be a whole number from 1 to 1,000" in text
    assert db.session.get(Cluster, cluster.id).repack_threshold_bp == 150


def test_members_see_the_setting_but_cannot_change_it(client, login_as, db, owner, cluster):
    member = make_user(owner.organization, role="member")
    login_as(client, member)
    shown = page(client, cluster)
    assert "Repack is off" in shown and "Save repack settings" not in shown
    response = client.post(f"/clusters/{cluster.id}/repack", data={"repack-enabled": "y"})
    assert response.status_code == 403
    assert db.session.get(Cluster, cluster.id).repack_enabled is False


def test_the_create_form_offers_repack_to_owners(client, login_as, db, owner):
    login_as(client, owner)
    assert "Moves per hour" in client.get("/clusters/new").get_data(as_text=True)
    response = client.post(
        "/clusters/new",
        data={
            "name": "packed",
            "cpu": "8",
            "max_deployments": "10",
            "repack-enabled": "y",
            "repack-threshold": "2",
            "repack-max_per_hour": "4",
            "repack-cooldown_minutes": "15",
        },
    )
    assert response.status_code == 302
    created = db.session.scalar(sa.select(Cluster).where(Cluster.name == "packed"))
    assert (created.repack_enabled, created.repack_max_per_hour) == (True, 4)
    response = client.post(
        "/clusters/new",
        data={"name": "bad", "cpu": "8", "repack-enabled": "y", "repack-cooldown_minutes": "x"},
    )
    assert response.status_code == 422
    assert "must be a whole number from 0 to 10,080" in response.get_data(as_text=True).lower()
