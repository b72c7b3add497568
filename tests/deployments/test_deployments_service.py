"""The deployments service through the real database: every rule of submission and deletion.

Amounts in assertions are base units: cpu millicores, ram MiB, gpu whole units.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.models import ClusterResource, Deployment
from app.services import deployments
from app.services.errors import Forbidden, Infeasible, NotFound, QuotaExceeded, ValidationError
from tests.deployments.invariants import assert_cluster_consistent
from tests.factories import make_cluster, make_org, make_user


def usage(db, cluster_id: int) -> dict[str, int]:
    db.session.expire_all()
    return dict(
        db.session.execute(
            sa.select(ClusterResource.kind, ClusterResource.used).where(
                ClusterResource.cluster_id == cluster_id
            )
        ).all()
    )


def row(db, deployment_id: int) -> Deployment:
    db.session.expire_all()
    return db.session.get(Deployment, deployment_id)


def deployment_count(db) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Deployment))


@pytest.fixture
def owner(app):
    return make_user(role="owner")


@pytest.fixture
def cluster(owner):
    return make_cluster(owner.organization, resources={"cpu": 4000, "gpu": 2, "ram": 8192})


def submit(user, cluster, name=None, priority=100, image="nginx:1.27", **requests):
    return deployments.submit(user, cluster.id, image, name, priority, requests)


# -- submission ----------------------------------------------------------------------------


def test_a_deployment_that_fits_runs_and_reserves_its_requests(db, owner, cluster):
    result = submit(owner, cluster, "web", cpu="1.5", ram="512Mi")
    assert result.status == "running" and result.position is None and not result.preempted
    view = result.deployment
    assert view.name == "web" and view.requests == {"cpu": 1500, "ram": 512}
    assert view.started_at is not None and view.last_event == "started"
    assert view.created_by_id == owner.id and view.cluster_name == cluster.name
    assert usage(db, cluster.id) == {"cpu": 1500, "gpu": 0, "ram": 512}
    assert result.message == "web is running."
    assert_cluster_consistent(cluster.id)


def test_without_room_it_waits_with_a_position_and_a_reason(db, owner, cluster):
    submit(owner, cluster, "big", priority=500, cpu=4)
    first = submit(owner, cluster, "first", priority=500, cpu=2)
    second = submit(owner, cluster, "second", priority=500, gpu=1, cpu=1)
    assert first.status == "pending" and first.position == 1
    assert (
        first.reason
        == "needs 2 cpu cores: 0 cores free, 4 cores held by deployments of priority 500 "
        "or higher"
    )
    big = deployments.list_deployments(owner, cluster.id, "running").items[0]
    assert first.deployment.wait == {
        "cause": "blocked",
        "kind": "cpu",
        "needed": 2000,
        "free": 0,
        "held": 4000,
        "priority": 500,
        "blocking_ids": [big.id],
        "blocking_more": 0,
        "preempted_by": None,
        "preemptor_priority": None,
        "message": None,
    }
    assert second.position == 2
    assert "waiting at position 1" in first.message
    assert row(db, first.deployment.id).started_at is None
    assert usage(db, cluster.id)["cpu"] == 4000
    assert_cluster_consistent(cluster.id)


def test_a_higher_priority_submission_jumps_ahead_in_the_queue(db, owner, cluster):
    submit(owner, cluster, "big", priority=900, cpu=4)
    low = submit(owner, cluster, "low", priority=100, cpu=1)
    high = submit(owner, cluster, "high", priority=500, cpu=1)
    assert high.position == 1
    assert row(db, low.deployment.id).queue_position == 2
    assert_cluster_consistent(cluster.id)


def test_worked_example_preemption_with_reprieve(db, owner, cluster):
    """SCHEDULING.md: A and B (priority 100) run; C (500) preempts only B; deleting C restarts B."""
    member = make_user(owner.organization, role="member", display_name="Bea")
    a = submit(owner, cluster, "a", priority=100, cpu=2, gpu=1).deployment
    b = submit(member, cluster, "b", priority=100, cpu=2, gpu=1).deployment
    c = submit(owner, cluster, "c", priority=500, cpu=1, gpu=1)

    assert c.status == "running"
    assert c.preempted == [deployments.Preempted(b.id, "b", 100, "Bea")]
    assert f"It preempted #{b.id} b (priority 100, owned by Bea)" in c.message
    victim = row(db, b.id)
    assert victim.status == "pending" and victim.queue_position == 1
    assert victim.reason.startswith(f"preempted by deployment #{c.deployment.id} (priority 500)")
    assert victim.wait["cause"] == "preempted"
    assert victim.wait["preempted_by"] == c.deployment.id
    assert victim.wait["preemptor_priority"] == 500
    assert victim.preemptions == 1 and victim.preempted_by_id == c.deployment.id
    assert victim.submitted_at == b.submitted_at
    assert victim.last_event == f"preempted by deployment #{c.deployment.id} (priority 500)"
    assert victim.preemption_notice == (
        f"Your deployment b was preempted by deployment #{c.deployment.id} (priority 500); "
        "it is queued again and will restart by itself."
    )
    assert row(db, a.id).status == "running" and row(db, a.id).wait is None
    assert usage(db, cluster.id) == {"cpu": 3000, "gpu": 2, "ram": 0}
    assert_cluster_consistent(cluster.id)

    deployments.delete(owner, c.deployment.id)
    restarted = row(db, b.id)
    assert restarted.status == "running" and restarted.queue_position is None
    assert restarted.preemptions == 1 and restarted.submitted_at == b.submitted_at
    assert restarted.last_event == "restarted when room returned"
    assert usage(db, cluster.id) == {"cpu": 4000, "gpu": 2, "ram": 0}
    assert_cluster_consistent(cluster.id)


def test_equal_priority_never_preempts(db, owner, cluster):
    submit(owner, cluster, "one", priority=500, cpu=4)
    second = submit(owner, cluster, "two", priority=500, cpu=4)
    assert second.status == "pending" and not second.preempted
    assert_cluster_consistent(cluster.id)


@pytest.mark.parametrize(
    ("requests", "field", "message"),
    [
        ({"gpu": 3}, "resource.gpu", "needs 3 gpu but the cluster has only 2 gpu in total"),
        ({"tpu": 1}, "resource.tpu", "this cluster has no tpu"),
        ({}, "resource", "requests nothing"),
    ],
)
def test_a_request_that_could_never_run_is_rejected(db, owner, cluster, requests, field, message):
    with pytest.raises(Infeasible) as caught:
        deployments.submit(owner, cluster.id, "nginx", "x", 500, requests)
    assert message in caught.value.fields[field]
    assert message in caught.value.message
    assert caught.value.status == 422
    assert deployment_count(db) == 0
    assert usage(db, cluster.id) == {"cpu": 0, "gpu": 0, "ram": 0}


@pytest.mark.parametrize(
    ("requests", "field"),
    [
        ({"cpu": "abc"}, "resource.cpu"),
        ({"cpu": "-1"}, "resource.cpu"),
        ({"cpu": "0"}, "resource.cpu"),
        ({"ram": "2Xi"}, "resource.ram"),
        ({"gpu": "0.5"}, "resource.gpu"),
        ({"Bad Kind": "1"}, "resource.Bad Kind"),
    ],
)
def test_bad_quantities_are_field_errors(db, owner, cluster, requests, field):
    with pytest.raises(ValidationError) as caught:
        deployments.submit(owner, cluster.id, "nginx", "x", 500, requests)
    assert field in caught.value.fields
    assert deployment_count(db) == 0


def test_quantities_accept_padding_units_and_numbers(db, owner, cluster):
    result = deployments.submit(
        owner, cluster.id, "nginx", "x", 500, {"cpu": " 500m", "ram": 1.5, "gpu": " 1"}
    )
    assert result.deployment.requests == {"cpu": 500, "ram": 1536, "gpu": 1}


def test_the_cluster_maximum_is_enforced_and_nothing_is_written(db, owner):
    small = make_cluster(owner.organization, resources={"cpu": 1000}, max_deployments=2)
    submit(owner, small, "one", cpu=1)
    submit(owner, small, "two", cpu=1)  # queued: running plus pending count
    with pytest.raises(QuotaExceeded, match="maximum of 2 deployments"):
        submit(owner, small, "three", cpu="0.1")
    assert deployment_count(db) == 2
    assert_cluster_consistent(small.id)


def test_the_organization_quota_counts_across_clusters(db):
    org = make_org(deployment_quota=2)
    owner = make_user(org)
    first, second = make_cluster(org), make_cluster(org)
    submit(owner, first, "one", cpu=1)
    submit(owner, second, "two", cpu=1)
    with pytest.raises(QuotaExceeded, match="quota of 2 deployments"):
        submit(owner, second, "three", cpu=1)
    with pytest.raises(QuotaExceeded):
        deployments.submit(owner, first.id, "nginx", None, 500, {"cpu": 1}, dry_run=True)
    assert deployment_count(db) == 2
    assert usage(db, second.id)["cpu"] == 1000


def test_another_organizations_cluster_is_not_found(db, owner):
    stranger = make_user(role="owner")
    theirs = make_cluster(stranger.organization)
    with pytest.raises(NotFound):
        submit(owner, theirs, "x", cpu=1)
    with pytest.raises(NotFound):
        deployments.submit(owner, theirs.id, "nginx", "x", 1, {"cpu": 1}, dry_run=True)
    with pytest.raises(NotFound):
        deployments.submit(owner, 999_999, "nginx", "x", 1, {"cpu": 1})
    assert deployment_count(db) == 0


# -- validation ----------------------------------------------------------------------------

GOOD_IMAGES = [
    "nginx",
    "nginx:1.27",
    "library/nginx:latest",
    "ghcr.io/acme/web-app:v1.2.3",
    "localhost/app",
    "localhost:5000/team/app:dev",
    "registry.example.com:8443/a/b/c",
    "my_app__worker.v2",
    "a--b",
    "app:_tag",
    "nginx@sha256:" + "a" * 64,
    "nginx:1.27@sha256:" + "0123456789abcdef" * 4,
    "Registry.Example.COM/app",
    "x" * 255,
    "app:" + "t" * 128,
]

BAD_IMAGES = [
    ("", "image is required"),
    ("Nginx", "image must be lowercase"),
    ("acme/WebApp", "image must be lowercase"),
    ("nginx:" + "t" * 129, "tag is longer than 128 characters"),
    ("nginx:", "tag is empty"),
    ("nginx:-bad", "tag must start with"),
    ("nginx:a/b", "registry port"),
    ("nginx@sha256:abc", "digest must be sha256"),
    ("nginx@md5:" + "a" * 64, "digest must be sha256"),
    ("nginx@sha256:" + "A" * 64, "digest must be sha256"),
    ("ng inx", "must not contain spaces"),
    ("acme//web", "empty path component"),
    ("/nginx", "empty path component"),
    ("nginx/", "empty path component"),
    ("-nginx", "not a valid path component"),
    ("nginx-", "not a valid path component"),
    ("a...b", "not a valid path component"),
    ("a___b", "not a valid path component"),
    ("localhost:99999/app", "registry port"),
    ("bad_host.com/app", "not a valid registry host"),
    ("x" * 256, "at most 255 characters"),
    ("caf\u00e9", "ASCII"),
    (":tag", "needs a repository name"),
]


@pytest.mark.parametrize("image", GOOD_IMAGES)
def test_good_image_references(image):
    assert deployments.image_problem(image) is None


@pytest.mark.parametrize(("image", "problem"), BAD_IMAGES)
def test_bad_image_references_say_why(image, problem):
    assert problem in (deployments.image_problem(image) or "")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("web-1", None),
        ("a", None),
        ("a" * 63, None),
        ("a" * 64, "at most 63"),
        ("Web", "lowercase"),
        ("-web", "start and end"),
        ("web-", "start and end"),
        ("web_1", "only lowercase letters"),
        ("web.1", "only lowercase letters"),
    ],
)
def test_names_are_dns_labels(name, problem):
    found = deployments.name_problem(name)
    assert (found is None) if problem is None else (problem in found)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, 500),
        ("", 500),
        (0, 0),
        (1000, 1000),
        ("750", 750),
        (" high ", 800),
        ("LOW", 100),
        ("critical", 1000),
        ("normal", 500),
    ],
)
def test_priorities_accept_numbers_and_presets(given, expected):
    assert deployments.parse_priority(given) == expected


@pytest.mark.parametrize("given", [-1, 1001, "1001", "urgent", 2.5, True, "1e3", [1]])
def test_bad_priorities_are_refused(db, owner, cluster, given):
    with pytest.raises(ValidationError) as caught:
        deployments.submit(owner, cluster.id, "nginx", "x", given, {"cpu": 1})
    assert "priority" in caught.value.fields
    assert deployment_count(db) == 0


def test_every_field_problem_is_reported_at_once(db, owner, cluster):
    with pytest.raises(ValidationError) as caught:
        deployments.submit(owner, cluster.id, "Bad Image", "Bad_Name", 5000, {"cpu": "x"})
    assert set(caught.value.fields) == {"image", "name", "priority", "resource.cpu"}
    assert "3 more problems" in caught.value.message


@pytest.mark.parametrize(
    ("image", "name", "requests"),
    [
        (None, "x", {"cpu": 1}),
        (42, "x", {"cpu": 1}),
        ("nginx", 7, {"cpu": 1}),
        ("nginx", "x", ["cpu"]),
        ("nginx", "x", "cpu=1"),
    ],
)
def test_wrong_types_are_validation_errors(db, owner, cluster, image, name, requests):
    with pytest.raises(ValidationError):
        deployments.submit(owner, cluster.id, image, name, 500, requests)
    assert deployment_count(db) == 0


def test_names_are_unique_within_a_cluster_only(db, owner, cluster):
    submit(owner, cluster, "web", cpu=1)
    with pytest.raises(ValidationError) as caught:
        submit(owner, cluster, "web", cpu=1)
    assert "already exists" in caught.value.fields["name"]
    other = make_cluster(owner.organization)
    assert submit(owner, other, "web", cpu=1).status == "running"


def test_a_missing_name_is_generated_from_the_image(db, owner, cluster):
    first = deployments.submit(
        owner, cluster.id, "ghcr.io/acme/Web_App".lower(), None, 1, {"cpu": 1}
    )
    second = deployments.submit(owner, cluster.id, "ghcr.io/acme/web_app:2", " ", 1, {"cpu": 1})
    for result in (first, second):
        assert result.name.startswith("web-app-") and len(result.name) == len("web-app-") + 4
        assert deployments.name_problem(result.name) is None
    assert first.name != second.name


# -- dry run -------------------------------------------------------------------------------


def test_a_dry_run_says_what_would_happen_and_writes_nothing(db, owner, cluster):
    low = submit(owner, cluster, "low", priority=100, cpu=4).deployment
    before = usage(db, cluster.id)

    preview = deployments.submit(owner, cluster.id, "nginx", "hi", 900, {"cpu": 1}, dry_run=True)
    assert preview.dry_run and preview.status == "running"
    assert [p.id for p in preview.preempted] == [low.id]
    assert preview.message.startswith("Would start now. Would preempt #")

    waiting = deployments.submit(owner, cluster.id, "nginx", "lo", 100, {"cpu": 1}, dry_run=True)
    assert waiting.status == "pending" and waiting.position == 1
    assert waiting.message.startswith("Would wait at position 1: needs 1 cpu core")

    fits = deployments.submit(owner, cluster.id, "nginx", None, 100, {"gpu": 1}, dry_run=True)
    assert fits.message == "Would start now."
    assert deployment_count(db) == 1
    assert usage(db, cluster.id) == before
    assert row(db, low.id).status == "running" and row(db, low.id).preemptions == 0


def test_a_dry_run_reports_the_same_errors(db, owner, cluster):
    with pytest.raises(Infeasible):
        deployments.submit(owner, cluster.id, "nginx", None, 1, {"gpu": 9}, dry_run=True)
    with pytest.raises(ValidationError):
        deployments.submit(owner, cluster.id, "NGINX", None, 1, {"gpu": 1}, dry_run=True)


# -- deletion ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "own", "allowed"),
    [
        ("member", True, True),
        ("member", False, False),
        ("admin", False, True),
        ("owner", False, True),
    ],
)
def test_who_may_delete_a_deployment(db, owner, cluster, role, own, allowed):
    actor = make_user(owner.organization, role=role)
    creator = actor if own else make_user(owner.organization, role="member")
    target = submit(creator, cluster, "web", cpu=1).deployment
    if allowed:
        assert deployments.delete(actor, target.id).name == "web"
        assert deployment_count(db) == 0
        assert usage(db, cluster.id)["cpu"] == 0
    else:
        with pytest.raises(Forbidden):
            deployments.delete(actor, target.id)
        assert deployment_count(db) == 1
        assert usage(db, cluster.id)["cpu"] == 1000


def test_deleting_another_organizations_deployment_is_not_found(db, owner, cluster):
    target = submit(owner, cluster, "web", cpu=1).deployment
    stranger = make_user(role="owner")
    for action in (deployments.delete, deployments.get):
        with pytest.raises(NotFound):
            action(stranger, target.id)
    with pytest.raises(NotFound):
        deployments.delete_all(stranger, cluster.id)
    with pytest.raises(NotFound):
        deployments.delete(owner, 123_456)
    assert deployment_count(db) == 1


def test_deleting_a_running_deployment_starts_the_queue(db, owner, cluster):
    first = submit(owner, cluster, "first", priority=500, cpu=4).deployment
    waiting = submit(owner, cluster, "waiting", priority=100, cpu=3).deployment
    behind = submit(owner, cluster, "behind", priority=100, cpu=3).deployment
    assert row(db, behind.id).queue_position == 2
    deployments.delete(owner, first.id)
    assert row(db, waiting.id).status == "running"
    assert row(db, behind.id).queue_position == 1
    assert_cluster_consistent(cluster.id)


def test_deleting_a_pending_deployment_renumbers_the_queue(db, owner, cluster):
    submit(owner, cluster, "big", cpu=4)
    one = submit(owner, cluster, "one", cpu=1).deployment
    two = submit(owner, cluster, "two", cpu=1).deployment
    deployments.delete(owner, one.id)
    assert row(db, two.id).queue_position == 1
    assert_cluster_consistent(cluster.id)


def test_delete_all_needs_an_owner_or_admin(db, owner, cluster):
    member = make_user(owner.organization, role="member")
    submit(member, cluster, "one", cpu=3)
    submit(member, cluster, "two", cpu=3)
    with pytest.raises(Forbidden):
        deployments.delete_all(member, cluster.id)
    assert deployment_count(db) == 2
    admin = make_user(owner.organization, role="admin")
    assert deployments.delete_all(admin, cluster.id) == 2
    assert deployment_count(db) == 0
    assert usage(db, cluster.id) == {"cpu": 0, "gpu": 0, "ram": 0}
    assert deployments.delete_all(admin, cluster.id) == 0


def test_delete_all_leaves_other_clusters_alone(db, owner, cluster):
    other = make_cluster(owner.organization)
    submit(owner, cluster, "one", cpu=1)
    kept = submit(owner, other, "two", cpu=1).deployment
    assert deployments.delete_all(owner, cluster.id) == 1
    assert row(db, kept.id) is not None
    assert usage(db, other.id)["cpu"] == 1000


# -- reading -------------------------------------------------------------------------------


def test_the_list_shows_running_first_then_the_queue_in_order(db, owner, cluster):
    other = make_cluster(owner.organization, name="zeta")
    submit(owner, cluster, "big", priority=100, cpu=4)
    submit(owner, cluster, "later", priority=100, cpu=1)
    submit(owner, cluster, "urgent", priority=900, gpu=2, cpu=1)  # preempts big; later starts
    submit(owner, cluster, "last", priority=50, cpu=4)
    submit(owner, other, "elsewhere", cpu=1)
    page = deployments.list_deployments(owner)
    assert [(v.name, v.status) for v in page.items] == [
        ("urgent", "running"),
        ("later", "running"),
        ("elsewhere", "running"),
        ("big", "pending"),
        ("last", "pending"),
    ]
    assert page.items[2].cluster_name == "zeta" and page.items[0].cluster_name == cluster.name
    only = deployments.list_deployments(owner, cluster_id=cluster.id, status="pending")
    assert [v.name for v in only.items] == ["big", "last"] and only.total == 2
    paged = deployments.list_deployments(owner, page=2, per_page=3)
    assert [v.name for v in paged.items] == ["big", "last"] and paged.pages == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"status": "done"}, "status"),
        ({"page": 0}, "page"),
        ({"per_page": 0}, "per_page"),
        ({"per_page": 101}, "per_page"),
    ],
)
def test_bad_list_filters_are_validation_errors(db, owner, kwargs, field):
    with pytest.raises(ValidationError) as caught:
        deployments.list_deployments(owner, **kwargs)
    assert field in caught.value.fields


def test_the_list_refuses_another_organizations_cluster(db, owner):
    theirs = make_cluster(make_org())
    with pytest.raises(NotFound):
        deployments.list_deployments(owner, cluster_id=theirs.id)


def test_notices_are_given_once_to_the_creator(db, owner, cluster):
    member = make_user(owner.organization, role="member")
    victim = submit(member, cluster, "victim", priority=100, cpu=4).deployment
    preemptor = submit(owner, cluster, "boss", priority=900, cpu=4).deployment
    assert deployments.pop_notices(owner) == []
    assert deployments.pop_notices(member) == [
        f"Your deployment victim was preempted by deployment #{preemptor.id} (priority 900); "
        "it is queued again and will restart by itself."
    ]
    assert deployments.pop_notices(member) == []
    assert row(db, victim.id).preemption_notice is None


def test_delete_cluster_refuses_a_cluster_with_deployments(db, owner, cluster):
    from app.services.errors import Conflict

    submit(owner, cluster, "web", cpu=1)
    with pytest.raises(Conflict, match="1 running and 0 pending"):
        deployments.delete_cluster(owner, cluster.id)
    deployments.delete_all(owner, cluster.id)
    deployments.delete_cluster(owner, cluster.id)
    with pytest.raises(NotFound):
        deployments.delete_cluster(owner, cluster.id)
