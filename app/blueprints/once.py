"""Secrets shown once across a POST/redirect/GET: a new invite link, reset link or API token.

The POST that creates a secret cannot render it (a reload would post again and make another),
and the secret is never stored server-side in clear. So the POST keeps it in the signed session
cookie under one key and redirects; the GET that follows takes it out again, and the cookie it
sends back no longer has it. The secret thus travels only to the person who created it, once.
"""

from __future__ import annotations

from typing import Any

from flask import session

_KEY = "_show_once"


def keep(kind: str, **values: Any) -> None:
    """Remember `values` (JSON-safe) for the next page of this browser that asks for `kind`."""
    session[_KEY] = {"kind": kind, **values}


def take(kind: str) -> dict[str, Any] | None:
    """The values kept for `kind`, removed from the session; None when there are none."""
    kept = session.get(_KEY)
    if not isinstance(kept, dict) or kept.get("kind") != kind:
        return None
    session.pop(_KEY, None)
    return kept
