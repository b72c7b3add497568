"""The one interface every runtime driver implements, and the values it speaks in.

A driver makes one engine (a Docker Engine, a Docker Swarm, or nothing at all for the
simulated runtime) run what the scheduler decided. It knows no database and no Flask: the
reconciler (`app.services.runtime`) reads the desired state, calls a driver outside any
transaction, and writes what it observed back. Every call is idempotent, so a reconciler that
crashed half way simply calls again.

Workloads are found by labels, never by a list kept elsewhere: `kargo.install` (this Kargo
installation), `kargo.cluster`, `kargo.deployment` and `kargo.generation` (the scheduler's start
that the container was made for; a container of an earlier run is replaced, never reused).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

LABEL_INSTALL = "kargo.install"
LABEL_CLUSTER = "kargo.cluster"
LABEL_DEPLOYMENT = "kargo.deployment"
LABEL_GENERATION = "kargo.generation"
LABEL_NAME = "kargo.name"


class EngineUnreachable(Exception):
    """The engine did not answer (socket gone, daemon stopped, TLS refused); in words."""


class StartFailed(Exception):
    """A workload could not be started; `reason` in words ("image pull failed: ..."),
    `status` the runtime status to show ("failed" for a pull failure, "exited" ...)."""

    def __init__(self, reason: str, status: str = "failed", pull: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.pull = pull


@dataclass(frozen=True, slots=True)
class PortSpec:
    container: int
    host: int | None = None  # None: the engine picks a free port
    protocol: str = "tcp"


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """Everything a driver needs to run one deployment, from the database's desired state."""

    deployment_id: int
    cluster_id: int
    name: str
    image: str
    generation: str
    requests: Mapping[str, int]  # base units: cpu millicores, ram MiB, gpu units
    ports: Sequence[PortSpec] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    command: Sequence[str] | None = None


@dataclass(frozen=True, slots=True)
class Observed:
    """One workload as the engine reports it.

    `status`: starting, pulling, running, restarting, failed, exited, or created (docker: a
    container made but never started, which the reconciler starts). `error` says why in
    words when it is not running (an exit, "no suitable node: ...").
    """

    deployment_id: int
    workload_id: str
    generation: str | None
    status: str
    exit_code: int | None = None
    started_at: datetime | None = None
    error: str | None = None
    ports: tuple[dict[str, Any], ...] = ()
    engine_restarts: int = 0


@dataclass(frozen=True, slots=True)
class Capacity:
    """What an engine offers: kind -> base units, and its nodes for the cluster page."""

    amounts: dict[str, int]
    nodes: tuple[dict[str, Any], ...] = ()


class Driver(Protocol):
    """observe, start, stop, capacity, logs, health: all idempotent, all outside transactions."""

    name: str

    def health(self) -> None:
        """Return when the engine answers; raise EngineUnreachable otherwise."""

    def capacity(self) -> Capacity:
        """The engine's resources (raise EngineUnreachable)."""

    def observe(self, cluster_id: int) -> list[Observed]:
        """Every workload of this install on the cluster, found by labels."""

    def start(self, spec: WorkloadSpec) -> Observed:
        """Create and start the workload (or start it again); raise StartFailed."""

    def stop(self, workload_id: str, grace_seconds: int) -> None:
        """Stop (with a grace period) and remove; a workload already gone is fine."""

    def needs_pull(self, image: str) -> bool:
        """Will `start` have to pull this image first (so the deployment shows "pulling")?
        False when unsure or when the engine pulls by itself (swarm reports it)."""

    def logs(self, workload_id: str, lines: int) -> list[str]:
        """The last `lines` lines of output, oldest first ([] when there are none)."""

    def watch(self, changed: Callable[[], None]) -> Watch:
        """Follow the engine's events from a thread of its own, calling `changed()` when a
        workload of this install ends (exits, is killed or removed) and when the engine comes
        back after a loss, so the reconciler looks at once instead of at its next resync.
        Never raises; the returned watch's `close()` stops it."""


class Watch(Protocol):
    def close(self) -> None:
        """Stop following (the thread ends soon after; nothing is called any more)."""


class NoWatch:
    """A driver with no events to follow (the reconciler's resync is enough)."""

    def close(self) -> None:
        return None
