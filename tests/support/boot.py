"""Run the image's start command (`boot.sh`) directly, with production settings.

`running_boot_sh(database_url, folder, workers, **env)` starts boot.sh in its own process group
with a free loopback port and its output in `folder/boot.log`, waits for /healthz, yields the
base URL and the log's path, and stops the whole group (SIGTERM, then SIGKILL) afterwards, the
way `docker stop` does. `running_boot_shs` starts several on one database at the same moment.
Every wait has a time bound.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.support.gunicorn import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20


@contextmanager
def running_boot_sh(
    database_url: str, folder: Path, workers: int = 2, **env_overrides: str
) -> Iterator[tuple[str, Path]]:
    with running_boot_shs(database_url, [folder], workers, **env_overrides) as (started,):
        yield started


@contextmanager
def running_boot_shs(
    database_url: str, folders: list[Path], workers: int = 2, **env_overrides: str
) -> Iterator[list[tuple[str, Path]]]:
    """Several instances on one database, started at the same moment (each in its folder).

    They all run `flask db upgrade` at once, as containers of one service do when they start
    together; every one must then serve /healthz. Yields (base URL, log path) per instance.
    """
    started: list[tuple[subprocess.Popen, str, Path]] = []
    try:
        for folder in folders:
            started.append(_start(database_url, folder, workers, env_overrides))
        for process, base, log_path in started:
            _wait_until_healthy(base, process, log_path)
        yield [(base, log_path) for _, base, log_path in started]
    finally:
        for process, _, _ in started:
            stop_group(process)


def _start(
    database_url: str, folder: Path, workers: int, env_overrides: dict[str, str]
) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "DATABASE_URL", "FLASK_APP", "FLASK_DEBUG", "TRUSTED_HOSTS"}
        and not key.startswith("RATELIMIT_")
    }
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",  # the image has them on PATH
        KARGO_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(32),
        SESSION_COOKIE_SECURE="0",
        DATABASE_URL=database_url,
        PUBLIC_URL=f"http://127.0.0.1:{port}",  # production requires it (or TRUSTED_HOSTS)
        PORT=str(port),
        WEB_CONCURRENCY=str(workers),
        TMPDIR=str(folder),  # its own metrics folder: parallel servers never share one
        **env_overrides,
    )
    log_path = folder / "boot.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(ROOT / "boot.sh")],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, f"http://127.0.0.1:{port}", log_path


def _wait_until_healthy(base: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"boot.sh did not serve {base}/healthz:\n{log_path.read_text()[-5000:]}")


def stop_group(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except ProcessLookupError:
        pass


def get(url: str, timeout: float = 5) -> tuple[int, str]:
    """Status and text of a GET, with no retries and a hard timeout (raises OSError on it)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@contextmanager
def running_reconcilers(
    database_url: str, folders: list[Path], **env_overrides: str
) -> Iterator[list[tuple[subprocess.Popen, Path]]]:
    """`flask kargo reconcile` (the reconciler service's command) once per folder, with
    production settings, on one database; stopped with SIGTERM (they give their leases back)
    and SIGKILL if they linger. Yields (process, log path) per reconciler."""
    started: list[tuple[subprocess.Popen, Path]] = []
    try:
        for folder in folders:
            env = {
                key: value
                for key, value in os.environ.items()
                if key not in {"SECRET_KEY", "DATABASE_URL", "FLASK_DEBUG"}
            }
            env.update(
                PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
                KARGO_ENV="production",
                FLASK_APP="wsgi.py",
                SECRET_KEY=secrets.token_urlsafe(32),
                DATABASE_URL=database_url,
                PUBLIC_URL="http://127.0.0.1",
                PYTHONUNBUFFERED="1",
                **env_overrides,
            )
            log_path = folder / "reconciler.log"
            with log_path.open("w") as log:
                process = subprocess.Popen(
                    [str(VENV_BIN / "flask"), "kargo", "reconcile"],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            started.append((process, log_path))
        yield started
    finally:
        for process, _ in started:
            stop_group(process)
