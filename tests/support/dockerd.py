"""A private Docker daemon for the test run, shared by every test process.

Tests never touch a system Docker: they start their own dockerd (vfs storage, its own data
root, exec root and socket in one folder) and build their images there from local files, so
no test can reach a public registry.

    python -m tests.support.dockerd start [FOLDER]   start it (or find it), print DOCKER_HOST
    python -m tests.support.dockerd stop [FOLDER]    stop it and remove its folder

`make test` starts one before pytest and stops it afterwards. A test that asks for the
`docker_daemon` fixture without one running starts it in the default folder under an
exclusive file lock, so parallel pytest workers (and parallel checkouts) share one daemon;
that daemon is left running for the next run and stopped by `make test` or `stop`.

Only one dockerd can own the host's default bridge at a time, which is why the daemon is
shared rather than started per test. Tests keep out of each other's way by labels and names.

Besides its socket the daemon listens on tcp://127.0.0.1:PORT with TLS, verifying clients
(`Daemon.tls`): the certificates are made with openssl when it starts, with a second
authority whose client certificate the daemon refuses.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_FOLDER = Path(os.environ.get("KARGO_TEST_DOCKERD_DIR", "/tmp/kargo-test-dockerd-0"))
START_TIMEOUT_SECONDS = 90
STOP_TIMEOUT_SECONDS = 30
# The image every runtime test runs: busybox (Debian's static build) and nothing else.
BUSYBOX_IMAGE = "kargo-test/busybox:1"
BUSYBOX_BINARY = Path("/bin/busybox")
# Applets the tests use; each becomes /bin/<applet> -> busybox inside the image.
BUSYBOX_APPLETS = ("sh", "httpd", "sleep", "echo", "cat", "ls", "wget", "nc", "env", "kill", "true")


@dataclass(frozen=True)
class Daemon:
    folder: Path

    @property
    def socket(self) -> Path:
        return self.folder / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return self.folder / "dockerd.pid"

    @property
    def log(self) -> Path:
        return self.folder / "dockerd.log"

    @property
    def tls(self) -> TlsFiles:
        return TlsFiles(self.folder / "tls")

    def docker(
        self, *args: str, check: bool = True, timeout: float = 120, input_text: str | None = None
    ) -> str:
        """Run the docker command line against this daemon and return its output."""
        result = subprocess.run(
            [docker_cli(), "--host", self.host, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input_text,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            self.docker("version", "--format", "{{.Server.Version}}", timeout=10)
        except (RuntimeError, subprocess.TimeoutExpired):
            return False
        return True


@dataclass(frozen=True)
class TlsFiles:
    """The TLS listener's address and certificates (see `_make_certificates`)."""

    folder: Path

    @property
    def endpoint(self) -> str:
        return f"tcp://127.0.0.1:{(self.folder / 'port').read_text().strip()}"

    def path(self, name: str) -> str:
        return str(self.folder / name)

    @property
    def ready(self) -> bool:
        return (self.folder / "port").exists()


def _make_certificates(tls: TlsFiles) -> None:
    """A certificate authority, the daemon's certificate (for IP 127.0.0.1), a client
    certificate it signed, and a stranger authority with a client certificate of its own."""
    folder = tls.folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    for authority in ("ca", "stranger-ca"):
        openssl("req", "-x509", *key, "-keyout", f"{authority}-key.pem", "-out",
                f"{authority}.pem", "-days", "30", "-subj",
                f"/CN=kargo test {authority}")  # fmt: skip
    signed = (
        ("server", "ca", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
        ("client", "ca", "extendedKeyUsage=clientAuth"),
        ("stranger", "stranger-ca", "extendedKeyUsage=clientAuth"),
    )
    for name, authority, extensions in signed:
        (folder / f"{name}.ext").write_text(extensions + "\n")
        openssl("req", *key, "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", "-subj",
                f"/CN=kargo test {name}")  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{authority}.pem", "-CAkey",
                f"{authority}-key.pem", "-CAcreateserial", "-out", f"{name}-cert.pem",
                "-days", "30", "-extfile", f"{name}.ext")  # fmt: skip


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def docker_cli() -> str:
    # Debian's docker.io puts the client beside the daemon; another client on PATH works too.
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("no docker command line: install Debian's docker.io")


def unavailable_reason() -> str | None:
    """Why no private daemon can run here, or None when one can."""
    if shutil.which("dockerd") is None:
        return "dockerd is not installed (Debian's docker.io; `make test` installs it)"
    if os.geteuid() != 0:
        return "a private dockerd needs root"
    if not BUSYBOX_BINARY.exists():
        return "busybox is not installed (Debian's busybox-static)"
    if shutil.which("openssl") is None:
        return "openssl is not installed (for the TLS listener's certificates)"
    return None


def start(folder: Path = DEFAULT_FOLDER) -> Daemon:
    """Start the daemon in `folder` unless one already answers there; wait until it serves."""
    daemon = Daemon(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder):
        if daemon.answers() and daemon.tls.ready:
            _ensure_busybox_image(daemon)
            return daemon
        _stop_process(daemon)  # not running, or started before it had a TLS listener
        (folder / "data").mkdir(exist_ok=True)
        tls = daemon.tls
        _make_certificates(tls)
        port = _free_port()
        log = daemon.log.open("ab")
        subprocess.Popen(
            [
                "dockerd",
                "--storage-driver=vfs",
                f"--data-root={folder / 'data'}",
                f"--exec-root={folder / 'x'}",
                f"--host={daemon.host}",
                f"--host=tcp://127.0.0.1:{port}",
                "--tlsverify",
                f"--tlscacert={tls.path('ca.pem')}",
                f"--tlscert={tls.path('server-cert.pem')}",
                f"--tlskey={tls.path('server-key.pem')}",
                f"--pidfile={daemon.pidfile}",
                "--iptables=true",
                "--log-level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives the test process that started it
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not daemon.answers():
            if time.monotonic() > deadline:
                tail = daemon.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(
                    f"dockerd did not answer within {START_TIMEOUT_SECONDS} s:\n{tail}"
                )
            time.sleep(0.3)
        (tls.folder / "port").write_text(f"{port}\n")
        _ensure_busybox_image(daemon)
        return daemon


def stop(folder: Path = DEFAULT_FOLDER) -> None:
    """Stop the daemon in `folder` (containers first) and remove the folder."""
    if not folder.exists():
        return
    daemon = Daemon(folder)
    with _locked(folder):
        if daemon.answers():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                with contextlib.suppress(RuntimeError):
                    daemon.docker("swarm", "leave", "--force", timeout=30)
                ids = daemon.docker("ps", "-aq").split()
                if ids:
                    daemon.docker("rm", "-f", *ids, timeout=60)
        _stop_process(daemon)
    # vfs layers are plain folders; mounts left by a killed daemon are lazily detached first.
    subprocess.run(
        f"grep -o ' {folder}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l",
        shell=True,
        check=False,
    )
    shutil.rmtree(folder, ignore_errors=True)


def _stop_process(daemon: Daemon) -> None:
    try:
        pid = int(daemon.pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
    daemon.pidfile.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(folder: Path):
    with (folder.parent / f".{folder.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _ensure_busybox_image(daemon: Daemon) -> None:
    if daemon.docker("images", "-q", BUSYBOX_IMAGE).strip():
        return
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(BUSYBOX_BINARY, arcname="bin/busybox")
            for applet in BUSYBOX_APPLETS:
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type = tarfile.SYMTYPE
                link.linkname = "busybox"
                tar.addfile(link)
            for folder_name in ("tmp", "www", "etc"):
                entry = tarfile.TarInfo(folder_name)
                entry.type = tarfile.DIRTYPE
                entry.mode = 0o1777 if folder_name == "tmp" else 0o755
                tar.addfile(entry)
        daemon.docker(
            "import",
            "--change",
            'CMD ["/bin/sh"]',
            "--change",
            "ENV PATH=/bin",
            str(archive),
            BUSYBOX_IMAGE,
        )


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in {"start", "stop"}:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: python -m tests.support.dockerd start|stop [FOLDER]", file=sys.stderr)
        return 2
    folder = Path(argv[2]) if len(argv) > 2 else DEFAULT_FOLDER
    if argv[1] == "start":
        reason = unavailable_reason()
        if reason:
            print(f"no private dockerd: {reason}", file=sys.stderr)
            return 1
        print(start(folder).host)
    else:
        stop(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
