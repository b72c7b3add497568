"""The `kargo` commands: login, clusters, deploy, plan, status, ls, priority, delete, logout.

Each command is a few calls to the JSON API through `client.Client` and a rendering of the
answer, as text for people or, with `--json`, as the API's own JSON for scripts. Errors end the
command with an `ExitCode` and the server's message (and, with `--json`, an error object on
standard output as well). The server and the token come from `--url`, `KARGO_URL` and
`KARGO_TOKEN`, or from the file `kargo login` writes (see `config`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

import click

from kargo_cli import config
from kargo_cli.client import DEFAULT_HTTP_TIMEOUT_SECONDS, ApiError, Client, ExitCode

DEFAULT_WAIT_TIMEOUT_SECONDS = 300
DEFAULT_WAIT_INTERVAL_SECONDS = 2.0
PAGE_SIZE = 100


# --------------------------------------------------------------------------------------------
# The session: where the server is, which token to send, how to print


@dataclass
class Session:
    url_option: str | None
    as_json: bool
    http_timeout: float

    def url(self, required: bool = True) -> str | None:
        url = self.url_option or config.load().url
        if url is None and required:
            raise ApiError(
                "No Kargo server given: use --url, set KARGO_URL, or run `kargo login`.",
                ExitCode.USAGE,
            )
        return url

    def client(self) -> Client:
        url = self.url()
        assert url is not None
        token = _environment_token()
        stored = config.load()
        # A stored token only goes to the server it was issued by.
        if token is None and stored.token and _same_server(stored.url, url):
            token = stored.token
        return Client(url, token, timeout=self.http_timeout)

    def emit(self, data: Any, text: str | Callable[[], str]) -> None:
        """Print `data` as JSON with --json, else the text (built only when needed)."""
        if self.as_json:
            click.echo(json.dumps(data, indent=2, sort_keys=True))
        else:
            click.echo(text() if callable(text) else text)

    def note(self, text: str) -> None:
        """Progress for people, on standard error, never mixed into --json output."""
        if not self.as_json:
            click.echo(text, err=True)


def _environment_token() -> str | None:
    token = os.environ.get("KARGO_TOKEN", "").strip()
    return token or None


def _same_server(stored: str | None, url: str) -> bool:
    if stored is None:
        return False
    try:
        return Client(stored).url == Client(url).url
    except ApiError:
        return False


class KargoGroup(click.Group):
    """Ends every command on an `ApiError` with its exit code and message."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ApiError as error:
            session = ctx.obj if isinstance(ctx.obj, Session) else None
            if session is not None and session.as_json:
                click.echo(
                    json.dumps(
                        {
                            "error": {
                                "message": error.message,
                                "code": error.code,
                                "status": error.status,
                                "fields": error.fields,
                                "exit_code": int(error.exit_code),
                            },
                            **error.details,
                        },
                        indent=2,
                        sort_keys=True,
                    )
                )
            click.echo(f"kargo: {error.message}", err=True)
            for field, problem in error.fields.items():
                click.echo(f"  {field}: {problem}", err=True)
            ctx.exit(int(error.exit_code))


pass_session = click.make_pass_decorator(Session)


@click.group(cls=KargoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--url",
    envvar="KARGO_URL",
    metavar="URL",
    help="Kargo server, such as http://kargo.example.com:8001 (env KARGO_URL; default: the "
    "server of `kargo login`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option(
    "--http-timeout",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_HTTP_TIMEOUT_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="Give up on a request after this long.",
)
@click.version_option(package_name="kargo", prog_name="kargo")
@click.pass_context
def cli(ctx: click.Context, url: str | None, as_json: bool, http_timeout: float) -> None:
    """Deploy Docker images onto Kargo's shared clusters, from a terminal or a CI pipeline.

    Log in once with `kargo login` (the token is kept in your configuration directory, readable
    by you only), or set KARGO_URL and KARGO_TOKEN in the environment.

    \b
    Exit codes:
      0  success
      1  the server refused the request (invalid, forbidden, conflict, limit) or failed
      2  wrong options or arguments
      3  not logged in, or the token is unknown, expired or revoked
      4  no such deployment or cluster in your organization
      5  not running: `deploy --wait` timed out, or `plan` says it would wait
      6  the server could not be reached
    """
    ctx.obj = Session(url_option=url, as_json=as_json, http_timeout=http_timeout)


def main() -> None:
    cli(prog_name="kargo")


# --------------------------------------------------------------------------------------------
# Rendering


def table(rows: list[list[str]], headers: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def number(value: float | int) -> str:
    return f"{value:g}"


def amounts(resource: dict[str, float]) -> str:
    units = {"ram": " GiB"}
    return ", ".join(f"{kind} {number(v)}{units.get(kind, '')}" for kind, v in resource.items())


def usage(resources: dict[str, dict[str, float]]) -> str:
    units = {"ram": " GiB"}
    return ", ".join(
        f"{kind} {number(r['used'])}/{number(r['capacity'])}{units.get(kind, '')}"
        for kind, r in resources.items()
    )


def waiting(deployment: dict[str, Any]) -> str:
    return f"position {deployment['queue_position']}: {deployment['reason']}"


def describe(deployment: dict[str, Any]) -> str:
    lines = [
        f"#{deployment['id']} {deployment['name']}  {deployment['status']}",
        f"  cluster   {deployment['cluster_name']} (#{deployment['cluster_id']})",
        f"  image     {deployment['image']}",
        f"  priority  {deployment['priority']}",
        f"  requests  {amounts(deployment['resource'])}",
    ]
    if deployment["status"] == "pending":
        lines.append(f"  waiting   {waiting(deployment)}")
    if deployment["preemptions"]:
        lines.append(f"  preempted {deployment['preemptions']} time(s)")
    if deployment["last_event"]:
        lines.append(f"  last      {deployment['last_event']}")
    lines.append(f"  created   {deployment['created_at']} by {deployment['created_by'] or '?'}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Options shared by deploy and plan


def resource_options(command: Callable) -> Callable:
    options = [
        click.option(
            "--cluster", "cluster", required=True, metavar="NAME", help="Cluster name (or id)."
        ),
        click.option("--image", required=True, help="Docker image, such as nginx:1.27."),
        click.option("--name", help="A DNS label unique in the cluster; generated if absent."),
        click.option(
            "--priority",
            help="low, normal, high, critical or 0-1000 (the server's default: normal).",
        ),
        click.option("--cpu", metavar="CORES", help='Cores, such as 2, 0.5 or "500m".'),
        click.option("--ram", metavar="AMOUNT", help='GiB, or with a unit: "512Mi", "4Gi".'),
        click.option("--gpu", metavar="N", help="Whole GPUs."),
        click.option(
            "--resource",
            "extra",
            multiple=True,
            metavar="KIND=AMOUNT",
            help="Any other kind the cluster has, such as tpu=2 (repeatable).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def submission(
    client: Client,
    cluster: str,
    image: str,
    name: str | None,
    priority: str | None,
    cpu: str | None,
    ram: str | None,
    gpu: str | None,
    extra: tuple[str, ...],
) -> dict[str, Any]:
    """The body of PUT /deployment/ and POST /deployment/plan/ from the options."""
    resource: dict[str, str] = {}
    for kind, value in (("cpu", cpu), ("ram", ram), ("gpu", gpu)):
        if value is not None:
            resource[kind] = value
    for pair in extra:
        kind, sign, value = pair.partition("=")
        if not sign or not kind.strip() or not value.strip():
            raise click.BadParameter(f"{pair!r} is not KIND=AMOUNT", param_hint="--resource")
        resource[kind.strip()] = value.strip()
    if not resource:
        raise click.UsageError("Ask for some resources: --cpu, --ram, --gpu or --resource.")
    body: dict[str, Any] = {
        "cluster_id": cluster_id(client, cluster),
        "image": image,
        "resource": resource,
    }
    if name is not None:
        body["name"] = name
    if priority is not None:
        body["priority"] = priority
    return body


def cluster_id(client: Client, cluster: str) -> int:
    """A cluster id from its name (or its id, given as digits)."""
    if cluster.strip().isdigit():
        return int(cluster)
    wanted = cluster.strip().lower()
    clusters = client.pages("/cluster/", PAGE_SIZE)
    for item in clusters:
        if item["name"] == wanted:
            return int(item["id"])
    known = ", ".join(item["name"] for item in clusters) or "none yet"
    raise ApiError(f"No cluster named {cluster} (yours: {known}).", ExitCode.NOT_FOUND)


# --------------------------------------------------------------------------------------------
# Commands


def with_client(command: Callable) -> Callable:
    """Pass the session and its API client to the command."""

    @pass_session
    @wraps(command)
    def run(session: Session, *args: Any, **kwargs: Any) -> Any:
        return command(session, session.client(), *args, **kwargs)

    return run


@cli.command()
@click.option("--username", "-u", help="Your Kargo username (asked for if absent).")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (for CI)."
)
@pass_session
def login(session: Session, username: str | None, password_stdin: bool) -> None:
    """Log in and keep the token in your configuration (readable by you only)."""
    url = session.url(required=False) or click.prompt("Kargo server URL")
    client = Client(url, timeout=session.http_timeout)
    if username is None:
        username = click.prompt("Username")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True)
    answer = client.request(
        "POST", "/user/login/", {"username": username, "password": password}, authenticated=False
    )
    path = config.save(
        config.Settings(
            url=client.url,
            token=answer["token"],
            username=username,
            expires_at=answer["expires_at"],
        )
    )
    session.emit(
        {
            "url": client.url,
            "username": username,
            "expires_at": answer["expires_at"],
            "config": str(path),
        },
        f"Logged in to {client.url} as {username}; the token is valid until "
        f"{answer['expires_at']} and kept in {path}.",
    )


@cli.command()
@with_client
def logout(session: Session, client: Client) -> None:
    """Revoke the token on the server and forget it here."""
    client.request("POST", "/user/logout/")
    config.forget_token()
    session.emit({"logged_out": True}, f"Logged out of {client.url}.")


@cli.command()
@with_client
def clusters(session: Session, client: Client) -> None:
    """Your organization's clusters, with their usage."""
    items = client.pages("/cluster/", PAGE_SIZE)
    session.emit(
        items,
        lambda: table(
            [
                [
                    str(item["id"]),
                    item["name"],
                    usage(item["resources"]),
                    str(item["max_deployments"]),
                ]
                for item in items
            ],
            ["ID", "NAME", "USED/CAPACITY", "MAX DEPLOYMENTS"],
        ),
    )


@cli.command()
@resource_options
@click.option("--wait", is_flag=True, help="Wait until it runs; fail if it does not in time.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=DEFAULT_WAIT_TIMEOUT_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="How long --wait waits.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=DEFAULT_WAIT_INTERVAL_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="How often --wait asks.",
)
@with_client
def deploy(
    session: Session,
    client: Client,
    wait: bool,
    timeout: float,
    interval: float,
    **options: Any,
) -> None:
    """Deploy an image: it runs now, or waits in the cluster's queue.

    With --wait, exits 0 once it runs, or 5 with the reason it waits when it has not started
    within --timeout (it stays queued: delete it if you no longer want it).
    """
    body = submission(client, **options)
    answer = client.request("PUT", "/deployment/", body)
    deployment = answer["deployment"]
    if not wait or deployment["status"] == "running":
        session.emit(answer, answer["message"])
        return
    session.note(f"{answer['message']} Waiting up to {number(timeout)} s for it to run...")
    deployment = wait_until_running(session, client, deployment, timeout, interval)
    if deployment["status"] == "running":
        session.emit(deployment, f"#{deployment['id']} {deployment['name']} is running.")
        return
    raise ApiError(
        f"#{deployment['id']} {deployment['name']} did not start within {number(timeout)} s; "
        f"it waits at {waiting(deployment)}.",
        ExitCode.NOT_RUNNING,
        details={"deployment": deployment},
    )


def wait_until_running(
    session: Session,
    client: Client,
    deployment: dict[str, Any],
    timeout: float,
    interval: float,
) -> dict[str, Any]:
    """Poll the deployment until it runs or `timeout` passes; its last state."""
    deadline = time.monotonic() + timeout
    shown = waiting(deployment)
    while deployment["status"] != "running":
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(interval, left))
        deployment = client.get(f"/deployment/{deployment['id']}/")
        if deployment["status"] == "pending" and waiting(deployment) != shown:
            shown = waiting(deployment)
            session.note(f"  waiting at {shown}")
    return deployment


@cli.command()
@resource_options
@with_client
def plan(session: Session, client: Client, **options: Any) -> None:
    """What a deploy would do now: what would start, wait and be preempted (nothing changes).

    Exits 0 when it would start at once, 5 when it would wait.
    """
    body = submission(client, **options)
    answer = client.request("POST", "/deployment/plan/", body)

    def render() -> str:
        def who(line: dict[str, Any]) -> str:
            return (
                f"{line['name']} (new)" if line["id"] is None else f"#{line['id']} {line['name']}"
            )

        lines = [answer["message"]]
        lines += [
            f"  + start    {who(line)}, priority {line['priority']}" for line in answer["start"]
        ]
        lines += [
            f"  ! preempt  #{victim['id']} {victim['name']}, priority {victim['priority']}"
            + (f", owned by {victim['owner']}" if victim["owner"] else "")
            for victim in answer["preempt"]
        ]
        lines += [
            f"  ~ wait     {who(line)} at position {line['queue_position']}: {line['reason']}"
            for line in answer["wait"]
        ]
        lines.append(f"  queue afterwards: {answer['queue_length']}")
        return "\n".join(lines)

    session.emit(answer, render)
    if answer["deployment"]["status"] != "running":
        sys.exit(int(ExitCode.NOT_RUNNING))


@cli.command()
@click.argument("deployment_id", required=False, type=click.IntRange(min=1))
@with_client
def status(session: Session, client: Client, deployment_id: int | None) -> None:
    """One deployment in detail, or (without ID) who you are and your clusters' usage."""
    if deployment_id is not None:
        deployment = client.get(f"/deployment/{deployment_id}/")
        session.emit(deployment, lambda: describe(deployment))
        return
    user = client.get("/user/")
    items = client.pages("/cluster/", PAGE_SIZE)
    running = client.get("/deployment/", status="running", offset=1)["total"]
    pending = client.get("/deployment/", status="pending", offset=1)["total"]
    data = {
        "url": client.url,
        "user": user,
        "clusters": items,
        "deployments": {"running": running, "pending": pending},
    }

    def render() -> str:
        head = (
            f"{user['display_name']} ({user['username']}, {user['role']}) of "
            f"{user['organization']['name']} at {client.url}\n"
            f"deployments: {running} running, {pending} waiting\n"
        )
        return head + table(
            [[item["name"], usage(item["resources"])] for item in items], ["CLUSTER", "USED"]
        )

    session.emit(data, render)


@cli.command(name="ls")
@click.option("--cluster", metavar="NAME", help="Only this cluster (name or id).")
@click.option("--status", "wanted", type=click.Choice(["running", "pending"]), help="Only these.")
@with_client
def list_deployments(
    session: Session, client: Client, cluster: str | None, wanted: str | None
) -> None:
    """Your organization's deployments: running first, then the queues in order."""
    query = {"status": wanted}
    if cluster is not None:
        query["cluster_id"] = str(cluster_id(client, cluster))
    items = client.pages("/deployment/", PAGE_SIZE, **query)
    session.emit(
        items,
        lambda: table(
            [
                [
                    str(item["id"]),
                    item["name"],
                    item["cluster_name"] or str(item["cluster_id"]),
                    str(item["priority"]),
                    item["status"],
                    waiting(item) if item["status"] == "pending" else "",
                ]
                for item in items
            ],
            ["ID", "NAME", "CLUSTER", "PRIORITY", "STATUS", "WAITING"],
        ),
    )


@cli.command()
@click.argument("deployment_id", type=click.IntRange(min=1))
@click.argument("level")
@with_client
def priority(session: Session, client: Client, deployment_id: int, level: str) -> None:
    """Change a deployment's priority (low, normal, high, critical or 0-1000).

    A scheduling event: raised, it may start and preempt lower priorities; lowered, a waiting
    deployment that now outranks it may preempt it.
    """
    answer = client.request("PATCH", f"/deployment/{deployment_id}/", {"priority": level})
    session.emit(answer, answer["message"])


@cli.command()
@click.argument("deployment_id", type=click.IntRange(min=1))
@with_client
def delete(session: Session, client: Client, deployment_id: int) -> None:
    """Delete a deployment; its cluster's queue is served at once."""
    client.request("DELETE", f"/deployment/{deployment_id}/")
    session.emit({"deleted": deployment_id}, f"Deleted deployment #{deployment_id}.")
