"""`flask kargo ...` commands."""

from __future__ import annotations

import click
from flask.cli import AppGroup

kargo_cli = AppGroup("kargo", help="Kargo administration commands.")


def register_command(func):
    """Attach a command to the `flask kargo` group (used by domain command modules)."""
    return kargo_cli.command()(func)


__all__ = ["click", "kargo_cli", "register_command"]
