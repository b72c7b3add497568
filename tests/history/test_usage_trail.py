"""The resource trail: usage and queued demand per cluster and kind, recorded at every change
in the scheduling transaction, rolled up when old, read as evenly spaced points and drawn."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from app.models import UsageSample, utcnow
from app.services import clusters, deployments, usage
from app.services.errors import Infeasible, ValidationError
from tests.factories import make_org, make_user

T0 = datetime(2026, 3, 2, 10, 0, 0)


def _trail(db, cluster_id: int) -> list[tuple[dict, dict]]:
    return [
        (row.used, row.queued)
        for row in db.session.scalars(
            sa.select(UsageSample)
            .where(UsageSample.cluster_id == cluster_id)
            .order_by(UsageSample.id)
        )
    ]


@pytest.fixture
def owner(app):
    return make_user(make_org(), role="owner", display_name="Olga")


@pytest.fixture
def pool(owner):
    return clusters.create_cluster(owner, "pool", {"cpu": "4", "gpu": "2"})


def test_every_change_of_usage_or_queue_is_one_row(db, owner, pool) -> None:
    first = deployments.submit(owner, pool.id, "web:1", "a", 100, {"cpu": "3"}).deployment
    waiting = deployments.submit(owner, pool.id, "web:1", "b", 100, {"cpu": "2", "gpu": "1"})
    with pytest.raises(Infeasible):  # refused: nothing changed, nothing recorded
        deployments.submit(owner, pool.id, "web:1", "c", 100, {"cpu": "5"})
    deployments.delete(owner, first.id)  # b starts in its place
    deployments.delete(owner, waiting.deployment.id)

    assert _trail(db, pool.id) == [
        ({"cpu": 0, "gpu": 0}, {}),  # created
        ({"cpu": 3000, "gpu": 0}, {}),
        ({"cpu": 3000, "gpu": 0}, {"cpu": 2000, "gpu": 1}),
        ({"cpu": 2000, "gpu": 1}, {}),
        ({"cpu": 0, "gpu": 0}, {}),
    ]


def test_a_decision_that_changes_nothing_writes_no_row(db, owner, pool) -> None:
    deployments.submit(owner, pool.id, "web:1", "a", 100, {"cpu": "4"})
    queued = deployments.submit(owner, pool.id, "web:1", "b", 100, {"cpu": "1"}).deployment
    rows = len(_trail(db, pool.id))
    deployments.change_priority(owner, queued.id, 50)  # still waits, same demand
    assert len(_trail(db, pool.id)) == rows


def test_the_trail_goes_with_its_cluster(db, owner, pool) -> None:
    deployments.delete_cluster(owner, pool.id)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UsageSample)) == 0


def _row(at, cpu, queued=0, step=0, peak=None):
    return usage.Row(
        at,
        {"cpu": cpu},
        {"cpu": peak if peak is not None else cpu},
        {"cpu": queued} if queued else {},
        {"cpu": 4000},
    )


def test_points_are_time_weighted_means_with_the_peak() -> None:
    rows = [
        _row(T0 - timedelta(minutes=5), 1000),  # holds into the window
        _row(T0 + timedelta(seconds=15), 4000, queued=2000),
        _row(T0 + timedelta(seconds=45), 0),
    ]
    points = usage.buckets(rows, T0, T0 + timedelta(minutes=2), 60)
    first, second = points
    # 15 s at 1000, 30 s at 4000, 15 s at 0 -> 2250; queued 30 s of 60 at 2000 -> 1000
    assert (first.used, first.peak, first.queued) == ({"cpu": 2250}, {"cpu": 4000}, {"cpu": 1000})
    assert first.utilization("cpu") == pytest.approx(56.25)
    assert first.demand("cpu") == 25.0
    assert second.used == {"cpu": 0} and second.covered == 60


def test_before_the_first_row_nothing_is_known() -> None:
    points = usage.buckets(
        [_row(T0 + timedelta(seconds=30), 2000)], T0, T0 + timedelta(minutes=1), 30
    )
    assert points[0].covered == 0 and points[0].utilization("cpu") is None
    assert points[1].utilization("cpu") == 50.0


def _insert(db, cluster_id, rows):
    db.session.execute(
        sa.insert(UsageSample),
        [
            {
                "cluster_id": cluster_id,
                "at": r.at,
                "step": 0,
                "used": dict(r.used),
                "peak": dict(r.peak),
                "queued": dict(r.queued),
                "capacity": dict(r.capacity),
            }
            for r in rows
        ],
    )
    db.session.commit()


def test_compaction_rolls_old_rows_up_and_reads_the_same(app, db, pool) -> None:
    """A busy week of changes every 20 seconds becomes minute, then hour rows; hour-aligned
    windows read the same means before and after, and the newest rows stay exact."""
    db.session.execute(sa.delete(UsageSample))
    now = T0 + timedelta(days=20)
    start = now - timedelta(days=16)
    rows = []
    moment, index = start, 0
    while moment < now:
        rows.append(_row(moment, (index * 700) % 4001, queued=(index % 3) * 500))
        dense = now - timedelta(hours=50) <= moment < now - timedelta(hours=46)
        moment += timedelta(seconds=20 if dense else 1800)
        index += 1
    _insert(db, pool.id, rows)
    window = (now - timedelta(days=16), 3600)
    before = usage.series(pool.id, ["cpu"], *window, until=now)
    recent = usage.series(pool.id, ["cpu"], now - timedelta(hours=6), 60, until=now)

    result = usage.compact(now)
    assert result.rolled_up > 0
    steps = dict(
        db.session.execute(
            sa.select(UsageSample.step, sa.func.count()).group_by(UsageSample.step)
        ).all()
    )
    raw_cut, minute_cut = now - timedelta(hours=48), now - timedelta(days=14)
    assert steps[0] == sum(1 for r in rows if r.at >= raw_cut)
    assert steps[60] == len({usage._floor(r.at, 60) for r in rows if minute_cut <= r.at < raw_cut})
    assert steps[3600] == len({usage._floor(r.at, 3600) for r in rows if r.at < minute_cut})
    after = usage.series(pool.id, ["cpu"], *window, until=now)
    for old, new in zip(before.points, after.points, strict=True):
        assert new.used["cpu"] == pytest.approx(old.used["cpu"], abs=1)
        assert new.queued["cpu"] == pytest.approx(old.queued["cpu"], abs=1)
        assert new.peak == old.peak
    assert usage.series(pool.id, ["cpu"], now - timedelta(hours=6), 60, until=now) == recent
    assert usage.compact(now).rolled_up == 0  # nothing left to roll up


def test_hour_rows_past_retention_are_deleted(app, db, pool, runner) -> None:
    db.session.execute(sa.delete(UsageSample))
    old = utcnow() - timedelta(days=400)
    recent = utcnow() - timedelta(hours=1)
    _insert(db, pool.id, [_row(old, 1000), _row(old + timedelta(minutes=1), 2000), _row(recent, 0)])
    result = runner.invoke(args=["kargo", "prune-history"])
    assert result.exit_code == 0, result.output
    # two change rows -> two minute rows -> one hour row, past the retention: deleted
    assert "Usage trail: rolled up 4 rows, deleted 1 hour rows" in result.output
    assert db.session.scalars(sa.select(UsageSample.step)).all() == [0]


@pytest.mark.parametrize(
    ("since", "step", "field"),
    [
        ("yesterday", None, "since"),
        ("2999-01-01", None, "since"),
        ("0s", None, "since"),
        (None, "0", "step"),
        (None, "5", "step"),
        (None, "fast", "step"),
        ("30d", "10", "step"),  # too many points
    ],
)
def test_bad_windows_are_refused(app, since, step, field) -> None:
    with pytest.raises(ValidationError) as refused:
        usage.parse_window(since, step)
    assert field in refused.value.fields


def test_windows_by_duration_or_time(app) -> None:
    now = T0
    assert usage.parse_window(None, None, now) == (now - timedelta(hours=1), 60)
    assert usage.parse_window("7d", "2h", now) == (now - timedelta(days=7), 7200)
    assert usage.parse_window("2026-03-02T09:30:00Z", "90", now) == (
        datetime(2026, 3, 2, 9, 30),
        90,
    )


def test_cluster_page_draws_the_chart_with_a_text_alternative(client, login_as, owner, pool):
    deployments.submit(owner, pool.id, "web:1", "a", 100, {"cpu": "3"})
    login_as(client, owner)
    page = client.get(f"/clusters/{pool.id}").get_data(as_text=True)
    assert 'class="usage-trail"' in page and "<svg" in page and 'class="line-used"' in page
    assert "cpu (4 cores): 75% used now" in page
    assert '<table class="usage-table">' in page
    day = client.get(f"/clusters/{pool.id}/usage?range=day", headers={"HX-Request": "true"})
    body = day.get_data(as_text=True)
    assert day.status_code == 200 and body.lstrip().startswith("{#") is False
    assert "last day" in body and "<html" not in body
    assert client.get(f"/clusters/{pool.id}/usage?range=forever").status_code == 200  # hour


def test_other_organizations_clusters_are_not_charted(client, login_as, pool):
    stranger = make_user(make_org(), role="owner")
    login_as(client, stranger)
    assert client.get(f"/clusters/{pool.id}/usage").status_code == 404


def test_clusters_list_has_a_sparkline_per_cluster(client, login_as, owner, pool):
    clusters.create_cluster(owner, "idle", {"cpu": "1"})
    deployments.submit(owner, pool.id, "web:1", "a", 100, {"cpu": "2", "gpu": "2"})
    login_as(client, owner)
    page = client.get("/clusters/").get_data(as_text=True)
    assert page.count('class="sparkline"') == 2
    assert "in the last hour." in page
