"""Engines as the application sees them: the operator's declared engines, one driver per
engine per process, and what pages and the API show of containers and engines.

Owns reading the `deployment_runtime` and `cluster_runtime` tables (the reconciler,
`services.reconcile`, writes them). Clusters ask it to measure an engine when one is created;
deployments ask it for the observed state of their containers and for their logs. Engine calls
made here (capacity, logs) happen outside any transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.extensions import db
from app.models import ClusterRuntime, DeploymentRuntime, utcnow
from app.runtime import engines as engine_config
from app.runtime import registry
from app.runtime.base import Driver, EngineUnreachable

# Docker refuses a memory limit below 6 MiB.
MIN_RAM_MIB = 6


# --------------------------------------------------------------------------------------------
# Engines and drivers of this process (from the operator's configuration)


def engines() -> dict[str, engine_config.Engine]:
    """The declared engines by name, parsed once per app (EngineConfigError when invalid)."""
    cache = current_app.extensions.setdefault("kargo.runtime", {})
    if "engines" not in cache:
        config = current_app.config
        cache["engines"] = engine_config.load(config.get("ENGINES"), config.get("ENGINES_FILE"))
    return cache["engines"]


def driver(engine_name: str) -> Driver:
    """The driver of a declared engine, built once per app; KeyError for an unknown name."""
    cache = current_app.extensions.setdefault("kargo.runtime", {})
    drivers = cache.setdefault("drivers", {})
    if engine_name not in drivers:
        engine = engines()[engine_name]
        config = current_app.config
        drivers[engine_name] = registry.build_driver(
            engine,
            engine_config.DriverSettings(
                install_id=config["RUNTIME_INSTALL_ID"],
                timeout_seconds=config["RUNTIME_ENGINE_TIMEOUT_SECONDS"],
                pids_limit=config["RUNTIME_PIDS_LIMIT"],
                stop_grace_seconds=config["RUNTIME_STOP_GRACE_SECONDS"],
            ),
        )
    return drivers[engine_name]


@dataclass(frozen=True, slots=True)
class EngineChoice:
    name: str
    driver: str
    endpoint: str | None


def engine_choices(organization_id: int) -> list[EngineChoice]:
    """The engines an organization may create clusters on, by name."""
    return [
        EngineChoice(engine.name, engine.driver, engine.endpoint)
        for engine in sorted(engines().values(), key=lambda e: e.name)
        if engine.allows(organization_id)
    ]


def ceiling(engine: engine_config.Engine, amounts: Mapping[str, int]) -> dict[str, int]:
    """What the engine offers, within the operator's declared ceiling."""
    out = {kind: amount for kind, amount in amounts.items() if amount > 0}
    for kind, limit in (engine.capacity or {}).items():
        out[kind] = min(out[kind], limit) if kind in out else limit
    return out


def measure_engine(
    organization_id: int, name: object, errors: dict[str, str]
) -> tuple[str | None, dict[str, int] | None]:
    """(engine name, its capacity) for a new cluster; problems go to errors["engine"]."""
    if not isinstance(name, str) or not name.strip():
        errors["engine"] = "choose an engine"
        return None, None
    engine = engines().get(name.strip())
    if engine is None or not engine.allows(organization_id):
        errors["engine"] = f"no engine named {name.strip()!r} is available to your organization"
        return None, None
    try:
        measured = driver(engine.name).capacity()
    except EngineUnreachable as exc:
        errors["engine"] = f"the engine cannot be reached: {exc}"
        return engine.name, None
    return engine.name, ceiling(engine, measured.amounts)


# --------------------------------------------------------------------------------------------
# What pages and the API show


@dataclass(frozen=True, slots=True)
class RuntimeView:
    status: str
    exit_code: int | None
    restart_count: int
    error: str | None
    container_id: str | None
    started_at: datetime | None
    observed_at: datetime
    ports: tuple[dict[str, Any], ...] = ()

    def describe(self, now: datetime | None = None) -> str:
        """ "container up 3 min", "restarting, 4 restarts", "image pull failed: ..." """
        now = now or utcnow()
        restarts = f"{self.restart_count} restart{'s' * (self.restart_count != 1)}"
        if self.status == "running":
            text = "container up"
            if self.started_at is not None:
                text += " " + _duration(now - self.started_at)
            return text + (f" ({restarts})" if self.restart_count else "")
        if self.status == "restarting":
            return f"restarting, {restarts}" + (f" (last: {self.error})" if self.error else "")
        if self.status == "failed":
            return self.error or "failed"
        if self.status == "exited":
            return self.error or (f"exited with code {self.exit_code}")
        if self.status == "stopped":
            return "container stopped"
        if self.status == "pulling":
            return "pulling the image" + (
                f" (the last attempt: {self.error})" if self.error else ""
            )
        return self.status + (f": {self.error}" if self.error else "")


def _duration(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def _view(row: DeploymentRuntime) -> RuntimeView:
    return RuntimeView(
        status=row.status,
        exit_code=row.exit_code,
        restart_count=row.restart_count,
        error=row.error,
        container_id=row.container_id,
        started_at=row.started_at,
        observed_at=row.observed_at,
        ports=tuple(row.ports or ()),
    )


def views_for(deployment_ids: Iterable[int]) -> dict[int, RuntimeView]:
    ids = list(deployment_ids)
    if not ids:
        return {}
    rows = db.session.scalars(
        sa.select(DeploymentRuntime).where(DeploymentRuntime.deployment_id.in_(ids))
    )
    return {row.deployment_id: _view(row) for row in rows}


@dataclass(frozen=True, slots=True)
class EngineView:
    """A cluster's engine on its page: name, driver, health and nodes."""

    name: str
    driver: str | None
    state: str  # unknown | ok | unreachable | undeclared
    error: str | None
    checked_at: datetime | None
    nodes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.state == "ok"


def engine_view(cluster_id: int, engine_name: str | None) -> EngineView | None:
    """The engine of a cluster as the reconciler last saw it (None: a simulated cluster)."""
    if engine_name is None:
        return None
    declared = engines().get(engine_name)
    row = db.session.get(ClusterRuntime, cluster_id)
    if declared is None:
        return EngineView(engine_name, None, "undeclared", "no longer declared", None)
    if row is None:
        return EngineView(engine_name, declared.driver, "unknown", None, None)
    return EngineView(
        engine_name,
        declared.driver,
        row.engine_state,
        row.engine_error,
        row.checked_at,
        list(row.nodes or []),
    )


@dataclass(frozen=True, slots=True)
class LogsView:
    lines: list[str]
    available: bool
    reason: str | None = None  # why there are no lines


def logs_of(deployment_id: int, engine_name: str | None) -> LogsView:
    """The last RUNTIME_LOG_LINES lines of a deployment's container (no transaction held)."""
    if engine_name is None:
        return LogsView([], False, "This cluster is simulated: nothing runs, so there are no logs.")
    row = db.session.get(DeploymentRuntime, deployment_id)
    db.session.rollback()  # end the read transaction before calling the engine
    if row is None or row.container_id is None:
        return LogsView([], False, "No container yet.")
    try:
        lines = driver(engine_name).logs(row.container_id, current_app.config["RUNTIME_LOG_LINES"])
    except (EngineUnreachable, KeyError) as exc:
        return LogsView([], False, f"The engine cannot be reached: {exc}")
    except Exception as exc:  # an engine error is shown, never a 500
        return LogsView([], False, f"The engine could not give the logs: {exc}")
    return LogsView(lines, True)


@dataclass(frozen=True, slots=True)
class Offer:
    """What an engine would give a new cluster, read from it now (the create form's preview)."""

    engine: str | None
    capacity: dict[str, int] | None
    problem: str | None


def offer(organization_id: int, name: object) -> Offer:
    if not isinstance(name, str) or not name.strip():
        return Offer(None, None, None)  # simulated: the capacity is typed
    errors: dict[str, str] = {}
    engine_name, measured = measure_engine(organization_id, name, errors)
    return Offer(engine_name, measured, errors.get("engine"))
