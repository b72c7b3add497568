"""Slow clients cannot take the shipped start command down (issue: four slow bodies did).

Against the real boot.sh on 127.0.0.1 (production settings, on SQLite and on PostgreSQL):
50 connections each announce a form body of 10,000 bytes on `POST /login` and then trickle it
one byte at a time. While they are all open, other clients must still get /healthz and the
login page promptly. With gunicorn's default sync workers the first few slow bodies held
every worker and /healthz timed out. Meanwhile a 100 MB form announced by its Content-Length
is refused with 413 before a byte of it is read.
Bounded: 50 sockets, eight rounds of trickling (about 4 s), loopback only.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.support.boot import get, running_boot_sh
from tests.support.databases import fresh_database

SLOW_CLIENTS = 50
ANNOUNCED_BODY_BYTES = 10_000  # under the form body limit: a slow body, not a large one
TRICKLE_ROUNDS = 8  # each: a byte on every slow body, then both probes, then 0.5 s
# Generous for a loaded machine, yet far below the worker timeout (30 s): a worker held by a
# slow body would not answer within it.
PROBE_TIMEOUT_SECONDS = 10


@pytest.fixture(params=["sqlite", "postgresql"])
def boot_database_url(request, tmp_path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path, "slow") as url:
        yield url


def open_slow_body(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    head = (
        "POST /login HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {ANNOUNCED_BODY_BYTES}\r\n"
        "\r\n"
    )
    sock.sendall(head.encode() + b"u")
    return sock


def announce_huge_body(base: str) -> bytes:
    """Announce a 100 MB form and send none of it: the answer comes from the header alone."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_SECONDS) as sock:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: kargo\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 104857600\r\n\r\n"
        )
        return sock.recv(200)


def test_fifty_slow_bodies_leave_the_service_available(boot_database_url, tmp_path):
    # Two workers: fewer than the slow clients by far, as on a small production host.
    with running_boot_sh(boot_database_url, tmp_path, workers=2) as (base, log):
        slow = [open_slow_body(base) for _ in range(SLOW_CLIENTS)]
        try:
            # A fixed number of rounds, not a time window: a slow machine probes as often.
            for _ in range(TRICKLE_ROUNDS):
                for sock in slow:
                    sock.sendall(b"s")
                try:
                    health, _ = get(f"{base}/healthz", timeout=PROBE_TIMEOUT_SECONDS)
                    login, page = get(f"{base}/login", timeout=PROBE_TIMEOUT_SECONDS)
                except OSError as error:  # a timeout: the slow bodies hold every worker
                    pytest.fail(f"the service stopped answering with slow clients open: {error}")
                assert (health, login) == (200, 200)
                assert "<form" in page
                time.sleep(0.5)
            assert announce_huge_body(base).startswith(b"HTTP/1.1 413")
        finally:
            for sock in slow:
                sock.close()
        # The slow connections did not cost the workers their lives either.
        assert "WORKER TIMEOUT" not in log.read_text()


COOPERATION_CHECK = """
from gevent import monkey
monkey.patch_all()  # what gunicorn's gevent worker does before importing the application
import sys, time, uuid
import gevent, psycopg
from psycopg import waiting

url, name = sys.argv[1], f"kargo-gevent-{uuid.uuid4().hex[:8]}"

def sleep_in_database():
    with psycopg.connect(url, application_name=name) as connection:
        connection.execute("SELECT pg_sleep(4)")

sleepers = [gevent.spawn(sleep_in_database) for _ in range(4)]
most = 0
with psycopg.connect(url) as watcher:
    # While the greenlets wait on the server this one keeps running, until they all finish:
    # on a loaded machine their connections may take seconds to open.
    deadline = time.monotonic() + 45
    while not all(sleeper.ready() for sleeper in sleepers) and time.monotonic() < deadline:
        gevent.sleep(0.025)
        count = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        most = max(most, watcher.execute(count, (name,)).fetchone()[0])
gevent.joinall(sleepers, raise_error=True)
print(waiting.wait.__name__, most)
"""


def test_psycopg_waits_through_gevent_so_greenlets_overlap():
    """Four greenlets of one process wait on PostgreSQL at once; a fifth watches them.

    With a blocking wait (psycopg's C wait function) the first query would stop the whole
    process: the watcher would never see more than one of them in the server.
    """
    import subprocess
    import sys

    from sqlalchemy.engine import make_url

    from tests.support.databases import postgres_url

    base = postgres_url()
    if base is None:
        pytest.skip("KARGO_TEST_DATABASE_URL is not set")
    url = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    result = subprocess.run(
        [sys.executable, "-c", COOPERATION_CHECK, url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    wait_function, most_at_once = result.stdout.split()
    assert wait_function != "wait_c"
    assert int(most_at_once) >= 2
