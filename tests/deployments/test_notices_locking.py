"""Clearing preemption notices never waits for a scheduling transaction (PostgreSQL).

Notices are cleared outside any cluster lock, while a scheduling transaction may hold the same
deployment rows; waiting there could close a deadlock cycle. Busy rows are skipped instead and
their notices shown on a later page.
"""

from __future__ import annotations

import time

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
    try:
        started = time.monotonic()
        assert deployments.pop_notices(user) == ["notice 1"]
        assert time.monotonic() - started < 2  # no wait on the held row
    finally:
        held.rollback()
        other.close()
    assert deployments.pop_notices(user) == ["notice 0"]
    assert deployments.pop_notices(user) == []
