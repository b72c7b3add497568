"""How long the Docker image takes to build and start here, and how big it is.

    .venv/bin/python bench/image_bench.py                 # cached root file system, fresh builds
    .venv/bin/python bench/image_bench.py --fresh-rootfs  # also debootstrap anew (CI's case)

Uses the tests' private dockerd (tests/support/dockerd.py, started if needed) and the recipe of
tests/support/images.py. Every step is done anew and timed: debootstrap (with --fresh-rootfs,
into a temporary cache), `docker import`, the stand-in base build and the project's image build
with --no-cache (under bench tags, removed at the end), then one container's create, start to
/healthz, stop and removal on SQLite. Prints one line per step and a JSON summary. Needs root,
debootstrap and network access to the Debian mirror and the package index the host uses.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import dockerd, images  # noqa: E402

START_TIMEOUT_SECONDS = 180


def timed(results: dict, name: str, action):
    started = time.monotonic()
    value = action()
    results[name] = round(time.monotonic() - started, 1)
    print(f"{name:<28} {results[name]:>7.1f} s", flush=True)
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh-rootfs", action="store_true", help="debootstrap from nothing")
    args = parser.parse_args()
    reason = dockerd.unavailable_reason() or images.unavailable_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 1
    daemon = dockerd.start()
    run = uuid.uuid4().hex[:8]
    rootfs_tag = f"kargo-bench/rootfs:{run}"
    stand_in_tag = f"kargo-bench/stand-in:{run}"
    kargo_tag = f"kargo-bench/kargo:{run}"
    container = f"kargo-bench-{run}"
    results: dict[str, float] = {}
    sizes: dict[str, int] = {}
    quiet = lambda _message: None  # noqa: E731
    try:
        with tempfile.TemporaryDirectory(prefix="kargo-bench-cache-") as scratch:
            cache = Path(scratch) if args.fresh_rootfs else images.CACHE_DIR
            tarball = timed(
                results, "rootfs (debootstrap)", lambda: images.rootfs_tarball(quiet, cache)
            )
            if not args.fresh_rootfs:
                results["rootfs (debootstrap)"] = None  # taken from the cache, not measured
            sizes["rootfs tarball"] = tarball.stat().st_size
            timed(
                results,
                "docker import",
                lambda: images.import_rootfs(daemon, tarball, rootfs_tag, quiet),
            )
        timed(
            results,
            "stand-in base build",
            lambda: images.build_stand_in(
                daemon, rootfs_tag, stand_in_tag, "--no-cache", log=quiet
            ),
        )
        sizes["stand-in base image"] = images.image_size(daemon, stand_in_tag)
        images.ensure_base_image(daemon, quiet)  # the name the Dockerfile builds FROM
        timed(
            results,
            "kargo image build",
            lambda: images.build_kargo(daemon, kargo_tag, "--no-cache"),
        )
        sizes["kargo image"] = images.image_size(daemon, kargo_tag)
        env = [
            "--env",
            f"SECRET_KEY={secrets.token_urlsafe(32)}",
            "--env",
            "PUBLIC_URL=http://127.0.0.1:8001",
            "--env",
            "WEB_CONCURRENCY=2",
        ]
        timed(
            results,
            "container create",
            lambda: daemon.docker(
                "create", "--name", container, "--publish", "127.0.0.1::8001", *env, kargo_tag
            ),
        )

        def start_until_healthz() -> None:
            daemon.docker("start", container)
            port = daemon.docker("port", container, "8001/tcp").split()[0].rsplit(":", 1)[1]
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                        return
                except requests.RequestException:
                    pass
                time.sleep(0.2)
            raise RuntimeError("no /healthz answer")

        timed(results, "start to /healthz (migrates)", start_until_healthz)
        timed(results, "docker stop", lambda: daemon.docker("stop", "--time", "20", container))
        timed(results, "container remove", lambda: daemon.docker("rm", container, timeout=300))
    finally:
        daemon.docker("rm", "--force", container, check=False, timeout=300)
        for tag in (kargo_tag, stand_in_tag, rootfs_tag):
            daemon.docker("rmi", tag, check=False, timeout=300)
    for name, size in sizes.items():
        print(f"{name:<28} {size / 2**20:>7.0f} MiB")
    summary = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average": os.getloadavg(),
        "seconds": results,
        "bytes": sizes,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
