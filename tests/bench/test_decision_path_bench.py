"""Smoke test of bench/decision_path_bench.py: a tiny run on the suite's database finishes,
fills the cluster through a real decision and prints a line per operation."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_tiny_run_measures_every_operation() -> None:
    database = "postgresql" if os.environ.get("KARGO_TEST_DATABASE_URL") else "sqlite"
    done = subprocess.run(
        [sys.executable, "bench/decision_path_bench.py", "--sizes", "60", "--trials", "2",
         "--databases", database],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    header = re.search(rf"{database}, 60 deployments \((\d+) running, (\d+) pending", done.stdout)
    assert header, done.stdout
    running, pending = map(int, header.groups())
    assert running + pending == 60 and running > 0 and pending > 0  # one decision filled it
    for operation in ("submit", "delete pending", "delete running"):
        line = re.search(rf"^  {operation} +p50 +([\d.]+) .*scheduler p50 +([\d.]+) ms$",
                         done.stdout, re.MULTILINE)  # fmt: skip
        assert line, done.stdout
        wall, scheduler = map(float, line.groups())
        assert 0 < scheduler <= wall
