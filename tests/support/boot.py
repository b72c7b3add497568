"""Run the shipped start command, boot.sh, for tests: the real migrate-then-gunicorn start.

`running_boot_sh(database_url, folder, **env)` starts boot.sh in production configuration on a
free loopback port (its own process group), waits until /healthz answers 200, yields the base
URL and the path of its log, and stops master and workers the way `docker stop` does. Every
step is bounded in time; a failed start raises with the log in the message.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def boot_environment(**overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {"SECRET_KEY", "DATABASE_URL", "FLASK_APP", "FLASK_DEBUG", "PUBLIC_URL", "KARGO_ENV"}
        and not key.startswith("RATELIMIT_")
    }
    # The image has gunicorn and flask on PATH; here they live in the virtualenv.
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(overrides)
    return env


def production_boot_environment(database_url: str, port: int, **overrides: str) -> dict[str, str]:
    return boot_environment(
        KARGO_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(32),
        DATABASE_URL=database_url,
        PUBLIC_URL=f"http://127.0.0.1:{port}",
        SESSION_COOKIE_SECURE="0",  # plain http on loopback
        PORT=str(port),
        **overrides,
    )


def stop(process: subprocess.Popen) -> None:
    """Stop gunicorn and its workers the way `docker stop` does: SIGTERM, then SIGKILL."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_SECONDS)


@contextmanager
def running_boot_sh(
    database_url: str, folder: Path, **overrides: str
) -> Iterator[tuple[str, Path]]:
    """Yield (base URL, log path) of boot.sh serving on 127.0.0.1 with production settings."""
    port = free_port()
    env = production_boot_environment(database_url, port, **overrides)
    log_path = folder / "boot.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(REPO / "boot.sh")],
            cwd=folder,  # boot.sh must find its files from anywhere
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches the workers
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status, _ = get(f"{base}/healthz", timeout=2)
            except OSError:
                status = None
            if status == 200:
                break
            time.sleep(0.25)
        if status != 200:
            raise RuntimeError(f"/healthz never answered 200:\n{log_path.read_text()[-5000:]}")
        yield base, log_path
    finally:
        stop(process)
