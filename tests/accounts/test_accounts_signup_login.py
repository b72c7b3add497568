"""Sign-up, login, logout, sessions and the login rate limits."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.models import Organization, User
from tests.factories import DEFAULT_PASSWORD, make_user

GOOD = {
    "username": "ada",
    "display_name": "Ada Lovelace",
    "organization_name": "Analytical Engines",
    "password": "difference-engine",
    "confirm": "difference-engine",
}


def counts(db) -> tuple[int, int]:
    users = db.session.scalar(sa.select(sa.func.count(User.id)))
    orgs = db.session.scalar(sa.select(sa.func.count(Organization.id)))
    return users, orgs


def login(client, username, password=DEFAULT_PASSWORD, next_=None, **kwargs):
    url = "/login" if next_ is None else f"/login?next={next_}"
    data = {"username": username, "password": password}
    if next_ is not None:
        data["next"] = next_
    return client.post(url, data=data, **kwargs)


# --- sign-up -------------------------------------------------------------------------------


def test_signup_creates_owner_and_organization_and_logs_in(client, db, app):
    response = client.post("/signup", data=GOOD)
    assert response.status_code == 302
    assert response.headers["Location"] == "/organization"
    user = db.session.scalar(sa.select(User))
    assert user.username == "ada" and user.username_key == "ada"
    assert user.role == "owner"
    assert user.organization.name == "Analytical Engines"
    assert user.organization.deployment_quota == app.config["DEFAULT_DEPLOYMENT_QUOTA"]
    # Hashed with scrypt, never in clear.
    assert user.password_hash.startswith("scrypt:")
    assert "difference-engine" not in user.password_hash
    page = client.get("/organization")
    assert page.status_code == 200
    assert b"Ada Lovelace" in page.data and b"Analytical Engines" in page.data


def test_signup_uses_configured_default_quota(client, db, app):
    app.config["DEFAULT_DEPLOYMENT_QUOTA"] = 7
    client.post("/signup", data=GOOD)
    assert db.session.scalar(sa.select(Organization.deployment_quota)) == 7


def test_signup_page_renders_labelled_fields(client):
    page = client.get("/signup").get_data(as_text=True)
    for name in ("username", "display_name", "organization_name", "password", "confirm"):
        assert f'for="{name}"' in page and f'id="{name}"' in page


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"username": ""}, "username", "Enter a username."),
        ({"username": "ab"}, "username", "3 to 40 characters"),
        ({"username": "a" * 41}, "username", "3 to 40 characters"),
        ({"username": "ada lovelace"}, "username", "Use only letters"),
        ({"username": "ada\x00x"}, "username", "Use only letters"),
        ({"display_name": ""}, "display_name", "Enter a display name."),
        ({"display_name": "x" * 81}, "display_name", "at most 80"),
        ({"display_name": "Ada\x07"}, "display_name", "control characters"),
        ({"organization_name": "   "}, "organization_name", "Enter an organization name."),
        ({"organization_name": "o" * 101}, "organization_name", "at most 100"),
        ({"password": "short", "confirm": "short"}, "password", "at least 10"),
        ({"password": "", "confirm": ""}, "password", "Enter a password."),
        ({"password": "x" * 300, "confirm": "x" * 300}, "password", "at most 256"),
        ({"password": "my-ada-password", "confirm": "my-ada-password"}, "password", "username"),
        (
            {"username": "adalovelace", "password": "ADALOVELACE", "confirm": "ADALOVELACE"},
            "password",
            "username",
        ),
        ({"confirm": "something-else"}, "confirm", "do not match"),
    ],
)
def test_signup_bad_input_gets_a_field_message_and_writes_nothing(
    client, db, changes, field, message
):
    response = client.post("/signup", data={**GOOD, **changes})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'id="{field}-error"' in page
    assert message in page
    assert counts(db) == (0, 0)


def test_signup_with_a_username_taken_in_another_case(client, db):
    make_user(username="Ada")
    before = counts(db)
    response = client.post("/signup", data={**GOOD, "username": "ADA"})
    assert response.status_code == 422
    assert "This username is taken" in response.get_data(as_text=True)
    assert counts(db) == before


def test_signup_race_on_username_key_becomes_a_field_error(app, db, monkeypatch):
    """The pre-check passes but the insert hits the unique index: still a clean field error."""
    from app.services import accounts
    from app.services.errors import Conflict

    make_user(username="ada")
    monkeypatch.setattr(accounts, "_username_taken", lambda username: False)
    before = counts(db)
    with pytest.raises(Conflict) as caught:
        accounts.signup("ADA", "difference-engine", "Ada", "Engines")
    assert caught.value.fields == {"username": accounts.USERNAME_TAKEN}
    assert counts(db) == before


def test_logged_in_user_visiting_signup_is_sent_to_their_organization(client, login_as):
    login_as(client, make_user())
    response = client.get("/signup")
    assert response.status_code == 302 and response.headers["Location"] == "/organization"


# --- login and logout ------------------------------------------------------------------------


def test_login_with_any_case_updates_last_login_and_redirects(client, db):
    user = make_user(username="Grace")
    assert user.last_login_at is None
    response = login(client, "GRACE")
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, user.id).last_login_at is not None
    assert client.get("/profile").status_code == 200


@pytest.mark.parametrize(
    ("username", "password"),
    [("nobody", DEFAULT_PASSWORD), ("grace", "wrong password!"), ("", ""), ("x" * 500, "y")],
)
def test_wrong_username_and_wrong_password_get_the_same_message(client, username, password):
    make_user(username="grace")
    response = login(client, username, password)
    assert response.status_code in (401, 422)
    page = response.get_data(as_text=True)
    if username and password:
        assert "Invalid username or password." in page
    assert client.get("/profile").status_code == 302  # still anonymous


def test_deactivated_user_cannot_log_in(client):
    make_user(username="gone", active=False)
    wrong = login(client, "gone", "not the password")
    assert "Invalid username or password." in wrong.get_data(as_text=True)
    right = login(client, "gone")
    assert right.status_code == 401
    assert "deactivated" in right.get_data(as_text=True)
    assert client.get("/profile").status_code == 302


def test_login_rotates_the_session(client):
    make_user(username="grace")
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    before = client.get_cookie("session").value
    login(client, "grace")
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["_user_id"]
    assert client.get_cookie("session").value != before


@pytest.mark.parametrize(
    ("next_", "expected"),
    [
        ("/profile", "/profile"),
        ("/clusters/?page=2", "/clusters/?page=2"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("http:/evil.example", "/"),
        ("/\tevil", "/"),
        ("", "/"),
    ],
)
def test_next_redirects_only_to_local_paths(client, next_, expected):
    make_user(username="grace")
    response = client.post(
        "/login", data={"username": "grace", "password": DEFAULT_PASSWORD, "next": next_}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_login_required_page_round_trips_through_next(client):
    make_user(username="grace")
    response = client.get("/profile")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'name="next" type="hidden" value="/profile"' in page
    assert login(client, "grace", next_="/profile").headers["Location"] == "/profile"


def test_logout_ends_the_session(client, login_as):
    login_as(client, make_user())
    assert client.get("/profile").status_code == 200
    response = client.post("/logout")
    assert response.status_code == 302
    assert client.get("/profile").status_code == 302


def test_logout_is_post_only(client, login_as):
    login_as(client, make_user())
    assert client.get("/logout").status_code == 405


def test_session_from_another_client_is_dropped(app, client):
    """Strong session protection: the cookie replayed from another address is not accepted."""
    make_user(username="grace")
    login(client, "grace")
    cookie = client.get_cookie("session").value
    thief = app.test_client()
    thief.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    thief.set_cookie("session", cookie)
    assert thief.get("/profile").status_code == 302


# --- rate limits -----------------------------------------------------------------------------


def test_login_is_rate_limited_per_username_across_addresses(client, app):
    app.config["LOGIN_RATE_LIMIT_PER_USERNAME"] = "3 per minute"
    make_user(username="grace")
    for i in range(3):
        response = login(
            client, "grace", "wrong password!", environ_base={"REMOTE_ADDR": f"10.0.0.{i}"}
        )
        assert response.status_code == 401
    # Even the right password from a fresh address is refused now, with a clear message.
    blocked = login(client, "GRACE", environ_base={"REMOTE_ADDR": "10.0.0.99"})
    assert blocked.status_code == 429
    page = blocked.get_data(as_text=True)
    assert "Too many login attempts" in page
    assert 'name="username"' in page  # the login page itself, not a dead end
    # Another username is unaffected.
    make_user(username="linus")
    assert login(client, "linus", environ_base={"REMOTE_ADDR": "10.0.0.99"}).status_code == 302


def test_login_is_rate_limited_per_client(client, app):
    app.config["LOGIN_RATE_LIMIT_PER_CLIENT"] = "4 per minute"
    for i in range(4):
        assert login(client, f"nobody{i}", "wrong password!").status_code == 401
    blocked = login(client, "someone-else", "wrong password!")
    assert blocked.status_code == 429
    assert "Too many login attempts" in blocked.get_data(as_text=True)
    # Another client is unaffected.
    other = login(client, "nobody9", "wrong password!", environ_base={"REMOTE_ADDR": "10.1.1.1"})
    assert other.status_code == 401


def test_successful_logins_do_not_use_up_the_limit(client, app):
    app.config["LOGIN_RATE_LIMIT_PER_USERNAME"] = "2 per minute"
    make_user(username="grace")
    for _ in range(4):
        assert login(client, "grace").status_code == 302
        client.post("/logout")


class LimiterClock:
    """The rate limiter's clock, stopped: only `advance` moves it.

    Its counters (limits' memory storage) and the Retry-After it computes read `time.time()`;
    here they read this instead, so a window runs out when the test says, never because a
    loaded machine was slow between two attempts.
    """

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def limiter_clock(monkeypatch, app) -> LimiterClock:
    from limits.storage import memory

    from app.blueprints import limits as kargo_limits
    from app.extensions import limiter

    assert isinstance(limiter.limiter.storage, memory.MemoryStorage)
    clock = LimiterClock()
    monkeypatch.setattr(memory, "time", clock)
    monkeypatch.setattr(kargo_limits, "time", clock)
    return clock


def test_login_page_works_again_after_the_window(client, app, limiter_clock):
    app.config["LOGIN_RATE_LIMIT_PER_CLIENT_USERNAME"] = "2 per minute"
    make_user(username="grace")
    assert login(client, "grace", "wrong password!").status_code == 401
    limiter_clock.advance(30)
    assert login(client, "grace", "wrong password!").status_code == 401
    limiter_clock.advance(29)
    blocked = login(client, "grace")
    assert blocked.status_code == 429
    assert blocked.headers["Retry-After"] == "1"  # the window opened with the first attempt
    assert client.get("/login").status_code == 200  # viewing the page is never limited
    limiter_clock.advance(1)
    assert login(client, "grace").status_code == 302
