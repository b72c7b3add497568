"""What a real container needs besides an image and requests: ports, environment, command.

Parsed and checked here once for the deploy form and the API (`services.deployments.submit`
calls `parse`); every problem is keyed "ports", "env" or "command" and worded for a person.
Values are stored as plain JSON on the deployment row:

- ports: [{"container": 80, "host": null, "protocol": "tcp"}] from "80", "8080:80", "53/udp"
  (a list, or one string separated by commas or spaces); host null lets the engine pick;
- env: {"NAME": "value"} from a JSON object or "NAME=value" lines; values are never shown
  back in full (`masked`);
- command: an argv list from a list of strings or one string split like a shell would.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PORT = re.compile(r"^(?:(?P<host>[0-9]{1,5}):)?(?P<container>[0-9]{1,5})(?:/(?P<proto>tcp|udp))?$")
ENV_NAME_MAX = 128


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    ports: list[dict[str, Any]]
    env: dict[str, str]
    command: list[str] | None


def parse(ports: object, env: object, command: object, problems: dict[str, str]) -> ContainerSpec:
    """The three values cleaned; problems are added to `problems` (nothing raised here)."""
    return ContainerSpec(_ports(ports, problems), _env(env, problems), _command(command, problems))


def _ports(raw: object, problems: dict[str, str]) -> list[dict[str, Any]]:
    if raw is None or raw == "" or raw == []:
        return []
    if isinstance(raw, str):
        items: list[object] = [item for item in re.split(r"[,\s]+", raw.strip()) if item]
    elif isinstance(raw, list):
        items = raw
    else:
        problems["ports"] = 'ports must be a list such as [80, "8080:80", "53/udp"]'
        return []
    limit = current_app.config["DEPLOYMENT_MAX_PORTS"]
    if len(items) > limit:
        problems["ports"] = f"at most {limit} ports may be published"
        return []
    out: list[dict[str, Any]] = []
    seen_container: set[tuple[int, str]] = set()
    seen_host: set[tuple[int, str]] = set()
    for item in items:
        text = (
            str(item).strip()
            if isinstance(item, int | str) and not isinstance(item, bool)
            else None
        )
        match = _PORT.match(text) if text else None
        if match is None:
            problems["ports"] = (
                f"{item!r} is not a port: write the container port (80), host:container "
                "(8080:80), optionally with /tcp or /udp"
            )
            return []
        container = int(match["container"])
        host = int(match["host"]) if match["host"] else None
        protocol = match["proto"] or "tcp"
        for number in (container, host):
            if number is not None and not 1 <= number <= 65535:
                problems["ports"] = f"port {number} is out of range: use 1 to 65535"
                return []
        if (container, protocol) in seen_container:
            problems["ports"] = f"container port {container}/{protocol} is listed twice"
            return []
        if host is not None and (host, protocol) in seen_host:
            problems["ports"] = f"host port {host}/{protocol} is listed twice"
            return []
        seen_container.add((container, protocol))
        if host is not None:
            seen_host.add((host, protocol))
        out.append({"container": container, "host": host, "protocol": protocol})
    return out


def _env(raw: object, problems: dict[str, str]) -> dict[str, str]:
    if raw is None or raw == "" or raw == {}:
        return {}
    pairs: list[tuple[object, object]]
    if isinstance(raw, str):
        pairs = []
        for number, line in enumerate(raw.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, equals, value = line.partition("=")
            if not equals:
                problems["env"] = f"line {number} needs NAME=value"
                return {}
            pairs.append((name.strip(), value))
    elif isinstance(raw, Mapping):
        pairs = list(raw.items())
    else:
        problems["env"] = 'env must be an object such as {"MODE": "production"}'
        return {}
    config = current_app.config
    if len(pairs) > config["DEPLOYMENT_MAX_ENV"]:
        problems["env"] = f"at most {config['DEPLOYMENT_MAX_ENV']} environment variables"
        return {}
    out: dict[str, str] = {}
    for name, value in pairs:
        if not isinstance(name, str) or not _ENV_NAME.match(name) or len(name) > ENV_NAME_MAX:
            problems["env"] = (
                f"{name!r} is not a variable name: use letters, digits and '_', not starting "
                "with a digit"
            )
            return {}
        if name in out:
            problems["env"] = f"{name} is set twice"
            return {}
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            problems["env"] = f"the value of {name} must be a string"
            return {}
        text = str(value)
        if "\x00" in text:
            problems["env"] = f"the value of {name} must not contain a NUL character"
            return {}
        if len(text) > config["DEPLOYMENT_ENV_VALUE_MAX"]:
            problems["env"] = (
                f"the value of {name} is longer than {config['DEPLOYMENT_ENV_VALUE_MAX']} "
                "characters"
            )
            return {}
        out[name] = text
    return out


def _command(raw: object, problems: dict[str, str]) -> list[str] | None:
    if raw is None or raw == "" or raw == []:
        return None
    limit = current_app.config["DEPLOYMENT_COMMAND_MAX"]
    if isinstance(raw, str):
        if len(raw) > limit:
            problems["command"] = f"command must be at most {limit} characters"
            return None
        try:
            argv = shlex.split(raw)
        except ValueError as exc:
            problems["command"] = f"command cannot be read: {exc}"
            return None
    elif isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        argv = list(raw)
        if sum(len(item) + 1 for item in argv) > limit:
            problems["command"] = f"command must be at most {limit} characters"
            return None
    else:
        problems["command"] = (
            'command must be a string or a list of strings, such as ["sh", "-c", "..."]'
        )
        return None
    if any("\x00" in item for item in argv):
        problems["command"] = "command must not contain a NUL character"
        return None
    return argv or None


def masked(env: Mapping[str, str] | None) -> dict[str, str]:
    """Names with their values hidden: what pages and the API show back."""
    return {name: f"•••• ({len(value)} characters)" for name, value in (env or {}).items()}


def describe_ports(ports: list[dict[str, Any]] | None) -> list[str]:
    """ "8080:80/tcp" or "80/tcp" (engine-chosen host port) per published port."""
    return [
        (f"{p['host']}:" if p.get("host") else "") + f"{p['container']}/{p.get('protocol', 'tcp')}"
        for p in ports or []
    ]


def command_text(command: list[str] | None) -> str | None:
    return shlex.join(command) if command else None
