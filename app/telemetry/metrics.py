"""The process's Prometheus metrics, correct across gunicorn workers.

Counters and histograms live in the default registry of `prometheus_client`. Under gunicorn
every worker is a process of its own: `boot.sh` sets `PROMETHEUS_MULTIPROC_DIR` before anything
imports the client, each worker then writes its samples to files there, and a scrape adds up
every worker's files (`MultiProcessCollector`); `gunicorn.conf.py` marks a dead worker's files
so its gauges leave with it while its counts stay in the totals. Without that variable (tests,
`flask run`) the process's own registry is scraped.

Values that are a property of the database rather than of a process (capacity, usage and queue
length per cluster) are not kept here: they are read at scrape time by the collector that
`services.telemetry` provides, so every instance reports the same truth.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

__all__ = ["CONTENT_TYPE_LATEST", "GaugeMetricFamily"]

# Request latencies from a fast 304 poll to a slow scheduling transaction under load.
_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# One decision of the pure scheduler: microseconds to tens of milliseconds.
_DECISION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)

HTTP_REQUESTS = Counter(
    "kargo_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["endpoint", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "kargo_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["endpoint", "method"],
    buckets=_LATENCY_BUCKETS,
)
SCHEDULING_DECISIONS = Counter(
    "kargo_scheduling_decisions",
    "Scheduling decisions made, by event (submit, delete, reconcile, dry_run, ...).",
    ["event"],
)
SCHEDULING_DURATION = Histogram(
    "kargo_scheduling_decision_duration_seconds",
    "Time the pure scheduler took for one decision, by event.",
    ["event"],
    buckets=_DECISION_BUCKETS,
)
PREEMPTIONS = Counter(
    "kargo_preemptions",
    "Running deployments preempted (or evicted by a capacity cut) back to the queue.",
)
STARTS = Counter(
    "kargo_deployment_starts",
    "Deployments the scheduler started, first starts and restarts after a preemption.",
)
WEBHOOK_DELIVERIES = Counter(
    "kargo_webhook_deliveries",
    "Webhook delivery attempts by outcome: delivered, retry (to be tried again), failed (gave up).",
    ["outcome"],
)

# The reconciler (app/runtime): how long after the scheduler's decision a container runs, how
# long a pass over one cluster takes, what it did and what went wrong.
_RECONCILE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RECONCILE_LAG = Histogram(
    "kargo_reconcile_lag_seconds",
    "Time from the scheduler starting a deployment to its container started by the reconciler.",
    buckets=_RECONCILE_BUCKETS,
)
RECONCILE_PASS_DURATION = Histogram(
    "kargo_reconcile_pass_duration_seconds",
    "Time one reconciler pass over one cluster took (engine calls included).",
    buckets=_RECONCILE_BUCKETS,
)
RECONCILE_ERRORS = Counter(
    "kargo_reconcile_errors",
    "Reconciler failures, by kind (engine_unreachable, pull, start, stop, pass, lease_lost).",
    ["kind"],
)
RECONCILE_ACTIONS = Counter(
    "kargo_reconcile_actions",
    "Containers the reconciler started, stopped and restarted.",
    ["action"],
)


def serve(port: int, address: str) -> None:
    """Serve this process's metrics on their own port (the reconciler is not a web worker)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=address)


def multiprocess_enabled() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """The text a scrape receives: every worker's samples (or this process's) plus `extra`."""
    if multiprocess_enabled():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Forward(REGISTRY))
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)


def mark_worker_dead(pid: int) -> None:
    """Called by gunicorn when a worker exits (see gunicorn.conf.py)."""
    if multiprocess_enabled():
        multiprocess.mark_process_dead(pid)


class _Forward(Collector):
    """Serves another registry's metrics inside a fresh one (so `extra` is not kept globally)."""

    def __init__(self, source: CollectorRegistry) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        return self._source.collect()


class Gauges(Collector):
    """A collector whose gauges come from a function called at scrape time."""

    def __init__(self, read: Callable[[], Iterable[Metric]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        return self._read()
