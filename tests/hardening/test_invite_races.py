"""Revoking an invite while it is being redeemed never reports both outcomes.

Issue: on PostgreSQL, revoke read the invite without a lock and wrote unconditionally, so an
admin could be told "revoked" although the redemption had just succeeded (6 in 290 trials).
Here the redemption is run deterministically inside that window: just before the revoke's
UPDATE reaches the database, another thread redeems the invite and commits. Exactly one of the
two must win, and the admin must be told the truth.
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from app.models import User
from app.services import accounts
from app.services.errors import Conflict, Gone
from tests.factories import make_org, make_user


@pytest.fixture
def app_config():
    # SQLite: the redemption waits for the revoke's write lock, however slow the machine.
    return {"SQLITE_BUSY_TIMEOUT_SECONDS": 60}


def test_a_redemption_inside_the_revoke_window_is_reported_truthfully(app, db):
    owner = make_user(make_org(), "olivia")
    invite, code = accounts.create_invite(owner, label="Ada")
    revoker = threading.get_ident()
    outcome: dict[str, object] = {}

    def redeem() -> None:
        with app.app_context():
            try:
                outcome["redeemed"] = accounts.redeem_invite(
                    code, "ada", "analytical engine", "Ada"
                ).username
            except Gone as exc:
                outcome["redeemed"] = exc.code
            finally:
                db.session.remove()

    redeemer = threading.Thread(target=redeem)
    # PostgreSQL: the redemption does not wait for the revoke, so wait for it to commit (it
    # hashes a password first: slow on a loaded machine), and the race happens every time.
    # SQLite: it waits for the revoke's write lock, so carry on after a moment.
    inside_the_window = 60 if db.engine.dialect.name == "postgresql" else 1.5

    @event.listens_for(db.engine, "before_cursor_execute")
    def race(conn, cursor, statement, parameters, context, executemany):
        if (
            threading.get_ident() == revoker
            and statement.lstrip().upper().startswith("UPDATE INVITES")
            and not redeemer.is_alive()
            and "redeemed" not in outcome
        ):
            redeemer.start()
            redeemer.join(timeout=inside_the_window)

    try:
        try:
            accounts.revoke_invite(owner, invite.id)
            outcome["revoke"] = "revoked"
        except Conflict as exc:
            outcome["revoke"] = exc.message
    finally:
        redeemer.join(timeout=60)
        event.remove(db.engine, "before_cursor_execute", race)

    users = db.session.scalar(sa.select(sa.func.count(User.id)))
    if outcome["redeemed"] == "ada":  # the redemption won (PostgreSQL)
        assert users == 2
        assert "redeemed by Ada just now" in str(outcome["revoke"])
        assert accounts.invite_status(code)[0] == "used"
    else:  # the revoke won (SQLite's write lock)
        assert outcome == {"revoke": "revoked", "redeemed": "invite_revoked"}
        assert users == 1
        assert accounts.invite_status(code)[0] == "revoked"
