"""Changing a deployment's priority, cloning it, and planning a submission, through the service.

A priority change is a scheduling event: after each one the database must satisfy rules 1-3
(`assert_cluster_consistent`) and the transition rules 4-5 (`scheduler.transition_violations`,
given the running set before and after and the preemptions). Amounts are base units.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app import scheduler
from app.extensions import db
from app.models import Deployment, Event
from app.services import deployments
from app.services.errors import Forbidden, Infeasible, NotFound, ValidationError
from tests.deployments.invariants import assert_cluster_consistent, jobs_of
from tests.factories import make_cluster, make_org, make_user


@pytest.fixture
def owner(app):
    return make_user(role="owner")


@pytest.fixture
def cluster(owner):
    return make_cluster(owner.organization, resources={"cpu": 4000, "gpu": 2, "ram": 8192})


def submit(user, cluster, name, priority=100, **requests):
    return deployments.submit(user, cluster.id, "nginx:1.27", name, priority, requests).deployment


def row(db, deployment_id: int) -> Deployment:
    db.session.expire_all()
    return db.session.get(Deployment, deployment_id)


def events(db, deployment_id: int, action: str) -> list[Event]:
    return db.session.scalars(
        sa.select(Event)
        .where(Event.subject_id == deployment_id, Event.action == action)
        .order_by(Event.id)
    ).all()


def change_checked(user, cluster_id: int, deployment_id: int, priority):
    """Change a priority and check rules 1-5 across the change, from the database."""
    capacity, running_before, _ = jobs_of(cluster_id)
    change = deployments.change_priority(user, deployment_id, priority)
    # The transition is judged with the new priority, as the scheduler saw it.
    before = [
        scheduler.Job(
            job.id, change.priority if job.id == deployment_id else job.priority, job.requests, 0
        )
        for job in running_before
    ]
    _, running_after, _ = jobs_of(cluster_id)
    # Who sent each stopped deployment back, as stored: the change may start another waiting
    # deployment that preempts work besides the changed one (lowered, it makes room for it).
    still = {job.id for job in running_after}
    stopped = [job.id for job in running_before if job.id not in still]
    preempted = dict(
        db.session.execute(
            sa.select(Deployment.id, Deployment.preempted_by_id).where(
                Deployment.id.in_(stopped), Deployment.preempted_by_id.is_not(None)
            )
        ).all()
    )
    # What the change reports agrees with it.
    assert {victim.id for victim in change.preempted} == {
        victim for victim, by in preempted.items() if by == deployment_id
    }
    assert change.preempted_by == preempted.get(deployment_id)
    assert (
        scheduler.transition_violations(before, running_after, preempted, None, capacity=capacity)
        == []
    )
    assert_cluster_consistent(cluster_id)
    return change


# -- priority ------------------------------------------------------------------------------


def test_raising_a_waiting_deployment_preempts_lower_priorities(db, owner, cluster):
    low = submit(owner, cluster, "low", 100, cpu=3)
    waiting = submit(owner, cluster, "waiting", 100, cpu=2)
    assert waiting.status == "pending"
    change = change_checked(owner, cluster.id, waiting.id, "high")
    assert (change.previous, change.priority) == (100, 800)
    assert change.status == "running" and change.starts
    assert [victim.id for victim in change.preempted] == [low.id]
    assert change.message.startswith("waiting went from priority low (100) to high (800)")
    assert "it preempted #" in change.message
    preempted = row(db, low.id)
    assert preempted.status == "pending" and preempted.preempted_by_id == waiting.id
    assert preempted.preemptions == 1


def test_lowering_a_running_deployment_lets_a_waiting_one_preempt_it(db, owner, cluster):
    top = submit(owner, cluster, "top", 900, cpu=3)
    middle = submit(owner, cluster, "middle", 500, cpu=2)
    assert middle.status == "pending"
    change = change_checked(owner, cluster.id, top.id, "low")
    assert change.status == "pending" and change.preempted_by == middle.id
    assert change.position == 1 and "preempted by deployment #" in change.reason
    assert f"deployment #{middle.id} preempted it" in change.message
    assert row(db, middle.id).status == "running"
    assert row(db, top.id).preemptions == 1


def test_a_change_that_moves_nothing_keeps_it_running(db, owner, cluster):
    web = submit(owner, cluster, "web", 500, cpu=1)
    change = change_checked(owner, cluster.id, web.id, 1000)
    assert change.status == "running" and not change.preempted and not change.started
    assert change.message.endswith("; it keeps running.")
    assert row(db, web.id).priority == 1000


def test_a_waiting_deployment_takes_its_new_place_and_keeps_its_submission_time(db, owner, cluster):
    submit(owner, cluster, "big", 900, cpu=4)
    first = submit(owner, cluster, "first", 100, cpu=1)
    second = submit(owner, cluster, "second", 500, cpu=1)
    third = submit(owner, cluster, "third", 500, cpu=1)
    assert [row(db, d.id).queue_position for d in (second, third, first)] == [1, 2, 3]
    submitted_at = row(db, first.id).submitted_at
    change = change_checked(owner, cluster.id, first.id, 500)
    # Equal priorities wait in submission order: the oldest is now first.
    assert change.status == "pending" and change.position == 1
    assert [row(db, d.id).queue_position for d in (first, second, third)] == [1, 2, 3]
    kept = row(db, first.id)
    assert kept.id == first.id and kept.submitted_at == submitted_at and kept.name == "first"


def test_the_history_records_who_changed_it_from_what_to_what(db, owner, cluster):
    web = submit(owner, cluster, "web", 100, cpu=1)
    deployments.change_priority(owner, web.id, "critical")
    (entry,) = events(db, web.id, "deployment.reprioritized")
    assert entry.message == (
        f"Re-prioritized from low (100) to critical (1000) by {owner.display_name}."
    )
    assert entry.data == {"from": 100, "to": 1000}
    assert entry.actor_id == owner.id and entry.cluster_id == cluster.id
    timeline = [e.action for e in deployments.timeline(owner, web.id)]
    assert timeline[:3] == [
        "deployment.submitted",
        "deployment.started",
        "deployment.reprioritized",
    ]


def test_the_same_priority_changes_and_records_nothing(db, owner, cluster):
    web = submit(owner, cluster, "web", 500, cpu=1)
    change = deployments.change_priority(owner, web.id, "normal")
    assert change.previous == change.priority == 500
    assert change.message == "web already has priority normal (500)."
    assert events(db, web.id, "deployment.reprioritized") == []


def test_a_dry_run_says_what_would_happen_and_writes_nothing(db, owner, cluster):
    low = submit(owner, cluster, "low", 100, cpu=3)
    waiting = submit(owner, cluster, "waiting", 100, cpu=2)
    plan = deployments.change_priority(owner, waiting.id, 800, dry_run=True)
    assert plan.dry_run and plan.status == "running" and plan.starts
    assert [victim.id for victim in plan.preempted] == [low.id]
    assert plan.message.startswith("Changing waiting from priority low (100) to high (800) would")
    assert row(db, waiting.id).priority == 100 and row(db, low.id).status == "running"
    assert events(db, waiting.id, "deployment.reprioritized") == []
    done = deployments.change_priority(owner, waiting.id, 800)
    assert (done.status, [v.id for v in done.preempted]) == (plan.status, [low.id])


@pytest.mark.parametrize(
    ("role", "own", "allowed"),
    [
        ("member", True, True),
        ("member", False, False),
        ("admin", False, True),
        ("owner", False, True),
    ],
)
def test_who_may_change_a_priority(db, owner, cluster, role, own, allowed):
    actor = make_user(owner.organization, role=role)
    web = submit(actor if own else owner, cluster, "web", 100, cpu=1)
    if allowed:
        assert deployments.change_priority(actor, web.id, 200).priority == 200
    else:
        with pytest.raises(Forbidden):
            deployments.change_priority(actor, web.id, 200)
        assert row(db, web.id).priority == 100


def test_another_organizations_deployment_is_not_found(db, owner, cluster):
    web = submit(owner, cluster, "web", 100, cpu=1)
    stranger = make_user(make_org())
    with pytest.raises(NotFound):
        deployments.change_priority(stranger, web.id, 200)
    with pytest.raises(NotFound):
        deployments.change_priority(owner, 10**12, 200)


@pytest.mark.parametrize("priority", [None, -1, 1001, "urgent", 2.5, True, [1]])
def test_a_bad_priority_is_refused_and_nothing_changes(db, owner, cluster, priority):
    web = submit(owner, cluster, "web", 100, cpu=1)
    with pytest.raises(ValidationError) as caught:
        deployments.change_priority(owner, web.id, priority)
    assert set(caught.value.fields) == {"priority"}
    assert row(db, web.id).priority == 100


change_step = st.tuples(
    st.just("priority"), st.integers(0, 50), st.sampled_from([0, 100, 500, 800, 1000])
)
submit_step = st.tuples(
    st.just("submit"), st.integers(1, 6), st.sampled_from([0, 100, 500, 800, 1000])
)
delete_step = st.tuples(st.just("delete"), st.integers(0, 50), st.just(0))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    cpu=st.integers(2, 8),
    steps=st.lists(st.one_of(submit_step, submit_step, change_step, delete_step), max_size=14),
)
# Lowering #3 lets #6 (2 cpu, priority 100) preempt it and #1 as well: #1's preemptor is #6,
# which the change's own report (victims of the changed deployment) does not list.
@example(
    cpu=2,
    steps=[
        ("submit", 1, 0),
        ("submit", 1, 0),
        ("submit", 1, 100),
        ("submit", 1, 0),
        ("submit", 1, 0),
        ("submit", 2, 100),
        ("priority", 20, 0),
    ],
)
def test_random_priority_changes_keep_every_rule(app, cpu, steps):
    owner = make_user(make_org())
    cluster = make_cluster(owner.organization, resources={"cpu": cpu * 1000})
    alive: list[int] = []
    for number, (action, value, priority) in enumerate(steps):
        if action == "submit":
            wanted = {"cpu": min(value, cpu)}
            alive.append(submit(owner, cluster, f"d{number}", priority, **wanted).id)
        elif action == "priority" and alive:
            change_checked(owner, cluster.id, alive[value % len(alive)], priority)
        elif action == "delete" and alive:
            deployments.delete(owner, alive.pop(value % len(alive)))
        assert_cluster_consistent(cluster.id)


# -- clone ---------------------------------------------------------------------------------


def test_a_clone_copies_image_priority_and_requests(db, owner, cluster):
    source = deployments.submit(
        owner,
        cluster.id,
        "registry.example.com/team/api:2.1",
        "api",
        "high",
        {"cpu": "1.5", "ram": "0.3", "gpu": 1},
    ).deployment
    member = make_user(owner.organization, role="member")
    copy = deployments.clone(member, source.id).deployment
    assert copy.id > source.id and copy.name != "api" and copy.name.startswith("api-")
    assert (copy.image, copy.priority, copy.cluster_id) == (source.image, 800, cluster.id)
    assert copy.requests == source.requests == {"cpu": 1500, "ram": 307, "gpu": 1}
    assert copy.created_by_id == member.id
    (entry,) = events(db, copy.id, "deployment.submitted")
    assert entry.data["cloned_from"] == source.id
    assert f"as a copy of #{source.id}" in entry.message
    assert_cluster_consistent(cluster.id)


def test_a_clone_takes_overrides_and_merges_requests(db, owner, cluster):
    other = make_cluster(owner.organization, resources={"cpu": 8000, "ram": 4096})
    source = submit(owner, cluster, "web", 100, cpu=1, gpu=1)
    copy = deployments.clone(
        owner,
        source.id,
        cluster_id=other.id,
        image="nginx:1.28",
        name="web",
        priority=900,
        requests_raw={"cpu": "2", "gpu": None, "ram": "512Mi"},
    ).deployment
    assert (copy.cluster_id, copy.image, copy.name, copy.priority) == (
        other.id,
        "nginx:1.28",
        "web",
        900,
    )
    assert copy.requests == {"cpu": 2000, "ram": 512}
    assert_cluster_consistent(other.id)


def test_a_clone_follows_every_submission_rule(db, owner, cluster):
    source = submit(owner, cluster, "web", 100, gpu=2)
    small = make_cluster(owner.organization, resources={"cpu": 1000})
    with pytest.raises(Infeasible):
        deployments.clone(owner, source.id, cluster_id=small.id)
    with pytest.raises(ValidationError) as caught:
        deployments.clone(owner, source.id, name="web")
    assert set(caught.value.fields) == {"name"}
    with pytest.raises(ValidationError):
        deployments.clone(owner, source.id, requests_raw=["cpu"])
    with pytest.raises(NotFound):
        deployments.clone(make_user(make_org()), source.id)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Deployment)) == 1


def test_clone_defaults_read_back_to_the_same_requests(db, owner, cluster):
    source = deployments.submit(
        owner, cluster.id, "nginx", "odd", 100, {"cpu": "0.123", "ram": "1000Mi"}
    ).deployment
    defaults = deployments.clone_defaults(owner, source.id)
    assert defaults.requests == {"cpu": "0.123", "ram": "0.977"}
    assert (defaults.cluster_id, defaults.image, defaults.priority) == (cluster.id, "nginx", 100)
    assert deployments.clone(owner, source.id).deployment.requests == {"cpu": 123, "ram": 1000}


# -- plan (a dry run of a submission) ------------------------------------------------------


def test_a_plan_names_what_starts_waits_and_is_preempted(db, owner, cluster):
    low = submit(owner, cluster, "low", 100, cpu=3)
    other = submit(owner, cluster, "other", 100, cpu=1)
    plan = deployments.submit(owner, cluster.id, "nginx", "urgent", 900, {"cpu": 2}, dry_run=True)
    assert plan.dry_run and plan.status == "running"
    assert [line.id for line in plan.started] == [None]
    assert [victim.id for victim in plan.preempted] == [low.id]
    (waits,) = plan.waiting
    assert (waits.id, waits.name, waits.position) == (low.id, "low", 1)
    assert waits.reason.startswith("preempted by the planned urgent (priority 900); restarts")
    assert plan.queue_length == 1 and plan.priority == 900 and plan.requests == {"cpu": 2000}
    assert row(db, low.id).status == "running" and row(db, other.id).status == "running"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Deployment)) == 2


def test_a_plan_of_a_waiting_deployment_gives_its_place(db, owner, cluster):
    submit(owner, cluster, "big", 900, cpu=4)
    submit(owner, cluster, "queued", 100, cpu=1)
    plan = deployments.submit(owner, cluster.id, "nginx", "next", 500, {"cpu": 1}, dry_run=True)
    assert plan.status == "pending" and plan.position == 1 and not plan.started
    assert [(line.id, line.position) for line in plan.waiting] == [(None, 1)]
    assert plan.queue_length == 2
