"""The resource trail: usage, queued demand and capacity of each cluster over time.

Owns the `usage_samples` table. `services.clusters` is its only writer and its only door
(`clusters.record_usage`, `clusters.usage`, `clusters.usage_sparklines`): the deployments
service reaches it through clusters, like any other cluster state, and this module knows
nothing of deployments.

A row is written at every change of usage or queued demand, in the scheduling transaction
that made it (not by polling), and holds the state from its time until the next row. Older
rows are rolled up by `compact` (`flask kargo prune-history`): change rows older than
USAGE_RAW_HOURS into minute rows, minute rows older than USAGE_MINUTE_DAYS into hour rows, hour
rows older than HISTORY_RETENTION_DAYS deleted. A rolled-up row exists only for a bucket that
saw a change, and holds the time-weighted means over its bucket, the bucket's peak and the
state it settled in (which holds until the next row), so means over whole buckets read the
same before and after. A year of a cluster is at most 8,760 hour rows.

Reading (`series`) turns the rows into evenly spaced points, each the time-weighted mean over
its step (and the peak seen), for the charts and `GET /api/v1/cluster/<id>/usage/`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import aliased

from app.extensions import db
from app.models import UsageSample, utcnow
from app.services.errors import ValidationError

CHANGE, MINUTE, HOUR = 0, 60, 3600
DURATION = re.compile(r"([0-9]{1,7})([smhd])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class Row:
    """One sample as the bucketing reads it: the state from `at` on."""

    at: datetime
    used: Mapping[str, int]
    peak: Mapping[str, int]
    queued: Mapping[str, int]
    capacity: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Point:
    """The state over [at, at + step): time-weighted means, the peak, the latest capacity.

    `covered` is how many seconds of the step the trail knows (0 before the cluster existed).
    """

    at: datetime
    used: dict[str, int]
    peak: dict[str, int]
    queued: dict[str, int]
    capacity: dict[str, int]
    covered: float

    def utilization(self, kind: str) -> float | None:
        """Mean use of `kind` over the step, in percent of its capacity (None: unknown)."""
        capacity = self.capacity.get(kind)
        if not self.covered or not capacity:
            return None
        return 100.0 * self.used.get(kind, 0) / capacity

    def demand(self, kind: str) -> float | None:
        """Mean queued demand of `kind`, in percent of its capacity (may exceed 100)."""
        capacity = self.capacity.get(kind)
        if not self.covered or not capacity:
            return None
        return 100.0 * self.queued.get(kind, 0) / capacity


@dataclass(frozen=True, slots=True)
class Series:
    since: datetime
    until: datetime
    step: int  # seconds
    kinds: tuple[str, ...]
    points: list[Point]
    queued_now: dict[str, int]  # the queued demand of the newest row (what waits now)


# --- writing ------------------------------------------------------------------------------


def record(
    cluster_id: int,
    used: Mapping[str, int],
    queued: Mapping[str, int],
    capacity: Mapping[str, int],
    at: datetime | None = None,
) -> None:
    """Add a change row to the current transaction (the caller commits it with the change)."""
    db.session.execute(
        sa.insert(UsageSample),
        [
            {
                "cluster_id": cluster_id,
                "at": at or utcnow(),
                "step": CHANGE,
                "used": dict(used),
                "peak": dict(used),
                "queued": {kind: amount for kind, amount in queued.items() if amount},
                "capacity": dict(capacity),
            }
        ],
    )


def forget(cluster_id: int) -> None:
    """Delete a cluster's trail (the cluster is being deleted in this transaction)."""
    db.session.execute(
        sa.delete(UsageSample)
        .where(UsageSample.cluster_id == cluster_id)
        .execution_options(synchronize_session=False)
    )


# --- the window a reader asks for -------------------------------------------------------------


def _seconds(text: str) -> int | None:
    """'90', '90s', '15m', '2h', '7d' -> seconds; None when it is none of these."""
    text = text.strip().lower()
    if text.isascii() and text.isdigit() and len(text) <= 9:
        return int(text)
    match = DURATION.fullmatch(text)
    if match is None:
        return None
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def parse_window(
    since: str | None, step: str | None, now: datetime | None = None
) -> tuple[datetime, int]:
    """(since as naive UTC, step in seconds) from query text; ValidationError naming the field.

    `since`: a time in ISO 8601 (UTC without an offset) or a duration back from now ("1h",
    "7d"); default one hour. `step`: seconds, or a duration ("5m"); default a minute, at least
    USAGE_MIN_STEP_SECONDS. The window may hold at most USAGE_MAX_POINTS steps.
    """
    config = current_app.config
    now = now or utcnow()
    errors: dict[str, str] = {}
    start = now - timedelta(hours=1)
    if since is not None and since.strip():
        back = _seconds(since)
        if back is not None:
            if back <= 0 or back > 3650 * 86400:
                errors["since"] = "must be a duration from 1 second to 10 years back"
            else:
                start = now - timedelta(seconds=back)
        else:
            try:
                moment = datetime.fromisoformat(since.strip().replace("Z", "+00:00"))
                if moment.tzinfo is not None:
                    moment = moment.astimezone(UTC).replace(tzinfo=None)
            except (ValueError, OverflowError):
                errors["since"] = "must be a time in ISO 8601 or a duration such as 1h or 7d"
            else:
                if moment >= now:
                    errors["since"] = "must be in the past"
                else:
                    start = moment
    seconds = 60
    minimum = config["USAGE_MIN_STEP_SECONDS"]
    if step is not None and step.strip():
        parsed = _seconds(step)
        if parsed is None:
            errors["step"] = "must be a number of seconds or a duration such as 5m"
        elif parsed < minimum or parsed > 86400 * 31:
            errors["step"] = f"must be from {minimum} seconds to 31 days"
        else:
            seconds = parsed
    if not errors:
        points = -(-int((now - start).total_seconds()) // seconds)
        if points > config["USAGE_MAX_POINTS"]:
            errors["step"] = (
                f"gives {points} points over this window; at most {config['USAGE_MAX_POINTS']} "
                "(choose a larger step or a later since)"
            )
    if errors:
        raise ValidationError(
            "Check the window: " + "; ".join(f"{k} {v}" for k, v in errors.items()), errors
        )
    return start, seconds


# --- reading ------------------------------------------------------------------------------


def _expand(sample: UsageSample) -> list[Row]:
    """A stored row as the step function reads it: a change row holds until the next row; a
    rolled-up row holds its means over its bucket, then the state it settled in."""
    rows = [Row(sample.at, sample.used, sample.peak, sample.queued, sample.capacity)]
    if sample.step and sample.settled is not None:
        used = sample.settled.get("used", {})
        queued = sample.settled.get("queued", {})
        end = sample.at + timedelta(seconds=sample.step)
        rows.append(Row(end, used, used, queued, sample.capacity))
    return rows


def _rows(cluster_ids: Sequence[int], since: datetime, until: datetime) -> dict[int, list[Row]]:
    """Each cluster's rows in [since, until), preceded by the last row before `since`."""
    # One statement: each cluster's rows from the newest one before `since` (the state coming
    # into the window) up to `until`.
    earlier = aliased(UsageSample)
    carried_from = (
        sa.select(sa.func.max(earlier.at))
        .where(earlier.cluster_id == UsageSample.cluster_id, earlier.at < since)
        .scalar_subquery()
    )
    samples = db.session.scalars(
        sa.select(UsageSample)
        .where(
            UsageSample.cluster_id.in_(cluster_ids),
            UsageSample.at >= sa.func.coalesce(carried_from, since),
            UsageSample.at < until,
        )
        .order_by(UsageSample.cluster_id, UsageSample.at, UsageSample.id)
    )
    result: dict[int, list[Row]] = {cluster_id: [] for cluster_id in cluster_ids}
    for sample in samples:
        result[sample.cluster_id].extend(_expand(sample))
    for rows in result.values():
        rows.sort(key=lambda row: row.at)  # a bucket's settled state may follow a change row
    return result


def buckets(rows: Sequence[Row], since: datetime, until: datetime, step: int) -> list[Point]:
    """Evenly spaced points from a step function of rows (sorted by time).

    Each row holds from its time until the next row's; the last holds until `until`. A point
    is the time-weighted mean over the part of its step the rows cover, the largest peak of
    the rows that hold during it, and the capacity of the last of them.
    """
    count = max(1, -(-int((until - since).total_seconds()) // step))
    starts = [since + timedelta(seconds=step * index) for index in range(count)]
    sums_used: list[dict[str, float]] = [{} for _ in starts]
    sums_queued: list[dict[str, float]] = [{} for _ in starts]
    peaks: list[dict[str, int]] = [{} for _ in starts]
    capacity: list[dict[str, int]] = [{} for _ in starts]
    covered = [0.0] * count
    for index, row in enumerate(rows):
        begin = max(row.at, since)
        end = min(rows[index + 1].at if index + 1 < len(rows) else until, until)
        if end <= begin:
            continue
        first = int((begin - since).total_seconds() // step)
        last = min(count - 1, int(((end - since).total_seconds() - 1e-9) // step))
        for bucket in range(first, last + 1):
            low = max(begin, starts[bucket])
            high = min(end, starts[bucket] + timedelta(seconds=step))
            seconds = (high - low).total_seconds()
            if seconds <= 0:
                continue
            covered[bucket] += seconds
            for kind, amount in row.used.items():
                sums_used[bucket][kind] = sums_used[bucket].get(kind, 0.0) + amount * seconds
            for kind, amount in row.queued.items():
                sums_queued[bucket][kind] = sums_queued[bucket].get(kind, 0.0) + amount * seconds
            for kind, amount in row.peak.items():
                peaks[bucket][kind] = max(peaks[bucket].get(kind, 0), amount)
            capacity[bucket] = dict(row.capacity)
    points = []
    for bucket, start in enumerate(starts):
        span = covered[bucket]
        kinds = capacity[bucket]
        points.append(
            Point(
                at=start,
                used={k: round(sums_used[bucket].get(k, 0.0) / span) if span else 0 for k in kinds},
                peak={k: peaks[bucket].get(k, 0) for k in kinds},
                queued={
                    k: round(sums_queued[bucket].get(k, 0.0) / span) if span else 0 for k in kinds
                },
                capacity=kinds,
                covered=span,
            )
        )
    return points


def series(
    cluster_id: int, kinds: Iterable[str], since: datetime, step: int, until: datetime | None = None
) -> Series:
    until = until or utcnow()
    rows = _rows([cluster_id], since, until)[cluster_id]
    queued_now = dict(rows[-1].queued) if rows else {}
    return Series(since, until, step, tuple(kinds), buckets(rows, since, until, step), queued_now)


def many(
    cluster_ids: Sequence[int], since: datetime, step: int, until: datetime | None = None
) -> dict[int, list[Point]]:
    """Points of several clusters at once, in one query (the clusters list's sparklines)."""
    until = until or utcnow()
    if not cluster_ids:
        return {}
    rows = _rows(list(cluster_ids), since, until)
    return {cluster_id: buckets(rows[cluster_id], since, until, step) for cluster_id in rows}


# --- compaction -----------------------------------------------------------------------------


def _floor(moment: datetime, step: int) -> datetime:
    epoch = datetime(2000, 1, 1)
    seconds = int((moment - epoch).total_seconds())
    return epoch + timedelta(seconds=seconds - seconds % step)


def _roll_up(cluster_id: int, level: int, into: int, cut: datetime) -> int:
    """Replace the cluster's `level` rows before `cut` by one `into` row per bucket that holds
    any of them (its means, its peak and the state it settled in); rows removed."""
    cut = _floor(cut, into)
    samples = list(
        db.session.scalars(
            sa.select(UsageSample)
            .where(
                UsageSample.cluster_id == cluster_id,
                UsageSample.step == level,
                UsageSample.at < cut,
            )
            .order_by(UsageSample.at, UsageSample.id)
        )
    )
    if not samples:
        return 0
    # The state coming into the first bucket: the newest row before it, of any level.
    carry = db.session.scalar(
        sa.select(UsageSample)
        .where(
            UsageSample.cluster_id == cluster_id,
            UsageSample.at < _floor(samples[0].at, into),
        )
        .order_by(UsageSample.at.desc(), UsageSample.id.desc())
        .limit(1)
    )
    rows = _expand(carry) if carry is not None else []
    for sample in samples:
        rows.extend(_expand(sample))
    rows.sort(key=lambda row: row.at)
    inserts = []
    for bucket_start in sorted({_floor(sample.at, into) for sample in samples}):
        bucket_end = bucket_start + timedelta(seconds=into)
        (point,) = buckets(rows, bucket_start, bucket_end, into)
        last = [row for row in rows if row.at < bucket_end][-1]
        inserts.append(
            {
                "cluster_id": cluster_id,
                "at": bucket_start,
                "step": into,
                "used": point.used,
                "peak": point.peak,
                "queued": {k: v for k, v in point.queued.items() if v},
                "capacity": point.capacity,
                "settled": {"used": dict(last.used), "queued": dict(last.queued)},
            }
        )
    db.session.execute(
        sa.delete(UsageSample)
        .where(UsageSample.id.in_([s.id for s in samples]))
        .execution_options(synchronize_session=False)
    )
    db.session.execute(sa.insert(UsageSample), inserts)
    return len(samples)


@dataclass(frozen=True, slots=True)
class Compacted:
    rolled_up: int  # rows replaced by coarser ones
    deleted: int  # hour rows past the retention


def compact(now: datetime | None = None) -> Compacted:
    """Roll up and expire the trail of every cluster, one cluster per transaction."""
    config = current_app.config
    now = now or utcnow()
    raw_cut = now - timedelta(hours=config["USAGE_RAW_HOURS"])
    minute_cut = now - timedelta(days=config["USAGE_MINUTE_DAYS"])
    expired = now - timedelta(days=config["HISTORY_RETENTION_DAYS"])
    cluster_ids = list(db.session.scalars(sa.select(UsageSample.cluster_id).distinct()))
    db.session.commit()
    rolled = 0
    for cluster_id in cluster_ids:
        rolled += _roll_up(cluster_id, CHANGE, MINUTE, raw_cut)
        rolled += _roll_up(cluster_id, MINUTE, HOUR, minute_cut)
        db.session.commit()
    deleted = db.session.execute(
        sa.delete(UsageSample)
        .where(UsageSample.step == HOUR, UsageSample.at < expired)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return Compacted(rolled, deleted or 0)
