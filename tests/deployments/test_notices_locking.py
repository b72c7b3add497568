"""Clearing preemption notices never waits for a scheduling transaction (PostgreSQL).

Notices are cleared outside any cluster lock, while a scheduling transaction may hold the same
deployment rows; waiting there could close a deadlock cycle. Busy rows are skipped instead and
their notices shown on a later page.
"""

from __future__ import annotations

import contextlib
import threading

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Deployment
from app.services import deployments
from tests.factories import make_cluster, make_deployment, make_user


@pytest.fixture
def user_with_two_notices(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks with SKIP LOCKED are a PostgreSQL matter; SQLite has one writer")
    user = make_user()
    cluster = make_cluster(user.organization)
    rows = [
        make_deployment(cluster, name=f"victim-{n}", status="pending", created_by=user)
        for n in range(2)
    ]
    for n, row in enumerate(rows):
        row.preemption_notice = f"notice {n}"
    db.session.commit()
    return user, [row.id for row in rows]


def test_a_busy_row_is_skipped_and_its_notice_kept_for_later(user_with_two_notices):
    user, (busy_id, _free_id) = user_with_two_notices
    other = db.engine.connect()
    held = other.begin()
    other.execute(sa.select(Deployment.id).where(Deployment.id == busy_id).with_for_update())
    holder_pid = other.execute(sa.text("SELECT pg_backend_pid()")).scalar()
    engine = db.engine  # read here: the watchdog's thread has no app context

    def end_the_hold() -> None:
        # Only if pop_notices waits on the held row (a bug): this thread holds it, so without
        # this it would wait forever. Ended this way, the row is free and both notices come.
        with engine.connect() as admin:
            admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": holder_pid})

    watchdog = threading.Timer(60, end_the_hold)
    watchdog.start()
    try:
        # Only "notice 1": the busy row's notice was skipped, not waited for.
        assert deployments.pop_notices(user) == ["notice 1"]
    finally:
        watchdog.cancel()
        watchdog.join()
        with contextlib.suppress(sa.exc.OperationalError):  # ended by the watchdog
            held.rollback()
        other.close()
    assert deployments.pop_notices(user) == ["notice 0"]
    assert deployments.pop_notices(user) == []
