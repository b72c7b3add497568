"""docs/api.md stays true: its curl walkthrough is replayed end to end against the app.

Every `sh` block of the document is read as a small shell session: `NAME=value` assignments,
`curl ...` commands (with `\\` continuations and quoted bodies spanning lines) and
`NAME=$(curl ... | jq -r .path)` captures. A comment `# → 201` above a command states the
status it must answer. Each curl command is translated to a test-client request (method, path,
headers, JSON body) after substituting the session's variables, so the documented statuses,
and through the OpenAPI recorder the documented response shapes, are checked on every run.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)
EXPECT = re.compile(r"#\s*→\s*(\d{3})")
CAPTURE = re.compile(r"^([A-Z_]+)=\$\((.*)\)$", re.DOTALL)
ASSIGN = re.compile(r"^([A-Z_]+)=(\S+)$")
VARIABLE = re.compile(r"\$\{?([A-Z_]+)\}?")


@dataclass
class Step:
    line: int
    command: str
    expected: int | None


def steps() -> list[Step]:
    """The commands of every sh block, continuations joined, with their expected status."""
    text = DOC.read_text()
    found: list[Step] = []
    for block in BLOCK.finditer(text):
        first_line = text.count("\n", 0, block.start()) + 2
        expected = None
        pending: list[str] = []
        for offset, raw in enumerate(block.group(1).splitlines()):
            line = raw.rstrip()
            if not pending:
                if match := EXPECT.search(line):
                    expected = int(match.group(1))
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
            pending.append(line.removesuffix("\\"))
            command = "\n".join(pending)
            # A command ends at a line without `\` once its quotes are closed (a JSON body in
            # single quotes may span lines, as the shell allows).
            if not line.endswith("\\") and quotes_closed(command):
                found.append(Step(first_line + offset, command, expected))
                pending, expected = [], None
    return found


def quotes_closed(command: str) -> bool:
    try:
        shlex.split(command)
    except ValueError:
        return False
    return True


def substitute(text: str, variables: dict[str, str]) -> str:
    return VARIABLE.sub(lambda match: variables[match.group(1)], text)


def run_curl(api, command: str, variables: dict[str, str]):
    words = [substitute(word, variables) for word in shlex.split(command)]
    assert words[0] == "curl", command
    method, url, headers, data = None, None, {}, None
    words = iter(words[1:])
    for word in words:
        if word == "-X":
            method = next(words)
        elif word == "-H":
            name, _, value = next(words).partition(":")
            headers[name.strip()] = value.strip()
        elif word in ("-d", "--data"):
            data = next(words)
        elif word.startswith("-"):
            continue  # -s and other output options
        else:
            url = word
    assert url is not None, command
    parts = urlsplit(url)
    method = method or ("POST" if data is not None else "GET")
    return api.client.open(
        parts.path,
        method=method,
        query_string=parts.query,
        headers=headers,
        data=data.encode() if data is not None else None,
    )


def jq(value, path: str):
    for key in path.strip(".").split("."):
        value = value[key]
    return value


def test_the_document_has_a_full_walkthrough():
    commands = " ".join(step.command for step in steps())
    for needed in (
        "user/create",
        "user/login",
        'PUT "$KARGO/cluster/',
        "deployment/",
        'priority": "low',
        'priority": "high',
        "DELETE",
        "user/logout",
    ):
        assert needed in commands, needed
    curls = [step for step in steps() if "curl" in step.command]
    assert all(step.expected is not None for step in curls), [
        step.line for step in curls if step.expected is None
    ]


def test_the_curl_walkthrough_replays(api):
    variables: dict[str, str] = {}
    replayed = 0
    for step in steps():
        where = f"docs/api.md line {step.line}"
        if match := CAPTURE.match(step.command):
            name, inner = match.groups()
            curl, _, filter_ = inner.partition("|")
            response = run_curl(api, curl, variables)
            jq_words = shlex.split(filter_)
            assert jq_words[:2] == ["jq", "-r"], where
            variables[name] = str(jq(response.get_json(), jq_words[2]))
        elif match := ASSIGN.match(step.command):
            variables[match.group(1)] = substitute(match.group(2), variables)
            continue
        else:
            response = run_curl(api, step.command, variables)
        replayed += 1
        assert response.status_code == step.expected, (
            f"{where}: expected {step.expected}, got {response.status_code}: "
            f"{json.dumps(response.get_json())[:300]}"
        )
    assert replayed >= 20
