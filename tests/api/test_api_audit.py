"""GET /api/v1/audit/: the audit log for scripts, filtered and paged like the history page."""

from __future__ import annotations

import pytest

from app.services import clusters, deployments
from tests.api.conftest import make_member


@pytest.fixture
def team(owner):
    member = make_member(owner.org, role="member", display_name="Mia")
    pool = clusters.create_cluster(owner.user, "pool", {"cpu": "4"})
    mine = deployments.submit(member.user, pool.id, "web:1", "mine", 100, {"cpu": "3"}).deployment
    deployments.submit(owner.user, pool.id, "db:1", "theirs", 900, {"cpu": "2"})
    return member, mine


def test_owners_read_every_entry_newest_first_in_pages(api, owner, team) -> None:
    member, _ = team
    api.put(f"/organization/members/{member.id}/role/", {"role": "admin"}, token=owner.token)
    body = api.get("/audit/?offset=2", token=owner.token).get_json()
    assert body["total"] == 7 and len(body["items"]) == 2 and body["page"] == 0
    newest = body["items"][0]
    assert newest["action"] == "user.role_changed"
    assert newest["data"] == {"before": {"role": "member"}, "after": {"role": "admin"}}
    assert newest["actor"]["kind"] == "user" and newest["actor"]["id"] == owner.id
    assert newest["subject"] == {"kind": "user", "id": member.id, "name": "Mia"}
    last = api.get("/audit/?offset=2&page=3", token=owner.token).get_json()["items"]
    assert [item["action"] for item in last] == ["cluster.created"]


def test_filters_by_actor_and_action(api, owner, team) -> None:
    scheduler = api.get("/audit/?actor=scheduler", token=owner.token).get_json()["items"]
    assert {item["action"] for item in scheduler} == {
        "deployment.started",
        "deployment.preempted",
    }
    submitted = api.get(f"/audit/?action=deployment.submitted&actor={owner.id}", token=owner.token)
    assert [item["subject"]["name"] for item in submitted.get_json()["items"]] == ["theirs"]


def test_members_read_their_own_deployments_only(api, team) -> None:
    member, mine = team
    items = api.get("/audit/", token=member.token).get_json()["items"]
    assert {item["subject"]["id"] for item in items} == {mine.id}
    assert [item["action"] for item in items] == [
        "deployment.preempted",
        "deployment.started",
        "deployment.submitted",
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("actor=root", "actor"),
        ("action=a.b.c", "action"),
        ("subject_kind=planet", "subject_kind"),
        ("subject_id=0", "subject_id"),
        ("since=not-a-time", "since"),
        ("since=2026-02-01&until=2026-01-01", "until"),
    ],
)
def test_bad_filters_answer_422_naming_the_field(api, owner, query, field) -> None:
    answer = api.get(f"/audit/?{query}", token=owner.token)
    assert answer.status_code == 422
    assert field in answer.get_json()["error"]["fields"]


def test_a_token_is_required(api) -> None:
    assert api.get("/audit/").status_code == 401
