"""Sessions end on the server; links and headers do not trust the Host header; names cannot
reverse text. Each test replays an attack from the issue and must fail on the old code.
"""

from __future__ import annotations

import pytest

from app import create_app
from app.services import accounts
from app.services.errors import ValidationError
from tests.factories import DEFAULT_PASSWORD, make_org, make_user

NEW_PASSWORD = "a brand new passphrase"


def _log_in(client, username: str, password: str = DEFAULT_PASSWORD):
    response = client.post("/login", data={"username": username, "password": password})
    assert response.status_code == 302, response.data
    return response


def _cookie(client) -> str:
    return client.get_cookie("session").value


# --- 3. Sessions that outlive logout ----------------------------------------------------------


def test_a_cookie_saved_before_logout_opens_nothing_after_it(app, client):
    make_user(make_org(), "grace")
    _log_in(client, "grace")
    saved = _cookie(client)
    assert client.get("/profile").status_code == 200
    client.post("/logout")
    thief = app.test_client()
    thief.set_cookie("session", saved)
    response = thief.get("/profile")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_changing_the_password_ends_every_other_session_and_token(app, client):
    grace = make_user(make_org(), "grace")
    _log_in(client, "grace")
    laptop = app.test_client()
    _log_in(laptop, "grace")
    _, token = accounts.issue_token(grace)
    _, ci_token = accounts.create_token(grace, "ci", 30)

    response = client.post(
        "/profile/password",
        data={
            "current_password": DEFAULT_PASSWORD,
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302
    page = client.get("/profile").get_data(as_text=True)
    assert "Ended 1 other session and 2 API tokens" in page
    assert client.get("/profile").status_code == 200  # this session stays
    assert laptop.get("/profile").status_code == 302  # the other one ended
    assert accounts.user_for_token(token) is None
    assert accounts.user_for_token(ci_token) is None
    _log_in(app.test_client(), "grace", NEW_PASSWORD)


def test_the_password_change_through_the_api_keeps_only_its_own_token(app, client):
    grace = make_user(make_org(), "grace")
    _log_in(client, "grace")
    _, mine = accounts.issue_token(grace)
    _, other = accounts.issue_token(grace)
    response = client.post(
        "/api/v1/user/password/",
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers={"Authorization": f"Bearer {mine}"},
    )
    assert response.status_code == 200, response.data
    assert response.get_json() == {"ended_sessions": 1, "ended_tokens": 1}
    assert accounts.user_for_token(mine) is not None
    assert accounts.user_for_token(other) is None
    assert client.get("/profile").status_code == 302


def test_a_wrong_current_password_changes_nothing(app, client):
    make_user(make_org(), "grace")
    _log_in(client, "grace")
    response = client.post(
        "/profile/password",
        data={
            "current_password": "not it at all",
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert response.status_code == 422
    assert "This is not your current password." in response.get_data(as_text=True)
    _log_in(app.test_client(), "grace")


def test_deactivation_ends_sessions_and_reactivation_restores_neither_sessions_nor_tokens(
    app, client
):
    org = make_org()
    owner = make_user(org, "olivia")
    bob = make_user(org, "bob", role="member")
    _log_in(client, "bob")
    _, token = accounts.create_token(bob, "ci", 30)
    accounts.deactivate(owner, bob.id)
    assert client.get("/profile").status_code == 302
    accounts.reactivate(owner, bob.id)
    assert client.get("/profile").status_code == 302  # the old session stays ended
    assert accounts.user_for_token(token) is None  # and the old token stays revoked


# --- 10. Host header, HSTS, bidirectional text ------------------------------------------------


@pytest.fixture
def production_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "a-long-production-secret-key")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'prod.db'}")
    monkeypatch.delenv("PUBLIC_URL", raising=False)
    monkeypatch.delenv("TRUSTED_HOSTS", raising=False)
    return monkeypatch


def test_production_refuses_to_start_without_public_url_or_trusted_hosts(production_env):
    with pytest.raises(RuntimeError, match="PUBLIC_URL"):
        create_app("production")


def test_production_refuses_a_public_url_without_a_scheme(production_env):
    production_env.setenv("PUBLIC_URL", "kargo.example.com")
    with pytest.raises(RuntimeError, match="https://"):
        create_app("production")


def test_with_trusted_hosts_a_forged_host_is_refused(production_env):
    import config

    production_env.setenv("TRUSTED_HOSTS", "kargo.example.com")
    # The configuration classes read the environment when config.py is imported.
    production_env.setattr(config.ProductionConfig, "TRUSTED_HOSTS", ["kargo.example.com"])
    app = create_app("production")
    client = app.test_client()
    assert client.get("/login", headers={"Host": "evil.example"}).status_code == 400
    response = client.get("/login", headers={"Host": "kargo.example.com"})
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"] == f"max-age={365 * 24 * 3600}"


def test_links_ignore_the_host_header_when_public_url_is_set(app):
    from app.blueprints import links

    app.config["PUBLIC_URL"] = "https://kargo.example.com/"
    with app.test_request_context("/admin/invites", headers={"Host": "evil.example"}):
        assert links.invite_link("c0de") == "https://kargo.example.com/invite/c0de"
        assert links.password_reset_link("c0de") == "https://kargo.example.com/reset/c0de"


def test_no_hsts_outside_production(client):
    assert "Strict-Transport-Security" not in client.get("/login").headers


BIDI = ["\u202e", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069", "\u200f", "\u061c"]


@pytest.mark.parametrize("char", BIDI)
def test_names_with_bidirectional_controls_are_refused(app, char):
    owner = make_user(make_org(), "olivia")
    name = f"invoice{char}fdp.exe"
    for problem in (
        accounts.display_name_problem(name),
        accounts.organization_name_problem(name),
        accounts.label_problem(name),
        accounts.token_name_problem(name),
    ):
        assert problem and "control characters" in problem
    with pytest.raises(ValidationError):
        accounts.update_profile(owner, name)
    with pytest.raises(ValidationError):
        accounts.create_invite(owner, label=name)
    with pytest.raises(ValidationError):
        accounts.signup("mallory", "long enough pw", name, "Org")
