"""Run the real application under gunicorn for tests that need real processes and sockets.

`running_gunicorn(database_url, workers)` migrates the database with `flask db upgrade` (the
way boot.sh does), starts gunicorn in production configuration on a free loopback port, waits
for /healthz, yields the base URL, and stops the whole process group afterwards. Every step
has a time bound, and a failed start raises with the server's log in the message.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
MIGRATE_TIMEOUT_SECONDS = 120
START_TIMEOUT_SECONDS = 60  # four workers importing the app on a loaded machine
STOP_TIMEOUT_SECONDS = 10


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def production_environment(database_url: str, **overrides: str) -> dict[str, str]:
    # Rate-limit counters are each server's own (memory) unless a test says otherwise: one
    # inherited RATELIMIT_STORAGE_URI would have every server of every worker count together.
    env = {key: value for key, value in os.environ.items() if not key.startswith("RATELIMIT_")}
    env.update(
        {
            "KARGO_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(32),
            "SESSION_COOKIE_SECURE": "0",  # plain http on loopback
            "DATABASE_URL": database_url,
            "PUBLIC_URL": "http://127.0.0.1",
            "FLASK_APP": "wsgi.py",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


def migrate(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flask", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=MIGRATE_TIMEOUT_SECONDS,
    )
    if result.returncode != 0:
        raise RuntimeError(f"flask db upgrade failed:\n{result.stdout}\n{result.stderr}")


@contextmanager
def running_gunicorn(
    database_url: str,
    workers: int = 4,
    extra_args: Sequence[str] = (),
    **env_overrides: str,
) -> Iterator[str]:
    """Yield the base URL (http://127.0.0.1:<port>) of gunicorn serving `wsgi:app`.

    `extra_args` go to gunicorn as they are (a worker class, threads, a backlog).
    """
    env = production_environment(database_url, **env_overrides)
    migrate(env)
    port = free_port()
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                # The shipped settings (gevent workers); the flags below override a few.
                "--config",
                str(ROOT / "gunicorn.conf.py"),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--timeout",
                "60",
                "--graceful-timeout",
                str(STOP_TIMEOUT_SECONDS // 2),
                # No control socket in the home directory: parallel servers would share it.
                "--no-control-socket",
                *extra_args,
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: we stop master and workers together
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_healthy(base, process, log)
            yield base
        finally:
            _stop(process)


def _wait_until_healthy(base: str, process: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    log.seek(0)
    raise RuntimeError(f"gunicorn did not become healthy at {base}:\n{log.read()[-5000:]}")


def _stop(process: subprocess.Popen) -> None:
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
