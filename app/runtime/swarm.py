"""The swarm driver: one Docker Swarm per Kargo cluster, one one-replica service per running
deployment. This is how a Kargo cluster spans many machines.

Reservations and limits both come from the requests (cpu -> NanoCPUs, ram -> bytes, gpu ->
generic resources named "gpu"), so the swarm places a task only where that much is free and the
task can never use more. The swarm itself restarts a task that exits (restart condition
"any"); the driver reports its restarts and the last exit. Capacity is the sum of the ready,
active nodes. The scheduler admits against that pool, which no single node may be able to
hold: a task the swarm cannot place stays pending with "no suitable node (...)", which is
reported as the deployment's runtime condition with the swarm's own reason.

Ports are published in host mode (the ingress routing mesh is not used): on the node that
runs the task, at the requested host port, on every address of that node.
"""

from __future__ import annotations

import re

import docker
import docker.auth
import docker.errors
import docker.types

from app.runtime.base import (
    LABEL_CLUSTER,
    LABEL_DEPLOYMENT,
    LABEL_GENERATION,
    LABEL_INSTALL,
    LABEL_NAME,
    Capacity,
    EngineUnreachable,
    Observed,
    StartFailed,
    WorkloadSpec,
)
from app.runtime.docker import MIB, DockerDriver, clean_line, explain, parse_time
from app.runtime.engines import DriverSettings, Engine

_WAITING = {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting"}
_ENDED = {"complete", "failed", "shutdown", "rejected", "orphaned", "remove"}


class SwarmDriver(DockerDriver):
    """Shares the connection handling of the docker driver; workloads are services."""

    name = "swarm"

    def __init__(self, engine: Engine, settings: DriverSettings) -> None:
        super().__init__(engine, settings)

    def needs_pull(self, image: str) -> bool:
        return False  # the nodes pull; the task's state says "pulling" (observe)

    def client(self) -> docker.DockerClient:
        fresh = self._client is None
        client = super().client()
        if fresh and self.engine.registries:
            # Registry credentials travel with the service (X-Registry-Auth), so every node
            # can pull; the SDK takes them from its auth configuration, set here from the
            # operator's declaration only (never from a docker config file on this machine).
            client.api._auth_configs = docker.auth.AuthConfig(
                {"auths": {host: dict(auth) for host, auth in self.engine.registries.items()}}
            )
        return client

    def capacity(self) -> Capacity:
        api = self.client().api
        try:
            nodes = self._call(api.nodes)
        except docker.errors.APIError as exc:
            raise EngineUnreachable(
                f"engine {self.engine.name} is not a swarm manager: {explain(exc)}"
            ) from exc
        total = {"cpu": 0, "ram": 0}
        listed = []
        for node in nodes:
            resources = node.get("Description", {}).get("Resources", {})
            cpu = int(resources.get("NanoCPUs", 0)) // 1_000_000
            ram = int(resources.get("MemoryBytes", 0)) // MIB
            gpus = sum(
                int(item.get("DiscreteResourceSpec", {}).get("Value", 0))
                for item in resources.get("GenericResources") or []
                if item.get("DiscreteResourceSpec", {}).get("Kind", "").lower() == "gpu"
            )
            state = node.get("Status", {}).get("State", "unknown")
            availability = node.get("Spec", {}).get("Availability", "unknown")
            if state == "ready" and availability == "active":
                total["cpu"] += cpu
                total["ram"] += ram
                if gpus:
                    total["gpu"] = total.get("gpu", 0) + gpus
            listed.append(
                {
                    "id": node.get("ID"),
                    "hostname": node.get("Description", {}).get("Hostname"),
                    "state": state,
                    "availability": availability,
                    "role": node.get("Spec", {}).get("Role"),
                    "cpu": cpu,
                    "ram": ram,
                    **({"gpu": gpus} if gpus else {}),
                }
            )
        return Capacity(total, tuple(sorted(listed, key=lambda n: n["hostname"] or "")))

    def observe(self, cluster_id: int) -> list[Observed]:
        api = self.client().api
        try:
            services = self._call(api.services, filters={"label": self._labels(cluster_id)})
            tasks = self._call(api.tasks, filters={"label": self._labels(cluster_id)})
        except docker.errors.APIError as exc:
            raise EngineUnreachable(
                f"engine {self.engine.name} is not a swarm manager: {explain(exc)}"
            ) from exc
        by_service: dict[str, list[dict]] = {}
        for task in tasks:
            by_service.setdefault(task.get("ServiceID", ""), []).append(task)
        found = []
        for service in services:
            labels = service.get("Spec", {}).get("Labels") or {}
            try:
                deployment_id = int(labels.get(LABEL_DEPLOYMENT, ""))
            except ValueError:
                deployment_id = 0
            found.append(
                self._service_state(
                    deployment_id, service["ID"], labels, by_service.get(service["ID"], [])
                )
            )
        return found

    def _service_state(
        self, deployment_id: int, service_id: str, labels: dict, tasks: list[dict]
    ) -> Observed:
        generation = labels.get(LABEL_GENERATION)
        if not tasks:
            return Observed(deployment_id, service_id, generation, "starting")
        tasks = sorted(tasks, key=lambda t: (t.get("CreatedAt") or "", t.get("ID") or ""))
        newest = tasks[-1]
        status = newest.get("Status", {})
        state = status.get("State", "")
        failures = [t for t in tasks if t.get("Status", {}).get("State") in _ENDED]
        restarts = len(failures)
        ports = tuple(
            sorted(
                {
                    (port.get("TargetPort"), port.get("PublishedPort"), port.get("Protocol", "tcp"))
                    for port in (status.get("PortStatus") or {}).get("Ports") or []
                    if port.get("PublishedPort")
                }
            )
        )
        ports = tuple(
            {"container": target, "host": host, "address": "0.0.0.0", "protocol": protocol}
            for target, host, protocol in ports
        )
        image = (newest.get("Spec", {}).get("ContainerSpec") or {}).get("Image", "").split("@")[0]
        last_exit = None
        last_error = None
        if failures:
            ended = failures[-1].get("Status", {})
            last_exit = (ended.get("ContainerStatus") or {}).get("ExitCode")
            last_error = self._words(ended, last_exit, image)
        if state == "running":
            return Observed(
                deployment_id,
                service_id,
                generation,
                "running",
                started_at=parse_time(status.get("Timestamp")),
                ports=ports,
                engine_restarts=restarts,
                exit_code=last_exit,
            )
        if last_error and last_error.startswith("image pull failed") and state != "running":
            return Observed(
                deployment_id,
                service_id,
                generation,
                "failed",
                error=last_error,
                engine_restarts=restarts,
            )
        if state in _WAITING:
            error = status.get("Err") or None
            if error and "no suitable node" in error:
                error = f"no suitable node: {error}"
            elif error and ("No such image" in error or "pull" in error.lower()):
                error = f"image pull failed: {image}: {error}"
            elif state == "preparing":
                return Observed(
                    deployment_id, service_id, generation, "pulling", engine_restarts=restarts
                )
            elif failures:
                return Observed(
                    deployment_id,
                    service_id,
                    generation,
                    "restarting",
                    exit_code=last_exit,
                    error=last_error,
                    engine_restarts=restarts,
                )
            return Observed(
                deployment_id,
                service_id,
                generation,
                "starting",
                error=error,
                engine_restarts=restarts,
            )
        # The newest task ended; the swarm makes the next one after its restart delay.
        error = self._words(status, last_exit, image)
        return Observed(
            deployment_id,
            service_id,
            generation,
            "failed" if error.startswith("image pull failed") else "restarting",
            exit_code=last_exit,
            error=error,
            engine_restarts=restarts,
        )

    @staticmethod
    def _words(status: dict, exit_code: int | None, image: str) -> str:
        error = status.get("Err") or ""
        if "No such image" in error or "pull access denied" in error:
            return f"image pull failed: {image}: {error}"
        if exit_code is None and (found := re.search(r"non-zero exit \((\d+)\)", error)):
            exit_code = int(found.group(1))
        if exit_code is not None:
            return f"exited with code {exit_code}" + (f": {error}" if error else "")
        return error or status.get("Message") or status.get("State", "ended")

    def service_name(self, spec: WorkloadSpec) -> str:
        install = re.sub(r"[^a-zA-Z0-9-]", "-", self.settings.install_id)
        return f"kargo-{install}-{spec.deployment_id}-{spec.generation}"[:63]

    def start(self, spec: WorkloadSpec) -> Observed:
        api = self.client().api
        name = self.service_name(spec)
        labels = {
            LABEL_INSTALL: self.settings.install_id,
            LABEL_CLUSTER: str(spec.cluster_id),
            LABEL_DEPLOYMENT: str(spec.deployment_id),
            LABEL_GENERATION: spec.generation,
            LABEL_NAME: spec.name,
        }
        try:
            existing = self._call(api.inspect_service, name)
        except docker.errors.NotFound:
            existing = None
        if existing is not None:  # made by a pass that crashed before writing it down
            return Observed(spec.deployment_id, existing["ID"], spec.generation, "starting")
        requests_ = spec.requests
        nano = int(requests_.get("cpu", 0)) * 1_000_000 or None
        memory = int(requests_.get("ram", 0)) * MIB or None
        generic = {"gpu": int(requests_["gpu"])} if requests_.get("gpu") else None
        resources = docker.types.Resources(
            cpu_limit=nano,
            mem_limit=memory,
            cpu_reservation=nano,
            mem_reservation=memory,
            generic_resources=generic,
        )
        resources.setdefault("Limits", {})["Pids"] = self.settings.pids_limit
        container = docker.types.ContainerSpec(
            spec.image,
            command=list(spec.command) if spec.command else None,
            env=dict(spec.env),
            labels=labels,
            stop_grace_period=self.settings.stop_grace_seconds * 1_000_000_000,
        )
        template = docker.types.TaskTemplate(
            container,
            resources=resources,
            restart_policy=docker.types.RestartPolicy(condition="any", delay=2_000_000_000),
        )
        ports = [
            {
                "Protocol": port.protocol,
                "TargetPort": port.container,
                "PublishMode": "host",
                **({"PublishedPort": port.host} if port.host else {}),
            }
            for port in spec.ports
        ]
        try:
            created = self._call(
                api.create_service,
                template,
                name=name,
                labels=labels,
                mode=docker.types.ServiceMode("replicated", 1),
                endpoint_spec={"Mode": "vip", "Ports": ports} if ports else None,
            )
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                existing = self._call(api.inspect_service, name)
                return Observed(spec.deployment_id, existing["ID"], spec.generation, "starting")
            raise StartFailed(f"service could not be created: {explain(exc)}") from exc
        return Observed(spec.deployment_id, created["ID"], spec.generation, "starting")

    def stop(self, workload_id: str, grace_seconds: int) -> None:
        try:
            self._call(self.client().api.remove_service, workload_id)
        except docker.errors.NotFound:
            return

    def logs(self, workload_id: str, lines: int) -> list[str]:
        try:
            raw = self._call(
                self.client().api.service_logs, workload_id, stdout=True, stderr=True, tail=lines
            )
        except docker.errors.NotFound:
            return []
        chunks = []
        for chunk in raw:
            chunks.append(
                chunk.decode("utf-8", errors="replace") if isinstance(chunk, bytes) else str(chunk)
            )
        return [clean_line(line) for line in "".join(chunks).splitlines()][-lines:]
