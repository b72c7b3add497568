"""Live reconcilers share the clusters' leases instead of the first one taking them all.

Each loop says it is alive at every pass; a reconciler takes new leases only up to its share
(clusters / live reconcilers, rounded up) and gives back what is beyond it, highest ids first,
so a newcomer takes it at its next pass. A one-off pass (`reconcile --once`) takes what is
free and does not count as a live reconciler. A clean shutdown gives everything back.
"""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from app.extensions import db as _db
from app.models import ClusterRuntime, ReconcilerPresence
from app.services import clusters, reconcile
from tests.factories import make_org, make_user


@pytest.fixture
def app_config():
    return {
        "ENGINES": {"sim": {"driver": "simulated", "capacity": {"cpu": "8", "ram": "8"}}},
        "RUNTIME_INSTALL_ID": "unit",
    }


@pytest.fixture
def engine_clusters(app):
    owner = make_user(make_org(), role="owner")
    return [clusters.create_cluster(owner, f"sim{i}", {}, 10, engine="sim").id for i in range(5)]


def pass_of(app, holder: str, share: bool = True) -> set[int]:
    """The clusters a pass of `holder` reconciled."""
    with app.app_context():
        reports = reconcile.run_pass(holder, share=share)
        _db.session.rollback()
    return {report.cluster_id for report in reports if not report.skipped}


def holders() -> dict[int, str | None]:
    _db.session.rollback()
    rows = _db.session.execute(sa.select(ClusterRuntime.cluster_id, ClusterRuntime.holder))
    return {cluster_id: holder for cluster_id, holder in rows}


def test_a_newcomer_gets_its_share_at_its_second_pass(app, engine_clusters, caplog):
    assert pass_of(app, "a") == set(engine_clusters)  # alone: every cluster
    assert pass_of(app, "b") == set()  # everything is held; it is now counted as live
    with caplog.at_level(logging.INFO):
        first = pass_of(app, "a")  # two live: a keeps 3 of 5, gives back the two highest ids
    assert first == set(engine_clusters[:3])
    said = [r.getMessage() for r in caplog.records if "gives back" in r.getMessage()]
    assert said == [
        f"reconciler a gives back cluster {c}: its share is 3 of 5 clusters"
        for c in engine_clusters[3:]
    ]
    assert pass_of(app, "b") == set(engine_clusters[3:])
    # Stable from then on, and never two holders for one cluster.
    assert pass_of(app, "a") == first and pass_of(app, "b") == set(engine_clusters[3:])
    owners = holders()
    assert [owners[c] for c in engine_clusters] == ["a", "a", "a", "b", "b"]


def test_a_clean_shutdown_hands_everything_to_the_others(app, engine_clusters):
    pass_of(app, "a")
    pass_of(app, "b")
    pass_of(app, "a")
    pass_of(app, "b")
    with app.app_context():
        reconcile.release_leases("b")
    assert _db.session.get(ReconcilerPresence, "b") is None
    assert pass_of(app, "a") == set(engine_clusters)


def test_a_one_off_pass_takes_what_is_free_and_is_not_counted(app, engine_clusters):
    pass_of(app, "a")
    assert pass_of(app, "once", share=False) == set()  # everything is held by a
    _db.session.rollback()
    assert _db.session.get(ReconcilerPresence, "once") is None
    assert pass_of(app, "a") == set(engine_clusters)  # still alone: it keeps them all
