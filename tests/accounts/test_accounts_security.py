"""CSRF on the account forms, API tokens, and the last-owner rule under concurrency."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.models import ApiToken, Organization, User, utcnow
from app.services import accounts
from app.services.errors import Conflict, Forbidden, Unauthorized
from tests.factories import DEFAULT_PASSWORD, make_org, make_user


def csrf_token_of(page: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    assert match, "no CSRF token in the page"
    return match.group(1)


class TestWithCsrf:
    @pytest.fixture
    def app_config(self):
        return {"WTF_CSRF_ENABLED": True}

    def test_signup_without_token_is_a_clean_400_and_writes_nothing(self, client, db):
        data = {
            "username": "ada",
            "display_name": "Ada",
            "organization_name": "Engines",
            "password": "difference-engine",
            "confirm": "difference-engine",
        }
        response = client.post("/signup", data=data)
        assert response.status_code == 400
        assert "Reload the page and try again" in response.get_data(as_text=True)
        assert db.session.scalar(sa.select(sa.func.count(Organization.id))) == 0
        token = csrf_token_of(client.get("/signup").get_data(as_text=True))
        assert client.post("/signup", data={**data, "csrf_token": token}).status_code == 302

    def test_login_and_logout_need_the_token(self, client):
        make_user(username="grace")
        data = {"username": "grace", "password": DEFAULT_PASSWORD}
        assert client.post("/login", data=data).status_code == 400
        token = csrf_token_of(client.get("/login").get_data(as_text=True))
        assert client.post("/login", data={**data, "csrf_token": token}).status_code == 302
        assert client.post("/logout").status_code == 400
        assert client.get("/profile").status_code == 200  # still logged in
        token = csrf_token_of(client.get("/profile").get_data(as_text=True))
        assert client.post("/logout", data={"csrf_token": token}).status_code == 302
        assert client.get("/profile").status_code == 302

    def test_admin_actions_need_the_token(self, client, login_as, db):
        owner = make_user(make_org("Acme"), "olivia")
        member = make_user(owner.organization, "mia", role="member")
        login_as(client, owner)
        assert client.post("/admin/invites").status_code == 400
        assert client.post(f"/admin/members/{member.id}/deactivate").status_code == 400
        db.session.expire_all()
        assert db.session.get(User, member.id).active
        page = client.get("/admin/members").get_data(as_text=True)
        token = csrf_token_of(page)
        response = client.post(f"/admin/members/{member.id}/deactivate", data={"csrf_token": token})
        assert response.status_code == 302

    def test_invite_form_needs_the_token(self, client, db):
        owner = make_user(make_org("Acme"), "olivia")
        _, code = accounts.create_invite(owner)
        data = {
            "username": "newbie",
            "display_name": "N",
            "password": "long-enough-pw",
            "confirm": "long-enough-pw",
        }
        assert client.post(f"/invite/{code}", data=data).status_code == 400
        assert accounts.invite_status(code)[0] == "active"


# --- API tokens ------------------------------------------------------------------------------


def test_tokens_are_stored_hashed_and_identify_their_user(app, db):
    user = make_user(username="bot")
    api_token, token = accounts.issue_token(user)
    assert len(token) >= 43
    assert api_token.token_hash != token and len(api_token.token_hash) == 64
    assert accounts.user_for_token(token).id == user.id
    assert accounts.user_for_token(token + "x") is None
    assert accounts.user_for_token("") is None
    assert accounts.user_for_token("\x00" * 43) is None
    assert accounts.user_for_token("a" * 5000) is None
    assert accounts.revoke_token(token) is True
    assert accounts.user_for_token(token) is None
    assert accounts.revoke_token(token) is False


def test_expired_token_and_deactivated_user_are_refused(app, db):
    app.config["API_TOKEN_TTL_SECONDS"] = 60
    owner = make_user(username="boss")
    user = make_user(owner.organization, username="bot", role="member")
    api_token, token = accounts.issue_token(user)
    assert api_token.expires_at - api_token.created_at == timedelta(seconds=60)
    accounts.deactivate(owner, user.id)
    assert accounts.user_for_token(token) is None
    accounts.reactivate(owner, user.id)
    assert accounts.user_for_token(token) is None  # reactivation brings no token back
    _, fresh = accounts.issue_token(db.session.get(User, user.id))
    assert accounts.user_for_token(fresh) is not None
    db.session.execute(sa.update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert accounts.user_for_token(fresh) is None


def test_authenticate_service(db):
    make_user(username="Grace")
    assert accounts.authenticate(" grace ", DEFAULT_PASSWORD).username == "Grace"
    for username, password in [("grace", "nope"), ("nobody", DEFAULT_PASSWORD), ("g\x00", "x")]:
        with pytest.raises(Unauthorized) as caught:
            accounts.authenticate(username, password)
        assert caught.value.message == "Invalid username or password."


def test_signup_service_returns_the_owner(db, app):
    user = accounts.signup("  ada ", "difference-engine", " Ada ", " Engines ")
    assert (user.username, user.display_name, user.role) == ("ada", "Ada", "owner")
    assert user.organization.name == "Engines"
    with pytest.raises(Conflict) as caught:
        accounts.signup("ADA", "difference-engine", "Ada", "Engines")
    assert caught.value.code == "username_taken" and "username" in caught.value.fields


# --- the last owner under concurrency --------------------------------------------------------


def test_two_owners_demoting_each_other_at_once_leave_one_owner(app, db):
    org = make_org("Acme")
    first = make_user(org, "first", role="owner")
    second = make_user(org, "second", role="owner")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def demote(actor_id: int, target_id: int) -> None:
        with app.app_context():
            from app.extensions import db as thread_db

            try:
                actor = thread_db.session.get(User, actor_id)
                thread_db.session.commit()
                barrier.wait()
                accounts.change_role(actor, target_id, "member")
                outcomes.append("demoted")
            except (Conflict, Forbidden):
                # The loser is either the last owner now, or no longer an owner itself.
                outcomes.append("refused")
            finally:
                thread_db.session.remove()

    threads = [
        threading.Thread(target=demote, args=(first.id, second.id)),
        threading.Thread(target=demote, args=(second.id, first.id)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    db.session.rollback()  # end this session's read snapshot, taken before the threads wrote
    owners = db.session.scalar(
        sa.select(sa.func.count(User.id)).where(
            User.organization_id == org.id, User.role == "owner"
        )
    )
    assert owners == 1, outcomes
    assert sorted(outcomes) == ["demoted", "refused"]
