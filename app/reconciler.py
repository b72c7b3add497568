"""The reconciler's loop: `flask kargo reconcile` (its own process and compose service).

Wakes within about a second of a scheduling commit (PostgreSQL LISTEN/NOTIFY, or a poll of
the clusters' state versions every RECONCILER_POLL_MS), when a restart backoff runs out, and
at least every RECONCILER_RESYNC_SECONDS (a container killed from outside is seen then).
Each pass is `services.reconcile.run_pass`: per cluster, take the lease, observe, converge,
write back. Crash-safe by construction: nothing is remembered between passes that the
database and the engine's labels do not hold.

It sits beside `app/cli.py`, above the services it drives; the drivers in `app/runtime/` sit
below them.
"""

from __future__ import annotations

import threading
import time

from flask import Flask

from app.services import reconcile


class Reconciler:
    def __init__(self, app: Flask, holder: str | None = None) -> None:
        self.app = app
        self.holder = holder or reconcile.new_holder()
        self.stopping = threading.Event()
        self.passes = 0

    def run_once(self) -> list[reconcile.PassReport]:
        with self.app.app_context():
            reports = reconcile.run_pass(self.holder)
        self.passes += 1
        return reports

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        """Loop until `stop()` (or SIGTERM in the command); leases are released on the way out."""
        config = self.app.config
        poll = max(0.05, config["RECONCILER_POLL_MS"] / 1000)
        resync = min(config["RECONCILER_RESYNC_SECONDS"], config["RECONCILER_LEASE_SECONDS"] / 2)
        with self.app.app_context():
            waker = reconcile.Waker()
            token = None
            last = 0.0
            try:
                while not self.stopping.is_set():
                    current = reconcile.change_token()
                    now = time.monotonic()
                    if current != token or now - last >= resync or reconcile.retry_due():
                        token = current
                        last = now
                        reconcile.run_pass(self.holder, share=True)
                        self.passes += 1
                        continue  # look again at once: the pass may have changed things
                    waker.wait(poll)
            finally:
                waker.close()
                try:
                    reconcile.release_leases(self.holder)
                except Exception:
                    self.app.logger.warning("reconciler: could not release its leases")
