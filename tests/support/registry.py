"""A private image registry that asks for a password, for the runtime tests.

Debian's docker-registry (the distribution registry) serves on 127.0.0.1 with basic auth from
an htpasswd file; the private dockerd trusts 127.0.0.0/8 over plain HTTP by default, so no
certificate is needed. Each pytest worker starts its own registry (its own folder and port)
and stops it at the end of the session. Images get there by `push`: the test's busybox image
tagged under the registry's address, pushed with a docker client configuration kept in the
registry's folder (never the machine's own ~/.docker), then removed from the daemon so that
running it needs a pull with the right credentials.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support.dockerd import Daemon

BINARY = "docker-registry"  # Debian's package of the same name
USERNAME = "kargo-puller"
PASSWORD = "pull-secret-8f2c"  # a test secret: the tests check it is never shown back
START_TIMEOUT_SECONDS = 30


def unavailable_reason() -> str | None:
    if shutil.which(BINARY) is None:
        return "docker-registry is not installed (Debian's docker-registry; `make test` does)"
    if shutil.which("htpasswd") is None:
        return "htpasswd is not installed (Debian's apache2-utils; `make test` does)"
    return None


@dataclass
class Registry:
    folder: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        """The registry as image references name it: 127.0.0.1:PORT."""
        return f"127.0.0.1:{self.port}"

    def push(self, daemon: Daemon, source: str, repository: str) -> str:
        """Push the daemon's image `source` as HOST/repository:1, then remove that tag from
        the daemon (the image itself stays under `source`); the reference pushed."""
        reference = f"{self.host}/{repository}:1"
        config = str(self.folder / "client")
        daemon.docker("tag", source, reference)
        try:
            daemon.docker(
                "--config", config, "login", self.host,
                "--username", USERNAME, "--password-stdin",
                input_text=PASSWORD,
            )  # fmt: skip
            daemon.docker("--config", config, "push", reference)
        finally:
            daemon.docker("rmi", reference, check=False)
        return reference

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)


def start(folder: Path) -> Registry:
    """Start a registry storing in `folder` on a free port of 127.0.0.1; wait until it asks
    for the password (its /v2/ endpoint answers 401)."""
    folder.mkdir(parents=True, exist_ok=True)
    passwords = folder / "htpasswd"
    subprocess.run(
        ["htpasswd", "-Bbc", str(passwords), USERNAME, PASSWORD],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"auth:\n  htpasswd:\n    realm: kargo-test\n    path: {passwords}\n",
        encoding="utf-8",
    )
    log = (folder / "registry.log").open("ab")
    process = subprocess.Popen(
        [BINARY, "serve", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    registry = Registry(folder, port, process)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not _asks_for_password(port):
        if process.poll() is not None or time.monotonic() > deadline:
            registry.stop()
            tail = (folder / "registry.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"docker-registry did not start:\n{tail}")
        time.sleep(0.1)
    return registry


def _asks_for_password(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2):
            return False  # answered without asking: not the registry we configured
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except OSError:
        return False


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
