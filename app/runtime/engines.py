"""Engines: the operator's declaration of the Docker endpoints Kargo may run containers on.

A Docker endpoint is root on its host, so users never type one in: the operator declares each
engine in configuration (`ENGINES`, or a TOML file named by `ENGINES_FILE`), and owners pick
one by name when they create a cluster. One engine per cluster:

    [engines.local]
    driver = "docker"                      # docker | swarm | simulated
    endpoint = "unix:///var/run/docker.sock"
    organizations = "*"                    # or a list of organization ids: [1, 4]
    bind_address = "127.0.0.1"             # where published ports listen (docker driver)
    tls_ca = "/etc/kargo/ca.pem"           # tcp endpoints: TLS files (all three, or none)
    tls_cert = "/etc/kargo/cert.pem"
    tls_key = "/etc/kargo/key.pem"
    [engines.local.capacity]               # optional ceiling on what the engine offers
    cpu = "2"
    ram = "4"
    [engines.local.registries."registry.example.com"]
    username = "kargo"
    password = "secret"

This module parses and checks that declaration (`parse`) and builds a driver for an engine
(`build_driver`); it knows no database and no Flask.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app import quantities

DRIVERS = ("docker", "swarm", "simulated")
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


class EngineConfigError(ValueError):
    """The operator's engine declaration cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Engine:
    name: str
    driver: str
    endpoint: str | None = None
    organizations: tuple[int, ...] | None = None  # None: every organization
    bind_address: str = "127.0.0.1"
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_verify: bool = True
    capacity: dict[str, int] | None = None  # the operator's ceiling, base units
    registries: dict[str, dict[str, str]] = field(default_factory=dict)

    def allows(self, organization_id: int) -> bool:
        return self.organizations is None or organization_id in self.organizations

    def registry_auth(self, image: str) -> dict[str, str] | None:
        """The credentials declared for the registry an image reference names, if any."""
        first, slash, _rest = image.partition("/")
        host = first if slash and ("." in first or ":" in first or first == "localhost") else ""
        return self.registries.get(host or "docker.io")


def load(raw: Mapping[str, Any] | None, path: str | None) -> dict[str, Engine]:
    """The engines of the configuration: `raw` (a mapping, as ENGINES) merged over the
    `[engines.*]` tables of the TOML file at `path`. Raises EngineConfigError."""
    tables: dict[str, Any] = {}
    if path:
        try:
            with Path(path).open("rb") as handle:
                document = tomllib.load(handle)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise EngineConfigError(f"ENGINES_FILE {path}: {exc}") from exc
        tables.update(document.get("engines", {}))
    tables.update(raw or {})
    return parse(tables)


def parse(tables: Mapping[str, Any]) -> dict[str, Engine]:
    engines = {}
    for name, table in tables.items():
        if not isinstance(name, str) or not name or not set(name) <= _NAME_CHARS:
            raise EngineConfigError(
                f"engine name {name!r}: use lowercase letters, digits, '-' and '_'"
            )
        if len(name) > 63:
            raise EngineConfigError(f"engine name {name!r} is longer than 63 characters")
        if not isinstance(table, Mapping):
            raise EngineConfigError(f"engine {name}: expected a table of settings")
        engines[name] = _engine(name, table)
    return engines


def _engine(name: str, table: Mapping[str, Any]) -> Engine:
    known = {
        "driver",
        "endpoint",
        "organizations",
        "bind_address",
        "tls_ca",
        "tls_cert",
        "tls_key",
        "tls_verify",
        "capacity",
        "registries",
    }
    unknown = sorted(set(table) - known)
    if unknown:
        raise EngineConfigError(f"engine {name}: unknown setting(s) {', '.join(unknown)}")
    driver = table.get("driver", "docker")
    if driver not in DRIVERS:
        raise EngineConfigError(f"engine {name}: driver must be one of {', '.join(DRIVERS)}")
    endpoint = table.get("endpoint")
    schemes = ("unix://", "tcp://", "ssh://", "http://", "https://")
    valid_endpoint = isinstance(endpoint, str) and endpoint.startswith(schemes)
    if driver != "simulated" and not valid_endpoint:
        raise EngineConfigError(
            f"engine {name}: endpoint must be unix:///path/docker.sock or tcp://host:port"
        )
    organizations = table.get("organizations", "*")
    if organizations == "*":
        allowed = None
    elif isinstance(organizations, list) and all(
        isinstance(item, int) and not isinstance(item, bool) for item in organizations
    ):
        allowed = tuple(organizations)
    else:
        raise EngineConfigError(f'engine {name}: organizations must be "*" or a list of ids')
    tls = [table.get(key) for key in ("tls_ca", "tls_cert", "tls_key")]
    if any(tls) and not all(isinstance(item, str) and item for item in tls):
        raise EngineConfigError(f"engine {name}: give all of tls_ca, tls_cert and tls_key")
    capacity = None
    if "capacity" in table:
        raw = table["capacity"]
        if not isinstance(raw, Mapping):
            raise EngineConfigError(f"engine {name}: capacity must be a table of quantities")
        capacity, problems = quantities.parse_requests(dict(raw))
        if problems:
            kind, problem = next(iter(problems.items()))
            raise EngineConfigError(f"engine {name}: capacity {kind}: {problem}")
    registries = table.get("registries", {})
    if not isinstance(registries, Mapping) or not all(
        isinstance(auth, Mapping)
        and isinstance(auth.get("username"), str)
        and isinstance(auth.get("password"), str)
        for auth in registries.values()
    ):
        raise EngineConfigError(
            f"engine {name}: registries maps a registry host to a username and a password"
        )
    bind_address = table.get("bind_address", "127.0.0.1")
    if not isinstance(bind_address, str) or not bind_address:
        raise EngineConfigError(f"engine {name}: bind_address must be an address")
    return Engine(
        name=name,
        driver=driver,
        endpoint=endpoint,
        organizations=allowed,
        bind_address=bind_address,
        tls_ca=tls[0],
        tls_cert=tls[1],
        tls_key=tls[2],
        tls_verify=bool(table.get("tls_verify", True)),
        capacity=capacity,
        registries={host: dict(auth) for host, auth in registries.items()},
    )


@dataclass(frozen=True)
class DriverSettings:
    """The process-wide settings a driver needs (from config.py)."""

    install_id: str
    timeout_seconds: int = 10
    pids_limit: int = 256
    stop_grace_seconds: int = 10
