"""The reconciler's loop: `flask kargo reconcile` (its own process and compose service).

Wakes within about a second of a scheduling commit (PostgreSQL LISTEN/NOTIFY, or a poll of
the clusters' state versions every RECONCILER_POLL_MS), when a container of this install ends
on an engine (the drivers follow the engines' events: killed from outside, crashed, out of
memory), when a restart backoff runs out, and at least every RECONCILER_RESYNC_SECONDS.
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

ENGINE_EVENT_RECHECKS = (1.0, 3.0)


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
            # A container that ends on an engine (killed, crashed) is looked at within a poll,
            # not at the next resync.
            ended = threading.Event()
            watches = reconcile.watch_engines(ended.set)
            # An engine lists a container as running for a moment after its "die" event
            # (about 0.1 s measured on Docker 20.10): passes follow an event at once and again
            # after each of these delays, in seconds.
            rechecks: list[float] = []
            token = None
            last = 0.0
            try:
                while not self.stopping.is_set():
                    current = reconcile.change_token()
                    now = time.monotonic()
                    recheck = bool(rechecks) and now >= rechecks[0]
                    if (
                        current != token
                        or ended.is_set()
                        or recheck
                        or now - last >= resync
                        or reconcile.retry_due()
                    ):
                        if ended.is_set():
                            ended.clear()
                            rechecks = [now + delay for delay in ENGINE_EVENT_RECHECKS]
                        elif recheck:
                            rechecks.pop(0)
                        token = current
                        last = now
                        reconcile.run_pass(self.holder, share=True)
                        self.passes += 1
                        continue  # look again at once: the pass may have changed things
                    waker.wait(poll)
            finally:
                for watch in watches:
                    watch.close()
                waker.close()
                try:
                    reconcile.release_leases(self.holder)
                except Exception:
                    self.app.logger.warning("reconciler: could not release its leases")
