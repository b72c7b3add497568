"""The simulated runtime: workloads live in this process's memory and "run" at once.

Clusters without an engine never reach a driver at all (resources are accounting only, the
default). An engine declared with `driver = "simulated"` gets this driver: the reconciler's
whole path (observe, start, stop, write back) without Docker, for demos and benchmarks.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from app.runtime.base import Capacity, EngineUnreachable, NoWatch, Observed, WorkloadSpec

DEFAULT_CAPACITY = {"cpu": 64_000, "ram": 256 * 1024}


class SimulatedDriver:
    name = "simulated"

    def __init__(self, capacity: dict[str, int] | None = None) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._workloads: dict[str, tuple[int, Observed]] = {}  # id -> (cluster, observed)
        self.amounts = dict(capacity or DEFAULT_CAPACITY)
        self.down = False  # tests and benchmarks switch the "engine" off
        self.pull_images: set[str] = set()  # images a start would pull (tests)

    def _check(self) -> None:
        if self.down:
            raise EngineUnreachable("the simulated engine is switched off")

    def health(self) -> None:
        self._check()

    def capacity(self) -> Capacity:
        self._check()
        return Capacity(dict(self.amounts), ({"hostname": "simulated", "state": "ready"},))

    def observe(self, cluster_id: int) -> list[Observed]:
        self._check()
        with self._lock:
            return [obs for cluster, obs in self._workloads.values() if cluster == cluster_id]

    def start(self, spec: WorkloadSpec) -> Observed:
        self._check()
        with self._lock:
            workload_id = f"sim-{next(self._ids)}"
            observed = Observed(
                deployment_id=spec.deployment_id,
                workload_id=workload_id,
                generation=spec.generation,
                status="running",
                started_at=datetime.now(UTC).replace(tzinfo=None),
            )
            self._workloads[workload_id] = (spec.cluster_id, observed)
            return observed

    def stop(self, workload_id: str, grace_seconds: int) -> None:
        self._check()
        with self._lock:
            self._workloads.pop(workload_id, None)

    def logs(self, workload_id: str, lines: int) -> list[str]:
        self._check()
        return []

    def watch(self, changed: Callable[[], None]) -> NoWatch:
        return NoWatch()

    def needs_pull(self, image: str) -> bool:
        """Images tests name in `pull_images` are "pulled" by the next start (nothing else)."""
        return image in self.pull_images
