"""Gunicorn settings of the shipped start command (boot.sh, the Docker image, compose).

Worker class: gevent. With gunicorn's default sync workers every connection holds a whole
worker process until its request is read and answered, so a handful of clients sending their
bodies one byte a second took every worker and the service stopped answering. A gevent worker
serves each connection in a greenlet: a slow client waits on its socket without holding
anyone else up, up to WORKER_CONNECTIONS connections per worker.

Both database drivers cooperate: psycopg 3 sees gevent's monkey-patching (done by the worker
before the application is imported) and waits on its sockets through gevent; SQLite calls run
to completion without yielding, and a scheduling transaction does no network I/O between its
BEGIN IMMEDIATE and its COMMIT, so greenlets of one worker never interleave inside one.
Limits that the application enforces (form and JSON body sizes) are in config.py.
"""

import os


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


bind = f"0.0.0.0:{_int('PORT', 8001)}"
workers = _int("WEB_CONCURRENCY", 4)
worker_class = "gevent"
worker_connections = _int("WORKER_CONNECTIONS", 1000)
# A worker whose event loop is blocked this long (a runaway request) is restarted.
timeout = _int("WORKER_TIMEOUT_SECONDS", 30)
keepalive = _int("KEEPALIVE_SECONDS", 5)
accesslog = "-"
# No control socket: Kargo does not use `gunicornc`, and the default socket under $HOME would
# need a writable home directory and collide between instances sharing one.
control_socket_disable = True
