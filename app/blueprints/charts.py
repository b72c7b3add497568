"""Server-rendered SVG charts of the resource trail: geometry only, no data access.

The services hand over percentages per point (`clusters.UsageView`, the sparklines); this
module turns them into SVG coordinates, gridlines, labels and a text alternative, so the
templates (`clusters/_usage.html`, `clusters/_sparkline.html`) only place strings. Colours
come from CSS classes (app.css), so the charts follow the light and dark themes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app import quantities
from app.services import clusters

# The windows the cluster page offers: name -> (label, since, step).
RANGES = {
    "hour": ("Last hour", "1h", "60"),
    "day": ("Last day", "24h", "15m"),
    "week": ("Last week", "7d", "2h"),
}
DEFAULT_RANGE = "hour"
WIDTH, HEIGHT = 600, 140
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 8, 22
SPARK_WIDTH, SPARK_HEIGHT = 120, 28


def chosen_range(raw: str | None) -> str:
    return raw if raw in RANGES else DEFAULT_RANGE


def _segments(
    values: Sequence[float | None], x0: float, width: float, y0: float, height: float, top: float
) -> list[str]:
    """Polyline point lists for `values` (gaps where a value is None), scaled to 0..top."""
    count = len(values)
    step = width / max(count - 1, 1)
    lines: list[str] = []
    current: list[str] = []
    for index, value in enumerate(values):
        if value is None:
            if current:
                lines.append(" ".join(current))
            current = []
            continue
        x = x0 + index * step
        y = y0 + height - min(value, top) / top * height
        current.append(f"{x:.1f},{y:.1f}")
    if current:
        lines.append(" ".join(current))
    # A single point draws nothing as a polyline: widen it into a short flat line.
    return [line if " " in line else _widen(line) for line in lines]


def _widen(point: str) -> str:
    x, y = (float(part) for part in point.split(","))
    return f"{x - 2:.1f},{y:.1f} {x + 2:.1f},{y:.1f}"


def _percent(value: float | None) -> str:
    return "no data" if value is None else f"{value:.0f}%"


@dataclass(frozen=True, slots=True)
class Gridline:
    y: float
    label: str


@dataclass(frozen=True, slots=True)
class KindChart:
    kind: str
    title: str
    used: list[str]  # polyline point lists (a gap splits the line)
    demand: list[str]
    gridlines: list[Gridline]
    summary: str


@dataclass(frozen=True, slots=True)
class TableRow:
    at: datetime
    cells: list[tuple[str, str]]  # (utilization, queued demand) per kind


@dataclass(frozen=True, slots=True)
class UsageChart:
    cluster_id: int
    range: str
    ranges: list[tuple[str, str]]  # (name, label)
    width: int
    height: int
    x_labels: list[tuple[float, str]]
    charts: list[KindChart]
    kinds: list[str]
    table: list[TableRow]
    empty: bool


def usage_chart(view: clusters.UsageView, range_name: str) -> UsageChart:
    """The cluster page's chart: one small chart per kind, utilization and queued demand."""
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    charts = []
    for line in view.kinds:
        highest_demand = max((v for v in line.demand if v is not None), default=0.0)
        top = 100.0 if highest_demand <= 100 else float(-(-int(highest_demand) // 50) * 50)
        gridlines = [
            Gridline(TOP + plot_height - fraction * plot_height, f"{fraction * top:.0f}%")
            for fraction in (0.0, 0.5, 1.0)
        ]
        unit = quantities.unit_label(line.kind)
        capacity = quantities.format_number(line.kind, line.capacity)
        summary = (
            f"{line.kind} ({capacity} {unit}): {_percent(line.now)} used now, "
            f"{_percent(line.mean)} on average and {_percent(line.highest)} at the highest in "
            f"this window; queued demand now {_percent(line.queued_now)} of capacity."
        )
        charts.append(
            KindChart(
                kind=line.kind,
                title=f"{line.kind} utilization and queued demand, {RANGES[range_name][0].lower()}",
                used=_segments(line.utilization, LEFT, plot_width, TOP, plot_height, top),
                demand=_segments(line.demand, LEFT, plot_width, TOP, plot_height, top),
                gridlines=gridlines,
                summary=summary,
            )
        )
    count = len(view.times)
    step = plot_width / max(count - 1, 1)
    every = max(1, count // 4)
    fmt = "%H:%M" if range_name != "week" else "%a %H:%M"
    x_labels = [
        (LEFT + index * step, moment.strftime(fmt))
        for index, moment in enumerate(view.times)
        if index % every == 0
    ]
    table = [
        TableRow(
            at=moment,
            cells=[
                (_percent(line.utilization[index]), _percent(line.demand[index]))
                for line in view.kinds
            ],
        )
        for index, moment in enumerate(view.times)
    ]
    return UsageChart(
        cluster_id=view.cluster_id,
        range=range_name,
        ranges=[(name, label) for name, (label, _, _) in RANGES.items()],
        width=WIDTH,
        height=HEIGHT,
        x_labels=x_labels,
        charts=charts,
        kinds=[line.kind for line in view.kinds],
        table=table,
        empty=all(point.covered == 0 for point in view.points),
    )


@dataclass(frozen=True, slots=True)
class Sparkline:
    points: list[str]
    width: int
    height: int
    label: str  # the text alternative


def sparklines(lines: dict[int, list[float | None]]) -> dict[int, Sparkline]:
    """The clusters list's small line per cluster: mean utilization over the last day."""
    result = {}
    for cluster_id, values in lines.items():
        known = [value for value in values if value is not None]
        if known:
            label = (
                f"Mean utilization over the last day: {min(known):.0f}% to {max(known):.0f}%, "
                f"{known[-1]:.0f}% in the last hour."
            )
        else:
            label = "No utilization recorded in the last day."
        result[cluster_id] = Sparkline(
            points=_segments(values, 1, SPARK_WIDTH - 2, 2, SPARK_HEIGHT - 4, 100.0),
            width=SPARK_WIDTH,
            height=SPARK_HEIGHT,
            label=label,
        )
    return result
