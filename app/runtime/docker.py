"""The docker driver: one Docker Engine per Kargo cluster, one container per running deployment.

Through the official Docker SDK for Python (only `app.runtime` imports it). A container is
created from the deployment's requests and nothing else the user controls about the host:

- limits: cpu -> NanoCpus, ram -> a memory limit with no swap beyond it, gpu -> a device
  request for that many GPUs (needs the NVIDIA runtime on the engine; not testable here);
  custom kinds are accounting only;
- never privileged, never the host's network or PID namespace, no mounts at all;
  no-new-privileges and a pids limit always;
- ports published on the engine's bind address (127.0.0.1 unless the operator says otherwise);
- no engine restart policy: the reconciler is the one that restarts (and counts restarts).

The container's name is fixed by the install, the deployment and its generation, so a
reconciler that crashed between "create" and writing it down finds the container again (the
engine answers 409 to a second create) instead of making a duplicate.
"""

from __future__ import annotations

import contextlib
import re
import ssl
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.tls
import docker.types
import requests.exceptions

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
from app.runtime.engines import DriverSettings, Engine

API_VERSION = "1.41"  # Docker Engine 20.10 and newer
MIB = 1024 * 1024
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_UNREACHABLE = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    ConnectionError,
    FileNotFoundError,
    TimeoutError,
)


def parse_time(text: str | None) -> datetime | None:
    """Docker's RFC 3339 times with nanoseconds ("2026-11-30T13:50:01.123456789Z") as naive
    UTC; the zero time ("0001-01-01T00:00:00Z") as None."""
    if not text or text.startswith("0001-"):
        return None
    main, _, fraction = text.rstrip("Z").partition(".")
    fraction = re.sub(r"[^0-9].*$", "", fraction)
    try:
        moment = datetime.fromisoformat(main)
    except ValueError:
        return None
    if fraction:
        moment = moment.replace(microsecond=int(fraction[:6].ljust(6, "0")))
    return moment.replace(tzinfo=None)


def clean_line(line: str) -> str:
    return _CONTROL.sub("", line).rstrip()


def explain(exc: Exception) -> str:
    """An engine error in words: Docker's own explanation when it gave one."""
    if isinstance(exc, docker.errors.APIError) and exc.explanation:
        text = exc.explanation
        return text.decode() if isinstance(text, bytes) else str(text)
    return str(exc) or exc.__class__.__name__


def _tls_reason(exc: BaseException) -> str:
    """The TLS library's own words for a refused handshake (the innermost ssl error's), e.g.
    "certificate verify failed: unable to get local issuer certificate"."""
    seen: set[int] = set()
    found: BaseException | None = None
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            found = current
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
        if current.__cause__ is not None:
            pending.append(current.__cause__)
    if found is None:
        return exc.__class__.__name__
    if isinstance(found, ssl.SSLCertVerificationError) and found.verify_message:
        return f"certificate verify failed: {found.verify_message}"
    words = str(found.reason or "").replace("_", " ").lower()
    return words or clean_line(str(found))


def _missing_files(engine: Engine) -> list[str]:
    """The engine's declared TLS files that are not there."""
    declared = (engine.tls_ca, engine.tls_cert, engine.tls_key)
    return [path for path in declared if path and not Path(path).is_file()]


# Container events that end a workload: the reconciler then looks at once.
_ENDING_EVENTS = ("die", "oom", "destroy")
WATCH_BACKOFF_MAX_SECONDS = 30.0


class _EventWatch:
    """A daemon thread following the engine's container events of this install (see
    `DockerDriver.watch`), on a client of its own with no read timeout. While the engine does
    not answer it tries again, waiting twice as long each time up to
    WATCH_BACKOFF_MAX_SECONDS; each reconnection counts as a change (the engine may have ended
    workloads meanwhile)."""

    def __init__(self, driver: DockerDriver, changed: Callable[[], None]) -> None:
        self._driver = driver
        self._changed = changed
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._stream: Any = None
        self._thread = threading.Thread(
            target=self._follow, name=f"kargo-watch-{driver.engine.name}", daemon=True
        )
        self._thread.start()

    def _follow(self) -> None:
        label = f"{LABEL_INSTALL}={self._driver.settings.install_id}"
        filters = {"type": "container", "label": [label], "event": list(_ENDING_EVENTS)}
        wait = 1.0
        lost = False
        while not self._closed.is_set():
            client = None
            try:
                client = self._driver.new_client(None)
                stream = client.events(decode=True, filters=filters)
                with self._lock:
                    if self._closed.is_set():
                        stream.close()
                        return
                    self._stream = stream
                wait = 1.0
                if lost:
                    self._changed()
                for _event in stream:
                    if self._closed.is_set():
                        return
                    self._changed()
            except Exception:  # the engine does not answer, or the stream was closed
                pass
            finally:
                with self._lock:
                    self._stream = None
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.close()
            lost = True
            self._closed.wait(wait)
            wait = min(WATCH_BACKOFF_MAX_SECONDS, wait * 2)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


class DockerDriver:
    name = "docker"

    def __init__(self, engine: Engine, settings: DriverSettings) -> None:
        self.engine = engine
        self.settings = settings
        self._client: docker.DockerClient | None = None

    # -- connection --------------------------------------------------------------------------

    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = self.new_client(self.settings.timeout_seconds)
        return self._client

    def new_client(self, timeout: int | None) -> docker.DockerClient:
        """A client of its own (the cached `client()` serves every short call); `timeout`:
        seconds a read may wait, None for a stream that may stay quiet for hours."""
        engine = self.engine
        missing = _missing_files(engine)
        if missing:
            raise EngineUnreachable(
                f"engine {engine.name}: TLS file not found: {', '.join(missing)}"
            )
        try:
            tls: docker.tls.TLSConfig | bool = False
            if engine.tls_ca:
                tls = docker.tls.TLSConfig(
                    client_cert=(engine.tls_cert, engine.tls_key),
                    ca_cert=engine.tls_ca,
                    verify=engine.tls_verify,
                )
            client = docker.DockerClient(
                base_url=engine.endpoint, version=API_VERSION, timeout=timeout, tls=tls
            )
        except docker.errors.DockerException as exc:
            raise EngineUnreachable(f"engine {engine.name}: {explain(exc)}") from exc
        if engine.tls_ca:
            # The SDK's session would otherwise verify with REQUESTS_CA_BUNDLE (or
            # CURL_CA_BUNDLE) when the environment sets it, ignoring the engine's own CA:
            # requests lets the environment win over a session's `verify`.
            client.api.trust_env = False
        return client

    def watch(self, changed: Callable[[], None]) -> _EventWatch:
        """See `Driver.watch`: the engine's container events labelled with this install."""
        return _EventWatch(self, changed)

    def _call(self, action, *args, **kwargs):
        """Run an SDK call; a connection failure becomes EngineUnreachable."""
        try:
            return action(*args, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise EngineUnreachable(
                f"engine {self.engine.name} at {self.engine.endpoint} refused the TLS "
                f"connection ({_tls_reason(exc)}): check its tls_ca, tls_cert and tls_key"
            ) from exc
        except _UNREACHABLE as exc:
            raise EngineUnreachable(
                f"engine {self.engine.name} at {self.engine.endpoint} does not answer: "
                f"{exc.__class__.__name__}"
            ) from exc
        except docker.errors.DockerException as exc:
            if isinstance(exc, docker.errors.APIError):
                raise
            raise EngineUnreachable(f"engine {self.engine.name}: {explain(exc)}") from exc

    def _labels(self, cluster_id: int) -> list[str]:
        return [f"{LABEL_INSTALL}={self.settings.install_id}", f"{LABEL_CLUSTER}={cluster_id}"]

    # -- the interface -----------------------------------------------------------------------

    def health(self) -> None:
        self._call(self.client().ping)

    def capacity(self) -> Capacity:
        info = self._call(self.client().info)
        amounts = {
            "cpu": int(info.get("NCPU", 0)) * 1000,
            "ram": int(info.get("MemTotal", 0)) // MIB,
        }
        node = {
            "hostname": info.get("Name"),
            "state": "ready",
            "availability": "active",
            "cpu": amounts["cpu"],
            "ram": amounts["ram"],
            "version": info.get("ServerVersion"),
        }
        return Capacity(amounts, (node,))

    def observe(self, cluster_id: int) -> list[Observed]:
        api = self.client().api
        rows = self._call(api.containers, all=True, filters={"label": self._labels(cluster_id)})
        found = []
        for row in rows:
            labels = row.get("Labels") or {}
            try:
                deployment_id = int(labels.get(LABEL_DEPLOYMENT, ""))
            except ValueError:
                deployment_id = 0  # not one of ours to keep: an orphan to remove
            state = row.get("State", "")
            if state == "running":
                found.append(
                    Observed(
                        deployment_id,
                        row["Id"],
                        labels.get(LABEL_GENERATION),
                        "running",
                        ports=self._ports(row.get("Ports") or []),
                    )
                )
                continue
            found.append(self._inspected(deployment_id, row["Id"], labels, state))
        return found

    def _inspected(
        self, deployment_id: int, container_id: str, labels: dict, state: str
    ) -> Observed:
        """A container that is not running: its exit code and why, from an inspect."""
        try:
            details = self._call(self.client().api.inspect_container, container_id)
        except docker.errors.NotFound:
            return Observed(deployment_id, container_id, labels.get(LABEL_GENERATION), "exited")
        status = details.get("State", {})
        exit_code = status.get("ExitCode")
        if state == "created":
            # Made but never started: a start cut short (a reconciler killed between the two
            # calls). Nothing starts it by itself; the reconciler's next start does.
            runtime_status, error = "created", None
        elif state == "restarting":
            runtime_status, error = "restarting", None
        else:
            runtime_status = "exited"
            error = f"exited with code {exit_code}"
            if status.get("OOMKilled"):
                error += " (out of memory: it used more ram than it requested)"
            elif status.get("Error"):
                error += f": {status['Error']}"
        return Observed(
            deployment_id,
            container_id,
            labels.get(LABEL_GENERATION),
            runtime_status,
            exit_code=exit_code,
            started_at=parse_time(status.get("StartedAt")),
            error=error,
        )

    @staticmethod
    def _ports(raw: list[dict]) -> tuple[dict, ...]:
        seen = set()
        ports = []
        for item in raw:
            if not item.get("PublicPort"):
                continue
            key = (item.get("PrivatePort"), item.get("PublicPort"), item.get("Type"))
            if key in seen:  # listed once per address family
                continue
            seen.add(key)
            ports.append(
                {
                    "container": item.get("PrivatePort"),
                    "host": item.get("PublicPort"),
                    "address": item.get("IP") or "0.0.0.0",
                    "protocol": item.get("Type", "tcp"),
                }
            )
        return tuple(sorted(ports, key=lambda p: (p["container"], p["host"])))

    def container_name(self, spec: WorkloadSpec) -> str:
        install = re.sub(r"[^a-zA-Z0-9_.-]", "-", self.settings.install_id)
        return f"kargo-{install}-{spec.deployment_id}-{spec.generation}"

    def needs_pull(self, image: str) -> bool:
        try:
            self._call(self.client().api.inspect_image, image)
        except docker.errors.NotFound:  # ImageNotFound is one
            return True
        except Exception:  # unsure (the engine did not answer): start says what is wrong
            return False
        return False

    def _ensure_image(self, image: str) -> None:
        api = self.client().api
        try:
            self._call(api.inspect_image, image)
            return
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.NotFound:
            pass
        auth = self.engine.registry_auth(image)
        repository, tag = _split_tag(image)
        try:
            self._call(api.pull, repository, tag=tag, auth_config=auth)
        except docker.errors.APIError as exc:
            raise StartFailed(f"image pull failed: {image}: {explain(exc)}", pull=True) from exc

    def start(self, spec: WorkloadSpec) -> Observed:
        api = self.client().api
        name = self.container_name(spec)
        try:
            details = self._call(api.inspect_container, name)
        except docker.errors.NotFound:
            details = None
        if details is None:
            self._ensure_image(spec.image)
            try:
                created = self._call(
                    api.create_container,
                    spec.image,
                    command=list(spec.command) if spec.command else None,
                    name=name,
                    labels=self._spec_labels(spec),
                    environment=dict(spec.env),
                    ports=[(p.container, p.protocol) for p in spec.ports],
                    host_config=self._host_config(spec),
                )
            except docker.errors.APIError as exc:
                if exc.status_code == 409:  # made by a run that crashed before writing it down
                    created = {"Id": name}
                else:
                    raise StartFailed(f"container could not be created: {explain(exc)}") from exc
            container_id = created["Id"]
        else:
            container_id = details["Id"]
        try:
            self._call(api.start, container_id)
        except docker.errors.APIError as exc:
            raise StartFailed(f"container could not start: {explain(exc)}", "failed") from exc
        details = self._call(api.inspect_container, container_id)
        state = details.get("State", {})
        ports = self._ports(_ports_of(details))
        if state.get("Running"):
            return Observed(
                spec.deployment_id,
                details["Id"],
                spec.generation,
                "running",
                started_at=parse_time(state.get("StartedAt")),
                ports=ports,
            )
        return self._inspected(
            spec.deployment_id, details["Id"], details["Config"].get("Labels") or {}, "exited"
        )

    def _spec_labels(self, spec: WorkloadSpec) -> dict[str, str]:
        return {
            LABEL_INSTALL: self.settings.install_id,
            LABEL_CLUSTER: str(spec.cluster_id),
            LABEL_DEPLOYMENT: str(spec.deployment_id),
            LABEL_GENERATION: spec.generation,
            LABEL_NAME: spec.name,
        }

    def _host_config(self, spec: WorkloadSpec) -> dict:
        api = self.client().api
        requests_ = spec.requests
        bindings = {
            f"{p.container}/{p.protocol}": (self.engine.bind_address, p.host)
            if p.host
            else (self.engine.bind_address,)
            for p in spec.ports
        }
        devices = []
        if requests_.get("gpu"):
            devices.append(
                docker.types.DeviceRequest(count=int(requests_["gpu"]), capabilities=[["gpu"]])
            )
        memory = f"{int(requests_['ram'])}m" if requests_.get("ram") else None
        return api.create_host_config(
            port_bindings=bindings,
            nano_cpus=int(requests_.get("cpu", 0)) * 1_000_000 or None,
            mem_limit=memory,
            memswap_limit=memory,
            pids_limit=self.settings.pids_limit,
            security_opt=["no-new-privileges:true"],
            privileged=False,
            network_mode="bridge",
            device_requests=devices or None,
            restart_policy={"Name": "no"},
            init=False,
        )

    def stop(self, workload_id: str, grace_seconds: int) -> None:
        api = self.client().api
        try:
            self._call(api.stop, workload_id, timeout=grace_seconds)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:
            pass  # removing with force below ends it either way
        try:
            self._call(api.remove_container, workload_id, force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: removal already in progress
                raise

    def logs(self, workload_id: str, lines: int) -> list[str]:
        try:
            raw = self._call(self.client().api.logs, workload_id, tail=lines)
        except docker.errors.NotFound:
            return []
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
        return [clean_line(line) for line in text.splitlines()][-lines:]


def _split_tag(image: str) -> tuple[str, str | None]:
    if "@" in image:
        return image, None
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1 :]
    return image, "latest"


def _ports_of(details: dict) -> list[dict]:
    """The published ports of an inspected container, in the list endpoint's shape."""
    out = []
    for key, bindings in (details.get("NetworkSettings", {}).get("Ports") or {}).items():
        private, _, protocol = key.partition("/")
        for binding in bindings or []:
            out.append(
                {
                    "PrivatePort": int(private),
                    "PublicPort": int(binding.get("HostPort") or 0),
                    "IP": binding.get("HostIp"),
                    "Type": protocol or "tcp",
                }
            )
    return out
