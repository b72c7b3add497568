"""The audit log: every change to an organization is recorded with its change, and read back.

Each account action writes its entry in the transaction of the change (before and after values
where something changed); a change that fails after its entry was written leaves neither. The
log is read through the history page, its CSV export and GET /api/v1/audit/, by owners and
admins in full and by members for their own deployments; old entries are pruned by a command.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.models import Event, Invite, Organization, User, utcnow
from app.services import accounts, clusters, deployments, history
from app.services.errors import Unauthorized
from tests.factories import DEFAULT_PASSWORD, make_org, make_user


def _events(db, action: str | None = None) -> list[Event]:
    query = sa.select(Event).order_by(Event.id)
    if action:
        query = query.where(Event.action == action)
    return list(db.session.scalars(query))


@pytest.fixture
def org(app) -> Organization:
    return make_org(name="Acme")


@pytest.fixture
def owner(org) -> User:
    return make_user(org, username="olga", role="owner", display_name="Olga")


@pytest.fixture
def member(org) -> User:
    return make_user(org, username="mia", role="member", display_name="Mia")


def test_sign_up_and_invite_redemption_are_recorded(db) -> None:
    founder = accounts.signup("fran", DEFAULT_PASSWORD, "Fran", "Fran's Org")
    invite, code = accounts.create_invite(founder, "for Gus", "admin")
    gus = accounts.redeem_invite(code, "gus", DEFAULT_PASSWORD, "Gus")

    signed_up, created, redeemed = _events(db)
    assert (signed_up.action, signed_up.actor_id, signed_up.subject_id) == (
        "user.signed_up",
        founder.id,
        founder.id,
    )
    assert signed_up.data == {"username": "fran", "role": "owner", "organization": "Fran's Org"}
    assert (created.action, created.subject_kind, created.subject_id) == (
        "invite.created",
        "invite",
        invite.id,
    )
    assert created.data["role"] == "admin" and created.data["label"] == "for Gus"
    assert (redeemed.action, redeemed.actor_id, redeemed.actor_name) == (
        "invite.redeemed",
        gus.id,
        "Gus",
    )
    assert redeemed.data == {"user_id": gus.id, "username": "gus", "role": "admin"}
    assert redeemed.message == "Gus (gus) joined as admin with invite for Gus."


def test_member_changes_carry_before_and_after(db, owner, member) -> None:
    accounts.change_role(owner, member.id, "admin")
    accounts.deactivate(owner, member.id)
    accounts.reactivate(owner, member.id)
    accounts.change_role(owner, member.id, "admin")  # no change: no entry

    role, off, on = _events(db)
    assert role.action == "user.role_changed"
    assert role.data == {"before": {"role": "member"}, "after": {"role": "admin"}}
    assert (role.actor_id, role.subject_id, role.subject_name) == (owner.id, member.id, "Mia")
    assert role.message == "Mia changed from member to admin."
    assert off.action == "user.deactivated" and off.data["after"] == {"active": False}
    assert on.action == "user.reactivated" and on.data["before"] == {"active": False}


def test_settings_quota_and_invite_changes_are_recorded(db, owner, org) -> None:
    accounts.update_settings(owner, "Acme Corp", "50", True)
    accounts.update_settings(owner, "Acme Corp", "50", True)  # unchanged: no entry
    invite, _ = accounts.create_invite(owner, "Ivy")
    accounts.revoke_invite(owner, invite.id)
    expired, _ = accounts.create_invite(owner, "Late")
    db.session.execute(
        sa.update(Invite)
        .where(Invite.id == expired.id)
        .values(expires_at=utcnow() - timedelta(hours=1))
    )
    db.session.commit()
    accounts.reopen_invite(owner, expired.id)

    settings = _events(db, "organization.settings_changed")
    assert len(settings) == 1
    assert settings[0].data == {
        "before": {"name": "Acme", "deployment_quota": 1000, "members_can_create_clusters": False},
        "after": {"name": "Acme Corp", "deployment_quota": 50, "members_can_create_clusters": True},
    }
    assert (settings[0].subject_kind, settings[0].subject_id) == ("organization", org.id)
    revoked = _events(db, "invite.revoked")[0]
    assert revoked.subject_id == invite.id and revoked.data["before"] == {"revoked_at": None}
    assert revoked.data["after"]["revoked_at"].endswith("Z")
    reopened = _events(db, "invite.reopened")[0]
    assert reopened.data["before"]["expires_at"] < reopened.data["after"]["expires_at"]


def test_passwords_tokens_and_names_are_recorded_never_a_secret(db, owner, member) -> None:
    member_id = member.id
    accounts.update_profile(member, "Mia M.")
    accounts.change_password(member, DEFAULT_PASSWORD, "a brand new passphrase")
    view, secret = accounts.create_token(owner, "ci pipeline", 30)
    accounts.revoke_api_token(owner, view.id)
    _, code = accounts.create_password_reset(owner, member_id)
    accounts.reset_password(code, "another fresh passphrase")
    accounts.login_token(owner.username, DEFAULT_PASSWORD)  # an API login is not a change

    assert [event.action for event in _events(db)] == [
        "user.renamed",
        "user.password_changed",
        "token.created",
        "token.revoked",
        "user.password_reset_issued",
        "user.password_reset",
    ]
    renamed = _events(db, "user.renamed")[0]
    assert renamed.data == {
        "before": {"display_name": "Mia"},
        "after": {"display_name": "Mia M."},
    }
    dumped = repr([(e.message, e.data) for e in _events(db)])
    for secret_text in (secret, code, "a brand new passphrase", "another fresh passphrase"):
        assert secret_text not in dumped


def test_failed_logins_are_recorded_per_username_without_the_password(db, owner) -> None:
    for attempt in ("guess-one-wrong", "guess-two-wrong"):
        with pytest.raises(Unauthorized):
            accounts.authenticate("OLGA", attempt)
    with pytest.raises(Unauthorized):
        accounts.authenticate("nobody-here", "whatever-at-all")  # no organization to tell

    failed = _events(db, "user.login_failed")
    assert len(failed) == 2 and len(_events(db)) == 2
    assert {(e.subject_id, e.actor_kind, e.data["username"]) for e in failed} == {
        (owner.id, "system", "olga")
    }
    assert "guess" not in repr([(e.message, e.data) for e in failed])


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize(
    "change",
    ["role", "deactivate", "settings", "invite", "revoke", "token", "cluster", "deploy"],
)
def test_a_change_that_fails_after_its_entry_leaves_neither(db, owner, member, monkeypatch, change):
    """The entry is written first, then the change fails: the rollback takes both away."""
    pool = clusters.create_cluster(owner, "pool", {"cpu": "4"})
    invite, _ = accounts.create_invite(owner, "Ivy")
    pool_id, invite_id, member_id, before = pool.id, invite.id, member.id, len(_events(db))
    real = history.record_all

    def record_then_fail(entries):
        real(entries)
        db.session.flush()  # the entry really is in the transaction
        raise Boom("the change fails after its entry was written")

    monkeypatch.setattr(history, "record_all", record_then_fail)
    actions = {
        "role": lambda: accounts.change_role(owner, member_id, "admin"),
        "deactivate": lambda: accounts.deactivate(owner, member_id),
        "settings": lambda: accounts.update_settings(owner, "Renamed", "7"),
        "invite": lambda: accounts.create_invite(owner, "Other"),
        "revoke": lambda: accounts.revoke_invite(owner, invite_id),
        "token": lambda: accounts.create_token(owner, "ci", 3),
        "cluster": lambda: clusters.create_cluster(owner, "second", {"cpu": "1"}),
        "deploy": lambda: deployments.submit(owner, pool_id, "web:1", "web", 100, {"cpu": "1"}),
    }
    with pytest.raises(Boom):
        actions[change]()
    db.session.rollback()
    monkeypatch.undo()

    assert len(_events(db)) == before
    assert db.session.get(User, member_id).role == "member"
    assert db.session.get(User, member_id).active
    assert db.session.get(Organization, owner.organization_id).name == "Acme"
    assert db.session.get(Invite, invite_id).revoked_at is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invite)) == 1
    assert accounts.list_tokens(owner) == []
    assert [c.name for c in clusters.list_clusters(owner.organization_id)[0]] == ["pool"]
    assert deployments.organization_count(owner.organization_id) == 0


# --- reading the log --------------------------------------------------------------------------


@pytest.fixture
def busy(db, owner, member):
    """A log with people and the scheduler: the member's deployment preempted by the owner's."""
    pool = clusters.create_cluster(owner, "pool", {"cpu": "4"})
    mine = deployments.submit(member, pool.id, "web:1", "mine", 100, {"cpu": "3"}).deployment
    theirs = deployments.submit(owner, pool.id, "db:1", "theirs", 900, {"cpu": "2"}).deployment
    accounts.change_role(owner, member.id, "admin")
    accounts.change_role(owner, member.id, "member")
    return pool, mine, theirs


def test_owners_filter_the_page_by_actor_action_object_and_time(client, login_as, owner, busy):
    pool, mine, theirs = busy
    login_as(client, owner)
    page = client.get("/history/").get_data(as_text=True)
    assert "Preempted by" in page and "Mia changed from member to admin." in page
    assert f'href="/deployments/{mine.id}"' in page and f'href="/clusters/{pool.id}"' in page

    by_scheduler = client.get("/history/?actor=scheduler").get_data(as_text=True)
    assert "Preempted by" in by_scheduler and "Mia changed" not in by_scheduler
    roles = client.get("/history/?action=user").get_data(as_text=True)
    assert "Mia changed" in roles and "Preempted" not in roles
    one = client.get(f"/history/?subject_kind=deployment&subject_id={theirs.id}")
    assert "Submitted db:1" in one.get_data(as_text=True)
    assert "Submitted web:1" not in one.get_data(as_text=True)
    future = client.get("/history/?since=2999-01-01").get_data(as_text=True)
    assert "No entries match these filters." in future


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("actor=root", "actor"),
        ("action=DROP%20TABLE", "action"),
        ("subject_kind=planet", "subject_kind"),
        ("subject_id=-1", "subject_id"),
        ("subject_id=99999999999", "subject_id"),
        ("since=yesterday", "since"),
        ("since=0001-01-01T00:00%2B05:00", "since"),
        ("since=2026-02-01&until=2026-01-01", "until"),
    ],
)
def test_bad_filters_are_refused_with_a_message(client, login_as, owner, query, field):
    login_as(client, owner)
    page = client.get(f"/history/?{query}")
    assert page.status_code == 422 and field in page.get_data(as_text=True)
    assert "<table" not in page.get_data(as_text=True)
    assert client.get(f"/history/export.csv?{query}").status_code == 422


def test_pages_of_the_log(client, login_as, owner, member, app) -> None:
    app.config["PAGE_SIZE"] = 3
    for number in range(7):
        accounts.create_invite(owner, f"guest {number}")
    login_as(client, owner)
    first = client.get("/history/").get_data(as_text=True)
    assert "Invited guest 6" in first and "Invited guest 3" not in first and "Page 1 of 3" in first
    last = client.get("/history/?page=3").get_data(as_text=True)
    assert "Invited guest 0" in last and "Invited guest 1" not in last


def test_members_see_only_their_own_deployments_and_account(client, login_as, member, busy):
    _, _, theirs = busy
    login_as(client, member)
    page = client.get("/history/").get_data(as_text=True)
    assert "Submitted web:1" in page and "Preempted by" in page
    assert "Mia changed from member to admin." in page  # their own account
    assert "Submitted db:1" not in page and "Created cluster" not in page
    # Asking for someone else's deployment by id shows nothing either.
    other = client.get(f"/history/?subject_kind=deployment&subject_id={theirs.id}")
    assert "No entries match these filters." in other.get_data(as_text=True)


def test_csv_export_follows_the_filter_and_defuses_formulas(client, login_as, owner, member, db):
    accounts.update_profile(member, "=HYPERLINK(1)")
    accounts.create_invite(owner, "Zed")
    login_as(client, owner)
    answer = client.get("/history/export.csv?action=user.renamed")
    assert answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows[0][:6] == ["id", "at", "actor_kind", "actor_id", "actor_name", "action"]
    assert len(rows) == 2 and rows[1][5] == "user.renamed"
    assert rows[1][4] == "'=HYPERLINK(1)"  # a spreadsheet would have run it
    assert '"after": {"display_name": "=HYPERLINK(1)"}' in rows[1][-1]


def test_prune_history_deletes_only_what_is_past_retention(app, db, runner, owner) -> None:
    accounts.create_invite(owner, "old")
    accounts.create_invite(owner, "new")
    old_id = _events(db)[0].id
    db.session.execute(
        sa.update(Event).where(Event.id == old_id).values(at=utcnow() - timedelta(days=400))
    )
    db.session.commit()
    result = runner.invoke(args=["kargo", "prune-history"])
    assert result.exit_code == 0, result.output
    assert "Deleted 1 history entries older than 365 days." in result.output
    assert [event.message for event in _events(db)] == ["Invited new as member."]


def test_deleted_objects_are_named_but_not_linked(client, login_as, owner, busy) -> None:
    _, mine, _ = busy
    deployments.delete(owner, mine.id)
    login_as(client, owner)
    page = client.get(f"/history/?subject_kind=deployment&subject_id={mine.id}")
    text = page.get_data(as_text=True)
    assert 'mine <small class="muted">(deleted)</small>' in text
    assert f'href="/deployments/{mine.id}"' not in text
