"""Where `kargo login` keeps the server and the token, and where the others find them.

One small JSON file in the user's configuration directory (`~/.config/kargo/config.json` on
Linux, or `$KARGO_CONFIG`), readable and writable by its owner only (mode 0600, in a 0700
directory): it holds a bearer token. `KARGO_URL` and `KARGO_TOKEN` in the environment take
precedence over it, so a CI job needs no file at all.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import click

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


def config_path() -> Path:
    explicit = os.environ.get("KARGO_CONFIG", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    return Path(click.get_app_dir("kargo")) / "config.json"


@dataclass(frozen=True)
class Settings:
    url: str | None = None
    token: str | None = None
    username: str | None = None
    expires_at: str | None = None


def load(path: Path | None = None) -> Settings:
    """The stored settings; an absent or unreadable file is no settings, never an error."""
    path = path or config_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return Settings()
    if not isinstance(data, dict):
        return Settings()
    return Settings(
        **{
            key: value
            for key, value in data.items()
            if key in Settings.__dataclass_fields__ and isinstance(value, str)
        }
    )


def save(settings: Settings, path: Path | None = None) -> Path:
    """Write the settings atomically, owner-only from the first byte (never briefly 0644)."""
    path = path or config_path()
    path.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".tmp")
    try:
        os.fchmod(descriptor, FILE_MODE)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(asdict(settings), handle, indent=2)
            handle.write("\n")
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path


def forget_token(path: Path | None = None) -> None:
    """Drop the stored token (after logout), keeping the server's address."""
    path = path or config_path()
    stored = load(path)
    if stored.token is not None:
        save(Settings(url=stored.url, username=stored.username), path)
