"""The seed's API appendix, replayed as written with the real curl against a real server.

Each command below is the seed document's own example, character for character, with only
what its reader must substitute: the host (`http://localhost:8001`), the token (`test`), the
ids (`:id`, `:cluster_id`, `11`, `1`) and a password that Kargo's rules accept (the seed's
`Sample` is too short). They run in an order where every id they name exists, through
`curl --location`, which follows the 308 from the unprefixed path to /api/v1 and, as a 308
asks, repeats the method and the body. Two commands the seed lists without an example are
added in its own style (checking an invite code, emptying a cluster by `clusterId`).
docs/api.md tabulates these answers.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field

import pytest

SEED_HOST = "http://localhost:8001"
SEED_TOKEN = "Bearer test"
SEED_PASSWORD = '"password": "Sample"'
VALID_PASSWORD = '"password": "harbour-lights-2026"'
CURL_TIMEOUT_SECONDS = 30


@dataclass
class Step:
    title: str
    command: str
    status: int
    token: str = "token"  # which value replaces the seed's token: "token" or "code"
    ids: dict[str, str] = field(default_factory=dict)  # seed text -> name of a captured value
    capture: tuple[str, str] | None = None  # (name, dotted path in the JSON answer)


STEPS = [
    Step(
        "Get user details (a login before the user exists)",
        """curl --location 'http://localhost:8001/user/login/' \\
--header 'Content-Type: application/json' \\
--data '{
    "username": "Sample",
    "password": "Sample"
}'""",
        401,
    ),
    Step(
        "Create User and organization",
        """curl --location --request PUT 'http://localhost:8001/user/create/' \\
--header 'Content-Type: application/json' \\
--data '{
    "user": {
        "username": "Sample",
        "password": "Sample",
        "display_name": "Sample"
    },
    "organization": {
        "name": "Sample"
    }
}'""",
        201,
    ),
    Step(
        "Login User",
        """curl --location 'http://localhost:8001/user/login/' \\
--header 'Content-Type: application/json' \\
--data '{
    "username": "Sample",
    "password": "Sample"
}'""",
        200,
        capture=("token", "token"),
    ),
    Step(
        "Get user details",
        """curl --location 'http://localhost:8001/user/' \\
--header 'Authorization: Bearer test'""",
        200,
    ),
    Step(
        "Get Organization details",
        """curl --location 'http://localhost:8001/organization/' \\
--header 'Authorization: Bearer test'""",
        200,
    ),
    Step(
        "Generate Invite",
        """curl --location --request PATCH 'http://localhost:8001/organization/invite/' \\
--header 'Authorization: Bearer test' \\
--data ''""",
        201,
        capture=("code", "code"),
    ),
    Step(
        "Verify if the code is active (listed by the seed without an example)",
        """curl --location 'http://localhost:8001/organization/invite/?code=:code'""",
        200,
        ids={":code": "code"},
    ),
    Step(
        "Use invite code (the code as the token; the seed's username is taken: 409)",
        """curl --location 'http://localhost:8001/organization/invite/' \\
--header 'Content-Type: application/json' \\
--header 'Authorization: Bearer test' \\
--data '{
    "username": "Sample",
    "password": "Sample",
    "display_name": "Sample"
}'""",
        409,
        token="code",
    ),
    Step(
        "Create cluster",
        """curl --location --request PUT 'http://localhost:8001/cluster/' \\
--header 'Content-Type: application/json' \\
--header 'Authorization: Bearer test' \\
--data '{
    "cluster_name": "name",
    "resource": {
        "cpu": "1",
        "gpu": "1",
        "ram": " 1"
    }
}'""",
        201,
        capture=("cluster", "id"),
    ),
    Step(
        "Get cluster",
        """curl --location 'http://localhost:8001/cluster/?page=0&offset=1' \\
--header 'Authorization: Bearer test'""",
        200,
    ),
    Step(
        "Get cluster details",
        """curl --location 'http://localhost:8001/cluster/:id/' \\
--header 'Authorization: Bearer test'""",
        200,
        ids={":id": "cluster"},
    ),
    Step(
        "Check cluster for resources",
        """curl --location --request PATCH 'http://localhost:8001/cluster/:cluster_id/resource/' \\
--header 'Content-Type: application/json' \\
--header 'Authorization: Bearer test' \\
--data '{
    "resource": {
        "cpu": "1",
        "gpu": "1",
        "ram": " 1"
    }
}'""",
        200,
        ids={":cluster_id": "cluster"},
    ),
    Step(
        "Utilize resources (usage belongs to the scheduler: 403)",
        """curl --location 'http://localhost:8001/cluster/:cluster_id/resource/' \\
--header 'Content-Type: application/json' \\
--header 'Authorization: Bearer test' \\
--data '{
    "resource": {
        "cpu": "1",
        "gpu": "1",
        "ram": " 1"
    }
}'""",
        403,
        ids={":cluster_id": "cluster"},
    ),
    Step(
        "Free up resources (usage belongs to the scheduler: 403)",
        """curl --location --request DELETE 'http://localhost:8001/cluster/:cluster_id/resource/' \\
--header 'Content-Type: application/json' \\
--header 'Authorization: Bearer test' \\
--data '{
    "resource": {
        "cpu": "1",
        "gpu": "1",
        "ram": " 1"
    }
}'""",
        403,
        ids={":cluster_id": "cluster"},
    ),
    Step(
        "Create deployment for a cluster (no image in the example: 400)",
        """curl --location --request PUT 'http://localhost:8001/deployment/' \\
--header 'Content-Type: application/json' \\
--header 'Authorization: Bearer test' \\
--data '{
    "cluster_id": "1",
    "resource": {
        "gpu": 1,
        "cpu": 1,
        "ram": 1
    }
}'""",
        400,
        ids={'"cluster_id": "1"': "cluster"},
    ),
    Step(
        "Create deployment for a cluster, with an image",
        """curl --location --request PUT 'http://localhost:8001/deployment/' \\
--header 'Content-Type: application/json' \\
--header 'Authorization: Bearer test' \\
--data '{
    "cluster_id": "1",
    "image": "nginx:1.25",
    "resource": {
        "gpu": 1,
        "cpu": 1,
        "ram": 1
    }
}'""",
        201,
        ids={'"cluster_id": "1"': "cluster"},
        capture=("deployment", "deployment.id"),
    ),
    Step(
        "Get deployment",
        """curl --location 'http://localhost:8001/deployment/?cluster_id=11&id=1' \\
--header 'Authorization: Bearer test'""",
        200,
        ids={"cluster_id=11": "cluster", "&id=1": "deployment"},
    ),
    Step(
        "Delete deployment",
        """curl --location --request DELETE 'http://localhost:8001/deployment/:id/' \\
--header 'Authorization: Bearer test' \\
--data ''""",
        204,
        ids={":id": "deployment"},
    ),
    Step(
        "Delete deployment by cluster (listed by the seed without an example)",
        """curl --location --request DELETE 'http://localhost:8001/deployment/?clusterId=:id' \\
--header 'Authorization: Bearer test'""",
        200,
        ids={":id": "cluster"},
    ),
    Step(
        "Delete cluster",
        """curl --location --request DELETE 'http://localhost:8001/cluster/:id/' \\
--header 'Authorization: Bearer test'""",
        204,
        ids={":id": "cluster"},
    ),
]


def substituted(step: Step, base: str, values: dict[str, str]) -> str:
    """The command with the host, the token, the ids and the password substituted."""
    command = step.command.replace(SEED_HOST, base).replace(SEED_PASSWORD, VALID_PASSWORD)
    if step.token in values:
        command = command.replace(SEED_TOKEN, f"Bearer {values[step.token]}")
    for seed_text, name in step.ids.items():
        number = values[name]
        if seed_text.startswith('"cluster_id"'):
            replacement = f'"cluster_id": "{number}"'  # kept a string, as the seed sends it
        elif "=" in seed_text:
            replacement = seed_text.split("=")[0] + "=" + number
        else:
            replacement = number
        command = command.replace(seed_text, replacement)
    return command


def run_curl(command: str, tmp_path) -> tuple[int, int, str, bytes]:
    """Run the command with the real curl; (status, redirects followed, final method, body)."""
    argv = shlex.split(command.replace("\\\n", " "))
    assert argv[0] == "curl"
    body_file = tmp_path / "body"
    result = subprocess.run(
        [
            *argv,
            "--silent",
            "--show-error",
            "--output",
            str(body_file),
            "--write-out",
            "%{http_code} %{num_redirects} %{method}",
        ],
        capture_output=True,
        text=True,
        timeout=CURL_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    status, redirects, method = result.stdout.split()
    return int(status), int(redirects), method, body_file.read_bytes()


def method_of(command: str) -> str:
    argv = shlex.split(command.replace("\\\n", " "))
    if "--request" in argv:
        return argv[argv.index("--request") + 1]
    return "POST" if "--data" in argv else "GET"


def dig(value, path: str) -> str:
    for key in path.split("."):
        value = value[key]
    return str(value)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the replay runs the real curl")
def test_the_seed_appendix_replays_with_curl(live_server, tmp_path):
    values: dict[str, str] = {}
    for step in STEPS:
        command = substituted(step, live_server, values)
        status, redirects, method, body = run_curl(command, tmp_path)
        where = f"{step.title}: {command}"
        answer = body.decode(errors="replace")[:300]
        assert status == step.status, f"{where}\n-> {status} {answer}"
        # Every example went through the redirect, and curl kept its method (and body).
        assert redirects == 1, where
        assert method == method_of(command), where
        if step.status >= 400:
            assert "error" in json.loads(body), where
        if step.capture:
            name, path = step.capture
            values[name] = dig(json.loads(body), path)
        if step.status == 400:
            # The seed's create-deployment example: only the image is missing.
            assert set(json.loads(body)["error"]["fields"]) == {"image"}, answer
    assert {"token", "code", "cluster", "deployment"} <= set(values)
