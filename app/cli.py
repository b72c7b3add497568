"""`flask kargo ...` commands, including `flask kargo demo`, which seeds a living dashboard.

Commands are an edge like the pages: they call services (which validate, lock and commit) and
never write rows themselves, so the demo's usage accounting is the real scheduler's.
"""

from __future__ import annotations

import click
from flask.cli import AppGroup

kargo_cli = AppGroup("kargo", help="Kargo administration commands.")

DEMO_URL = "http://127.0.0.1:8001"
DEMO_PASSWORD = "kargo-harbor-2026"  # must not contain a username: the password rules say so
DEMO_OWNER = ("demo", "Demo Owner")
DEMO_MEMBER = ("dev", "Dana Developer")
DEMO_ORGANIZATION = "Demo Organization"

# (name, capacity as typed in the form, maximum deployments)
DEMO_CLUSTERS = [
    ("gpu-pool", {"cpu": "16", "gpu": "4", "ram": "64"}, 20),
    ("web", {"cpu": "8", "ram": "16"}, 20),
    ("staging", {"cpu": "2", "ram": "4", "disk_gb": "100"}, 10),
]
# (cluster, who, name, image, priority, requests), submitted in this order so that the
# scheduler itself produces running, queued and preempted deployments.
DEMO_DEPLOYMENTS = [
    (
        "gpu-pool",
        "member",
        "training-a",
        "ghcr.io/acme/trainer:2.3",
        "low",
        {"cpu": "4", "gpu": "2", "ram": "16"},
    ),
    (
        "gpu-pool",
        "member",
        "training-b",
        "ghcr.io/acme/trainer:2.3",
        "low",
        {"cpu": "4", "gpu": "2", "ram": "16"},
    ),
    (
        "gpu-pool",
        "owner",
        "inference",
        "ghcr.io/acme/llm-serve:1.8",
        "critical",
        {"cpu": "2", "gpu": "2", "ram": "24"},
    ),
    (
        "gpu-pool",
        "member",
        "notebook",
        "jupyter/base-notebook:2024.1",
        "low",
        {"cpu": "1", "gpu": "1", "ram": "4"},
    ),
    (
        "web",
        "owner",
        "api",
        "registry.example.com/shop/api:4.2.0",
        "high",
        {"cpu": "2", "ram": "4"},
    ),
    (
        "web",
        "member",
        "frontend",
        "registry.example.com/shop/web:4.2.0",
        "normal",
        {"cpu": "1", "ram": "2"},
    ),
    (
        "web",
        "member",
        "worker",
        "registry.example.com/shop/worker:4.2.0",
        "normal",
        {"cpu": "4", "ram": "8"},
    ),
    ("web", "member", "nightly-report", "python:3.12-slim", "low", {"cpu": "2", "ram": "4"}),
    (
        "staging",
        "member",
        "preview-env",
        "nginx:1.27",
        "normal",
        {"cpu": "0.5", "ram": "512Mi", "disk_gb": "10"},
    ),
]


@kargo_cli.command("demo")
def demo() -> None:
    """Seed a demo organization with clusters and deployments; print how to log in.

    Idempotent: when the demo owner already exists, nothing is written and the credentials are
    printed again.
    """
    from app.services import accounts, clusters, deployments
    from app.services.errors import Conflict, DomainError, Unauthorized

    try:
        accounts.authenticate(DEMO_OWNER[0], DEMO_PASSWORD)
        _print_credentials("The demo organization already exists.")
        return
    except Unauthorized:
        pass  # not seeded yet (or the name is taken: signup says so below)
    try:
        owner = accounts.signup(DEMO_OWNER[0], DEMO_PASSWORD, DEMO_OWNER[1], DEMO_ORGANIZATION)
    except Conflict as exc:
        raise click.ClickException(
            f"A user named {DEMO_OWNER[0]!r} already exists with another password, so the demo "
            f"cannot be seeded here ({exc.message})."
        ) from exc
    _invite, code = accounts.create_invite(owner)
    member = accounts.redeem_invite(code, DEMO_MEMBER[0], DEMO_PASSWORD, DEMO_MEMBER[1])
    users = {"owner": owner, "member": member}
    cluster_ids = {}
    for name, capacity, maximum in DEMO_CLUSTERS:
        cluster_ids[name] = clusters.create_cluster(owner, name, capacity, maximum).id
    try:
        for cluster, who, name, image, priority, requests in DEMO_DEPLOYMENTS:
            result = deployments.submit(
                users[who], cluster_ids[cluster], image, name, priority, requests
            )
            click.echo(f"  {cluster}: {result.message}")
    except DomainError as exc:  # a demo that no longer fits the rules is a bug worth showing
        raise click.ClickException(f"seeding the demo failed: {exc.message}") from exc
    _print_credentials("Seeded the demo organization.")


def _print_credentials(headline: str) -> None:
    click.echo(headline)
    click.echo(f"  Open      {DEMO_URL}")
    click.echo(f"  Owner     {DEMO_OWNER[0]} / {DEMO_PASSWORD}")
    click.echo(f"  Member    {DEMO_MEMBER[0]} / {DEMO_PASSWORD}")


__all__ = ["kargo_cli"]


@kargo_cli.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
def backup_command(path: str) -> None:
    """Write a consistent backup of the database to PATH (a new file), while Kargo runs."""
    from app.services import backups
    from app.services.errors import DomainError

    try:
        result = backups.backup(path)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"Backed up the {result.dialect} database to {result.path} ({result.bytes} bytes).")


@kargo_cli.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def restore_command(path: str) -> None:
    """Load the backup at PATH into the configured (empty) database, then migrate it to head."""
    import flask_migrate

    from app.services import backups
    from app.services.errors import DomainError

    try:
        backups.restore(path)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    flask_migrate.upgrade()
    click.echo(f"Restored {path} and brought the schema to the current version.")


def freeze_loaded() -> None:
    """Before a long-running loop: move what the process has loaded out of the garbage
    collector's generations, as gunicorn.conf.py does for a served worker (a large decision's
    full collections would otherwise walk it all again)."""
    import gc

    gc.collect()
    gc.freeze()


@kargo_cli.command("reconcile")
@click.option("--once", is_flag=True, help="Run one pass over every cluster, then exit.")
def reconcile_command(once: bool) -> None:
    """Run the reconciler: make the engines run what the scheduler decided (see README)."""
    import signal

    from flask import current_app

    from app.reconciler import Reconciler

    reconciler = Reconciler(current_app._get_current_object())
    if once:
        for report in reconciler.run_once():
            click.echo(
                f"cluster {report.cluster_id}: "
                + (
                    "held by another reconciler"
                    if report.skipped
                    else "engine unreachable"
                    if not report.reachable
                    else f"started {len(report.started)}, stopped {len(report.stopped)}, "
                    f"restarted {len(report.restarted)}, failed {len(report.failed)}"
                    + ("; lease lost to another reconciler, stopped" if report.lease_lost else "")
                )
            )
        return
    config = current_app.config
    if config["RECONCILER_METRICS_PORT"]:
        from app.telemetry import metrics

        metrics.serve(config["RECONCILER_METRICS_PORT"], config["RECONCILER_METRICS_ADDRESS"])
    signal.signal(signal.SIGTERM, lambda *_: reconciler.stop())
    freeze_loaded()
    click.echo(f"reconciler {reconciler.holder} running (Ctrl-C to stop)")
    try:
        reconciler.run()
    except KeyboardInterrupt:
        reconciler.stop()


@kargo_cli.command("expire")
@click.option("--once", is_flag=True, help="Finish what is due now and exit (no loop).")
@click.option(
    "--interval",
    type=click.IntRange(min=1),
    default=None,
    help="Seconds between passes (default: EXPIRE_INTERVAL_SECONDS).",
)
def expire_command(once: bool, interval: int | None) -> None:
    """Finish deployments whose maximum run time is over, freeing their resources; loops."""
    import time

    from flask import current_app

    from app.services import deployments

    pause = interval or current_app.config["EXPIRE_INTERVAL_SECONDS"]
    if not once:
        freeze_loaded()
    while True:
        finished = deployments.expire_due()
        if finished or once:
            ids = ", ".join(f"#{i}" for i in finished) or "none"
            click.echo(f"Finished {len(finished)} deployment(s) past their run time: {ids}.")
        if once:
            return
        time.sleep(pause)


@kargo_cli.command("prune-history")
def prune_history_command() -> None:
    """Delete audit entries older than HISTORY_RETENTION_DAYS and roll up the resource trail
    (run it daily, from cron)."""
    from datetime import timedelta

    from flask import current_app

    from app.models import utcnow
    from app.services import audit, clusters, notifications

    deleted = audit.prune()
    days = current_app.config["HISTORY_RETENTION_DAYS"]
    click.echo(f"Deleted {deleted} history entries older than {days} days.")
    retention = current_app.config["DELIVERY_RETENTION_DAYS"]
    settled = notifications.prune(utcnow() - timedelta(days=retention))
    click.echo(f"Deleted {settled} settled webhook deliveries older than {retention} days.")
    trail = clusters.compact_usage()
    click.echo(
        f"Usage trail: rolled up {trail.rolled_up} rows, deleted {trail.deleted} hour rows "
        f"older than {days} days."
    )


@kargo_cli.command("notify")
@click.option("--once", is_flag=True, help="One pass, then exit (tests, cron).")
def notify_command(once: bool) -> None:
    """Deliver webhooks from the outbox and report long waits, every NOTIFY_INTERVAL_SECONDS.

    Run it as its own process (a compose service); several may run at once.
    """
    from flask import current_app

    from app.services import notifications

    if once:
        summary = notifications.run_once()
        click.echo(
            f"Delivered {summary.delivered}, to retry {summary.retried}, failed "
            f"{summary.failed}; {summary.long_waits} long waits reported."
        )
        return
    interval = current_app.config["NOTIFY_INTERVAL_SECONDS"]
    freeze_loaded()
    click.echo(f"Delivering notifications every {interval} seconds (Ctrl+C stops).")
    try:
        notifications.run_forever(interval)
    except KeyboardInterrupt:
        click.echo("Stopped.")
