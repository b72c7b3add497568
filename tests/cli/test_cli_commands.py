"""The `kargo` command line against a real server (gunicorn, the session's `live_server`).

Commands run in process through Click's runner, but every call they make is real HTTP to the
server; one test runs the installed console script itself. Each test signs up its own
organization, so tests share the server without seeing each other's clusters.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from kargo_cli.client import ExitCode
from kargo_cli.main import cli

PASSWORD = "correct horse battery staple"


class Account:
    """An organization with its owner, a token and a cluster, made through the API."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.username = f"cli-{uuid.uuid4().hex[:10]}"
        body = {
            "user": {"username": self.username, "password": PASSWORD, "display_name": "Cli"},
            "organization": {"name": f"Org {self.username}"},
        }
        assert self.api("PUT", "/user/create/", body, token=None).status_code == 201
        login = {"username": self.username, "password": PASSWORD}
        self.token = self.api("POST", "/user/login/", login, token=None).json()["token"]
        cluster = {"cluster_name": "prod", "resource": {"cpu": 4, "gpu": 1, "ram": 8}}
        self.cluster_id = self.api("PUT", "/cluster/", cluster).json()["id"]

    def api(self, method: str, path: str, body=None, token: str | bool | None = True):
        headers = {}
        token = self.token if token is True else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(
            method, f"{self.server}/api/v1{path}", json=body, headers=headers, timeout=30
        )


@pytest.fixture
def account(live_server) -> Account:
    return Account(live_server)


@pytest.fixture
def config_file(tmp_path) -> Path:
    return tmp_path / "config" / "kargo" / "config.json"


@pytest.fixture
def kargo(account, config_file):
    """Run `kargo ARGS...` as the account, through KARGO_URL and KARGO_TOKEN (a CI job)."""

    def run(*args: str, token: str | None = "account", url: str | None = None, stdin=None):
        env = {"KARGO_CONFIG": str(config_file), "KARGO_URL": url or account.server}
        env["KARGO_TOKEN"] = account.token if token == "account" else (token or "")
        return CliRunner().invoke(cli, list(args), env=env, input=stdin, catch_exceptions=False)

    return run


def output_json(result):
    return json.loads(result.stdout)


# -- login and where the token lives -------------------------------------------------------


def test_login_keeps_the_token_for_the_owner_only(account, kargo, config_file):
    result = kargo("login", "-u", account.username, "--password-stdin", token=None, stdin=PASSWORD)
    assert result.exit_code == 0, result.output
    assert "Logged in to" in result.stdout
    stored = json.loads(config_file.read_text())
    assert stored["url"] == account.server and stored["username"] == account.username
    assert stored["token"] not in result.output  # shown nowhere
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_file.parent.stat().st_mode) == 0o700
    # Later commands use the stored token and server, with nothing in the environment.
    env = {"KARGO_CONFIG": str(config_file), "KARGO_URL": "", "KARGO_TOKEN": ""}
    listed = CliRunner().invoke(cli, ["--json", "clusters"], env=env)
    assert listed.exit_code == 0, listed.output
    assert [c["name"] for c in output_json(listed)] == ["prod"]
    # The stored token is never sent to another server.
    elsewhere = CliRunner().invoke(cli, ["--url", "http://127.0.0.1:9", "clusters"], env=env)
    assert elsewhere.exit_code == ExitCode.AUTH
    assert "not logged in" in elsewhere.stderr
    # Logout revokes it on the server and forgets it here.
    assert CliRunner().invoke(cli, ["logout"], env=env).exit_code == 0
    assert "token" not in json.loads(config_file.read_text()) or not json.loads(
        config_file.read_text()
    ).get("token")
    assert account.api("GET", "/user/", token=stored["token"]).status_code == 401


def test_a_wrong_password_or_token_exits_3(account, kargo):
    result = kargo("login", "-u", account.username, "--password-stdin", token=None, stdin="nope")
    assert result.exit_code == ExitCode.AUTH
    assert "Invalid username or password" in result.stderr
    assert kargo("clusters", token="not-a-token").exit_code == ExitCode.AUTH
    assert kargo("clusters", token=None).exit_code == ExitCode.AUTH


def test_an_unreachable_server_exits_6(kargo):
    result = kargo("clusters", url="http://127.0.0.1:9")
    assert result.exit_code == ExitCode.UNREACHABLE
    assert "Cannot reach Kargo" in result.stderr


# -- deploy, plan, status, ls, priority, delete --------------------------------------------


def test_deploy_plan_and_the_queue(account, kargo):
    ran = kargo(
        "deploy",
        "--cluster",
        "prod",
        "--image",
        "nginx:1.27",
        "--cpu",
        "3",
        "--ram",
        "1Gi",
        "--priority",
        "low",
        "--name",
        "batch",
    )
    assert ran.exit_code == 0, ran.output
    assert ran.stdout.strip() == "batch is running."

    plan = kargo(
        "plan",
        "--cluster",
        "prod",
        "--image",
        "nginx:1.27",
        "--cpu",
        "2",
        "--priority",
        "high",
        "--name",
        "api",
    )
    assert plan.exit_code == 0, plan.output
    assert "+ start    api (new), priority 800" in plan.stdout
    assert "! preempt  #" in plan.stdout and "batch" in plan.stdout
    assert "~ wait" in plan.stdout
    waits = kargo(
        "--json",
        "plan",
        "--cluster",
        str(account.cluster_id),
        "--image",
        "nginx",
        "--cpu",
        "2",
        "--priority",
        "low",
    )
    assert waits.exit_code == ExitCode.NOT_RUNNING
    assert output_json(waits)["deployment"]["queue_position"] == 1
    assert output_json(kargo("--json", "ls"))[0]["name"] == "batch"  # plans wrote nothing
    assert len(output_json(kargo("--json", "ls"))) == 1

    queued = kargo(
        "--json",
        "deploy",
        "--cluster",
        "prod",
        "--image",
        "nginx:1.27",
        "--cpu",
        "2",
        "--name",
        "web",
        "--priority",
        "low",
    )
    assert queued.exit_code == 0
    web = output_json(queued)["deployment"]
    assert web["status"] == "pending"

    listing = kargo("ls", "--cluster", "prod", "--status", "pending")
    assert listing.exit_code == 0
    assert "web" in listing.stdout and "batch" not in listing.stdout
    assert "position 1: needs 2 cpu" in listing.stdout

    detail = kargo("status", str(web["id"]))
    assert detail.exit_code == 0 and "waiting   position 1" in detail.stdout
    overview = kargo("--json", "status")
    assert output_json(overview)["deployments"] == {"running": 1, "pending": 1}

    raised = kargo("priority", str(web["id"]), "critical")
    assert raised.exit_code == 0, raised.output
    assert "it started; it preempted" in raised.stdout

    assert kargo("delete", str(web["id"])).exit_code == 0
    assert kargo("status", str(web["id"])).exit_code == ExitCode.NOT_FOUND
    back = output_json(kargo("--json", "ls"))
    assert [(d["name"], d["status"]) for d in back] == [("batch", "running")]


def test_deploy_wait_times_out_with_the_reason(account, kargo):
    kargo("deploy", "--cluster", "prod", "--image", "nginx", "--cpu", "4", "--name", "full")
    result = kargo(
        "deploy",
        "--cluster",
        "prod",
        "--image",
        "nginx",
        "--cpu",
        "1",
        "--name",
        "late",
        "--wait",
        "--timeout",
        "0.5",
        "--interval",
        "0.1",
    )
    assert result.exit_code == ExitCode.NOT_RUNNING
    assert "late did not start within 0.5 s; it waits at position 1: needs 1 cpu" in result.stderr
    as_json = kargo(
        "--json",
        "deploy",
        "--cluster",
        "prod",
        "--image",
        "nginx",
        "--cpu",
        "1",
        "--wait",
        "--timeout",
        "0.2",
        "--interval",
        "0.1",
    )
    assert as_json.exit_code == ExitCode.NOT_RUNNING
    body = output_json(as_json)
    assert body["error"]["exit_code"] == ExitCode.NOT_RUNNING
    assert body["deployment"]["status"] == "pending"


def test_deploy_wait_succeeds_once_room_appears(account, kargo):
    blocker = account.api(
        "PUT",
        "/deployment/",
        {
            "cluster_id": account.cluster_id,
            "image": "nginx",
            "resource": {"cpu": 4},
        },
    ).json()["deployment"]["id"]
    timer = threading.Timer(0.5, account.api, ("DELETE", f"/deployment/{blocker}/"))
    timer.start()
    try:
        result = kargo(
            "deploy",
            "--cluster",
            "prod",
            "--image",
            "nginx",
            "--cpu",
            "2",
            "--name",
            "patient",
            "--wait",
            "--timeout",
            "20",
            "--interval",
            "0.1",
        )
    finally:
        timer.join()
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("patient is running.")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--cluster", "nope", "--cpu", "1"], ExitCode.NOT_FOUND, "No cluster named nope"),
        (["--cluster", "prod", "--gpu", "2"], ExitCode.ERROR, "resource.gpu"),
        (["--cluster", "prod"], ExitCode.USAGE, "Ask for some resources"),
        (["--cluster", "prod", "--resource", "tpu"], ExitCode.USAGE, "KIND=AMOUNT"),
        (["--cluster", "prod", "--cpu", "1", "--priority", "urgent"], ExitCode.ERROR, "priority"),
    ],
)
def test_deploy_errors_exit_with_their_code(kargo, args, code, message):
    result = kargo("deploy", "--image", "nginx", *args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert output_json(kargo("--json", "ls")) == []


def test_the_installed_command_runs(account, tmp_path):
    """`kargo` is a console script of the package, speaking HTTP from its own process."""
    command = Path(sys.executable).parent / "kargo"
    assert command.exists(), "pip install -e . installs the kargo console script"
    env = {
        **os.environ,
        "KARGO_URL": account.server,
        "KARGO_TOKEN": account.token,
        "KARGO_CONFIG": str(tmp_path / "none.json"),
    }
    result = subprocess.run(
        [str(command), "--json", "clusters"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["id"] == account.cluster_id
