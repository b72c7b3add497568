"""Invite links: creation, the page, redemption, expiry, revoke, re-open and single use."""

from __future__ import annotations

import hashlib
import re
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.blueprints import links
from app.models import Invite, User, utcnow
from app.services import accounts
from app.services.errors import Conflict, Forbidden, Gone, NotFound, ValidationError
from tests.factories import make_org, make_user

JOIN = {
    "username": "newbie",
    "display_name": "New Person",
    "password": "a-long-enough-secret",
    "confirm": "a-long-enough-secret",
}


@pytest.fixture
def owner(db):
    return make_user(make_org("Acme"), "olivia", role="owner")


def create_code(actor) -> tuple[Invite, str]:
    return accounts.create_invite(actor)


def user_count(db) -> int:
    return db.session.scalar(sa.select(sa.func.count(User.id)))


def expire(db, invite_id: int) -> None:
    db.session.execute(
        sa.update(Invite)
        .where(Invite.id == invite_id)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()


# --- creation --------------------------------------------------------------------------------


def test_admin_page_shows_the_new_link_once(client, login_as, owner, db):
    login_as(client, owner)
    response = client.post("/admin/invites", data={"label": "Ada", "role": "member"})
    assert response.status_code == 302  # POST/redirect/GET: a reload makes no second invite
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    match = re.search(
        r'id="new-invite-link" value="(http://localhost/invite/([^"]+))" readonly', page
    )
    assert match, page
    assert 'data-copy-target="new-invite-link"' in page
    code = match.group(2)
    assert len(code) >= 43  # 32 random bytes: 256 bits
    invite = db.session.scalar(sa.select(Invite))
    # Only the hash is stored.
    assert invite.code_hash == hashlib.sha256(code.encode()).hexdigest()
    assert code not in invite.code_hash
    # The listing afterwards does not show the code again.
    listing = client.get("/admin/invites").get_data(as_text=True)
    assert code not in listing
    assert "Active" in listing and "Olivia" in listing


def test_invite_link_uses_public_url_when_configured(app, owner):
    app.config["PUBLIC_URL"] = "https://kargo.example.com/"
    with app.test_request_context():
        _, code = create_code(owner)
        assert links.invite_link(code) == f"https://kargo.example.com/invite/{code}"


def test_expiry_follows_the_configured_ttl(app, owner):
    app.config["INVITE_TTL_SECONDS"] = 600
    invite, _ = create_code(owner)
    assert timedelta(seconds=590) < invite.expires_at - invite.created_at <= timedelta(seconds=600)


def test_admins_create_invites_members_cannot(db, owner):
    admin = make_user(owner.organization, "adam", role="admin")
    member = make_user(owner.organization, "mia", role="member")
    assert create_code(admin)[0].created_by_id == admin.id
    with pytest.raises(Forbidden):
        create_code(member)


# --- the invite page -------------------------------------------------------------------------


def test_opening_the_link_many_times_consumes_nothing(client, owner, db):
    invite, code = create_code(owner)
    for _ in range(3):
        response = client.get(f"/invite/{code}")
        assert response.status_code == 200
        assert "Join Acme" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Invite, invite.id).used_at is None
    assert accounts.invite_status(code)[0] == "active"


def test_redeeming_creates_a_member_and_marks_the_invite_used(client, owner, db):
    invite, code = create_code(owner)
    response = client.post(f"/invite/{code}", data=JOIN)
    assert response.status_code == 302
    assert response.headers["Location"] == "/organization"
    user = db.session.scalar(sa.select(User).where(User.username_key == "newbie"))
    assert (user.organization_id, user.role) == (owner.organization_id, "member")
    db.session.expire_all()
    invite = db.session.get(Invite, invite.id)
    assert invite.used_by_id == user.id and invite.used_at is not None
    page = client.get("/organization").get_data(as_text=True)
    assert "New Person" in page and "Olivia" in page
    # The admin list says who used it and when.
    listing = accounts.list_invites(owner)
    assert listing[0].state == "used" and listing[0].used_by == "New Person"


def test_used_code_cannot_be_redeemed_again(client, owner, db):
    _, code = create_code(owner)
    client.post(f"/invite/{code}", data=JOIN)
    before = user_count(db)
    again = client.post(f"/invite/{code}", data={**JOIN, "username": "second"})
    assert again.status_code == 410
    assert "already been used" in again.get_data(as_text=True)
    assert client.get(f"/invite/{code}").status_code == 410
    assert user_count(db) == before


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"username": ""}, "username", "Enter a username."),
        ({"username": "a b"}, "username", "Use only letters"),
        ({"username": "OLIVIA"}, "username", "taken"),
        ({"display_name": ""}, "display_name", "Enter a display name."),
        ({"display_name": "d" * 81}, "display_name", "at most 80"),
        ({"password": "short", "confirm": "short"}, "password", "at least 10"),
        ({"password": "newbie-password", "confirm": "newbie-password"}, "password", "username"),
        ({"confirm": "different-secret"}, "confirm", "do not match"),
    ],
)
def test_bad_input_on_the_invite_form_writes_nothing(client, owner, db, changes, field, message):
    invite, code = create_code(owner)
    before = user_count(db)
    response = client.post(f"/invite/{code}", data={**JOIN, **changes})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'id="{field}-error"' in page and message in page
    assert user_count(db) == before
    db.session.expire_all()
    assert db.session.get(Invite, invite.id).used_at is None


@pytest.mark.parametrize(
    "code",
    [
        "not-a-real-code-but-well-formed-xxxxxxxxxxxxxxxxx",
        "%00",
        "a" * 5000,
        "short",
        "%E2%9C%93" * 10,
        "..%2F..%2Fetc",
        "<script>alert(1)<%2Fscript>",
    ],
)
def test_unknown_or_malformed_codes_are_404_with_a_clear_page(client, owner, db, code):
    before = user_count(db)
    for response in (client.get(f"/invite/{code}"), client.post(f"/invite/{code}", data=JOIN)):
        assert response.status_code == 404
        assert "This invite link is not valid" in response.get_data(as_text=True)
    assert user_count(db) == before


def test_expired_code_is_410_and_can_be_reopened_once_again(client, login_as, owner, db):
    invite, code = create_code(owner)
    expire(db, invite.id)
    response = client.get(f"/invite/{code}")
    assert response.status_code == 410
    assert "expired" in response.get_data(as_text=True)
    assert client.post(f"/invite/{code}", data=JOIN).status_code == 410
    assert user_count(db) == 1

    login_as(client, owner)
    listing = client.get("/admin/invites").get_data(as_text=True)
    assert "Expired" in listing and f"/admin/invites/{invite.id}/reopen" in listing
    response = client.post(f"/admin/invites/{invite.id}/reopen", follow_redirects=True)
    assert "re-opened" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Invite, invite.id).expires_at > utcnow() + timedelta(hours=71)
    assert accounts.invite_status(code)[0] == "active"


def test_expiry_from_a_short_ttl(app, client, owner):
    app.config["INVITE_TTL_SECONDS"] = 0
    _, code = create_code(owner)
    assert client.get(f"/invite/{code}").status_code == 410


def test_revoked_code_is_410_and_stays_revoked(client, login_as, owner, db):
    invite, code = create_code(owner)
    login_as(client, owner)
    response = client.post(f"/admin/invites/{invite.id}/revoke", follow_redirects=True)
    assert "revoked" in response.get_data(as_text=True)
    client.post("/logout")
    page = client.get(f"/invite/{code}")
    assert page.status_code == 410 and "revoked" in page.get_data(as_text=True)
    assert client.post(f"/invite/{code}", data=JOIN).status_code == 410
    assert user_count(db) == 1
    expire(db, invite.id)
    with pytest.raises(Conflict, match="revoked"):
        accounts.reopen_invite(owner, invite.id)
    with pytest.raises(Conflict):
        accounts.revoke_invite(owner, invite.id)


def test_used_code_can_never_be_reopened_even_after_expiry(client, owner, db):
    invite, code = create_code(owner)
    client.post(f"/invite/{code}", data=JOIN)
    expire(db, invite.id)
    with pytest.raises(Conflict, match="redeemed by New Person"):
        accounts.reopen_invite(owner, invite.id)
    with pytest.raises(Conflict):
        accounts.revoke_invite(owner, invite.id)
    assert accounts.invite_status(code)[0] == "used"


def test_active_code_cannot_be_reopened(owner):
    invite, _ = create_code(owner)
    with pytest.raises(Conflict, match="still active"):
        accounts.reopen_invite(owner, invite.id)


def test_conflicts_on_the_admin_page_are_flashed(client, login_as, owner):
    invite, _ = create_code(owner)
    login_as(client, owner)
    response = client.post(f"/admin/invites/{invite.id}/reopen", follow_redirects=True)
    assert "was not re-opened: it is still active" in response.get_data(as_text=True)


def test_admins_manage_invites_members_and_strangers_cannot(owner, db):
    admin = make_user(owner.organization, "adam", role="admin")
    member = make_user(owner.organization, "mia", role="member")
    invite, _ = create_code(owner)
    with pytest.raises(Forbidden):
        accounts.revoke_invite(member, invite.id)
    with pytest.raises(Forbidden):
        accounts.list_invites(member)
    stranger = make_user(make_org(), "stranger", role="owner")
    with pytest.raises(NotFound):
        accounts.revoke_invite(stranger, invite.id)
    assert accounts.list_invites(stranger) == []
    # Admins manage invites: they may revoke one, too.
    assert accounts.revoke_invite(admin, invite.id).revoked_at is not None


def test_invite_ids_of_unknown_invites_are_404(client, login_as, owner):
    login_as(client, owner)
    assert client.post("/admin/invites/123456/revoke").status_code == 404
    assert client.post("/admin/invites/123456/reopen").status_code == 404


def test_invite_status_of_each_state(owner, db):
    assert accounts.invite_status(None) == ("invalid", None)
    assert accounts.invite_status("") == ("invalid", None)
    _invite, code = create_code(owner)
    state, org = accounts.invite_status(code)
    assert (state, org.name) == ("active", "Acme")


def test_redeem_service_errors(owner, db):
    with pytest.raises(NotFound):
        accounts.redeem_invite("x" * 43, "someone", "long-enough-pw", "Someone")
    invite, code = create_code(owner)
    with pytest.raises(ValidationError) as caught:
        accounts.redeem_invite(code, "", "", "")
    assert set(caught.value.fields) == {"username", "password", "display_name"}
    expire(db, invite.id)
    with pytest.raises(Gone) as gone:
        accounts.redeem_invite(code, "someone", "long-enough-pw", "Someone")
    assert gone.value.code == "invite_expired"


def test_expiry_between_page_and_submit_is_caught_by_the_claim(owner, db, monkeypatch):
    """The first read still sees the invite active; the guarded UPDATE does not: nothing made."""
    invite, code = create_code(owner)
    expire(db, invite.id)
    real_state = accounts._state_of
    answers = iter(["active"])
    monkeypatch.setattr(
        accounts, "_state_of", lambda inv, now: next(answers, None) or real_state(inv, now)
    )
    before = user_count(db)
    with pytest.raises(Gone) as gone:
        accounts.redeem_invite(code, "late", "long-enough-pw", "Late")
    assert gone.value.code == "invite_expired"
    assert user_count(db) == before


# --- concurrency -----------------------------------------------------------------------------


def test_concurrent_redemptions_create_exactly_one_user(app, owner, db):
    """Many threads redeem one code at the same instant: exactly one user, one winner."""
    _, code = create_code(owner)
    threads_count = 8
    barrier = threading.Barrier(threads_count)
    outcomes: list[str] = []
    lock = threading.Lock()

    def redeem(i: int) -> None:
        with app.app_context():
            barrier.wait()
            try:
                accounts.redeem_invite(code, f"racer{i}", "long-enough-pw", f"Racer {i}")
                outcome = "created"
            except Gone:
                outcome = "gone"
            except Exception as exc:  # pragma: no cover - reported below
                outcome = f"error: {exc!r}"
            finally:
                from app.extensions import db as thread_db

                thread_db.session.remove()
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=redeem, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["created"] + ["gone"] * (threads_count - 1), outcomes
    db.session.expire_all()
    members = db.session.scalars(sa.select(User).where(User.role == "member")).all()
    assert len(members) == 1
    invite = db.session.scalar(sa.select(Invite))
    assert invite.used_by_id == members[0].id


def test_concurrent_redemptions_with_the_same_username(app, owner, db):
    """Same code, same username, at once: one user; the others see a clean error."""
    _, code = create_code(owner)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def redeem() -> None:
        with app.app_context():
            barrier.wait()
            try:
                accounts.redeem_invite(code, "twin", "long-enough-pw", "Twin")
                outcomes.append("created")
            except (Gone, Conflict) as exc:
                outcomes.append(type(exc).__name__)
            finally:
                from app.extensions import db as thread_db

                thread_db.session.remove()

    threads = [threading.Thread(target=redeem) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert outcomes.count("created") == 1 and len(outcomes) == 4, outcomes
    assert (
        db.session.scalar(sa.select(sa.func.count(User.id)).where(User.username_key == "twin")) == 1
    )
