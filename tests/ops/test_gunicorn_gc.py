"""gunicorn.conf.py and the long-running commands freeze what a process has loaded out of the
garbage collector's reach, so the full collections a large decision triggers do not walk the
whole application again."""

from __future__ import annotations

import gc
import runpy
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]


def test_a_worker_freezes_what_it_loaded_once_initialized() -> None:
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    before = gc.get_freeze_count()
    loaded = [object() for _ in range(100)]  # stands for what the app holds
    try:
        settings["post_worker_init"](SimpleNamespace(pid=1))
        assert gc.get_freeze_count() >= before + len(loaded)
        assert gc.isenabled()  # collections still run for what requests leave behind
    finally:
        gc.unfreeze()


def test_the_long_running_commands_freeze_what_they_loaded() -> None:
    from app.cli import freeze_loaded

    before = gc.get_freeze_count()
    loaded = [object() for _ in range(100)]
    try:
        freeze_loaded()
        assert gc.get_freeze_count() >= before + len(loaded)
    finally:
        gc.unfreeze()
