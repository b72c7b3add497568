"""The project's Docker image, built in the test run's private dockerd without any registry.

No public registry is reachable from these machines, so the Dockerfile's base image
(`FROM python:3.11-slim-bookworm`) is replaced by a local stand-in carrying the same name:

1. a Debian bookworm root file system made by `debootstrap --variant=minbase` with python3,
   python3-venv and ca-certificates, from the Debian mirror this machine's apt uses. It is the
   slow step (about two minutes on a fresh machine), so its tarball is cached under
   `~/.cache/kargo-tests/` (`$XDG_CACHE_HOME` is honoured), keyed by the recipe;
2. `docker import` of that tarball, then a small build on top that gives it what the official
   image has and the Dockerfile relies on: a Python environment whose `python` and `pip` are
   first on PATH (a venv in /opt/python), plus this machine's CA bundle and pip configuration
   so that `pip install` in the build reaches the same package index the host uses.

The project's image is then built from the unchanged Dockerfile with
`DOCKER_BUILDKIT=1 docker build --network host` (`COPY --chmod` needs BuildKit) and tagged
`kargo-test/kargo:<hash>`, the hash covering the Dockerfile, every file it copies and the base
image: an unchanged tree reuses the image of an earlier run. Builds are serialized by a file
lock, so parallel pytest workers build once.
"""

from __future__ import annotations

import configparser
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tests.support.dockerd import Daemon, docker_cli

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kargo-tests"
KARGO_IMAGE_REPOSITORY = "kargo-test/kargo"
ROOTFS_IMAGE_REPOSITORY = "kargo-test/debian-python-rootfs"
STAND_IN_LABEL = "org.kargo.test.stand-in"
DEBOOTSTRAP_TIMEOUT_SECONDS = 900
BUILD_TIMEOUT_SECONDS = 1200
# Older kargo-test/kargo images are removed after a new build once they are this old.
STALE_IMAGE_SECONDS = 2 * 3600
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_INDEX_URL = "https://pypi.org/simple"
# The recipe of the stand-in's root file system; any change makes a new cached tarball.
SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
ROOTFS_RECIPE_VERSION = 1
VENV = "/opt/python"
# The official image's PATH, with the venv in front of /usr/local/bin where that image's
# python and pip live.
STAND_IN_PATH = f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Built:
    tag: str
    seconds: float  # 0.0 when an earlier run's image was reused
    size_bytes: int


def unavailable_reason() -> str | None:
    """Why the stand-in base image cannot be made here, or None when it can."""
    if shutil.which("debootstrap") is None:
        return "debootstrap is not installed (`make docker` installs it)"
    if os.geteuid() != 0:
        return "debootstrap needs root"
    if not HOST_CA_BUNDLE.exists():
        return f"no CA bundle at {HOST_CA_BUNDLE} for pip in the build"
    return None


def base_image_name(dockerfile: Path = DOCKERFILE) -> str:
    """The image of the Dockerfile's (first) FROM line, exactly as written."""
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if words and words[0].upper() == "FROM":
            names = [word for word in words[1:] if not word.startswith("--")]
            return names[0]
    raise ValueError(f"{dockerfile} has no FROM line")


def copied_sources(dockerfile: Path = DOCKERFILE) -> list[Path]:
    """Every file of the build context that the Dockerfile's COPY and ADD lines take."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    sources: list[Path] = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True) if line.strip() else []
        if not words or words[0].upper() not in {"COPY", "ADD"}:
            continue
        arguments = [word for word in words[1:] if not word.startswith("--")]
        for source in arguments[:-1]:
            sources.extend(sorted(ROOT.glob(source)))
    files: list[Path] = []
    for source in sources:
        if source.is_dir():
            files.extend(
                path
                for path in sorted(source.rglob("*"))
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
            )
        elif source.is_file():
            files.append(source)
    return files


def context_hash(base_image_id: str) -> str:
    digest = hashlib.sha256()
    digest.update(base_image_id.encode())
    for path in [DOCKERFILE, ROOT / ".dockerignore", *copied_sources()]:
        if not path.exists():
            continue
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0")
        digest.update(oct(path.stat().st_mode & 0o777).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def debian_mirror() -> str:
    """The Debian archive this machine's apt uses (deb822 or one-line sources)."""
    folder = Path("/etc/apt")
    candidates = sorted((folder / "sources.list.d").glob("*.sources"))
    for path in candidates:
        for stanza in path.read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1)
                for line in stanza.splitlines()
                if ":" in line and not line.startswith("#")
            )
            suites = fields.get("Suites", "").split()
            if SUITE in suites and "deb" in fields.get("Types", "").split():
                return fields["URIs"].split()[0].strip()
    for path in [folder / "sources.list", *sorted((folder / "sources.list.d").glob("*.list"))]:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            words = [word for word in line.split() if not word.startswith("[")]
            if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
                return words[1]
    return DEFAULT_MIRROR


def host_pip_config() -> str:
    """A pip.conf naming the index this machine's pip uses (its config files and PIP_* env).

    Only http(s) indexes are carried over: local `file://` indexes and find-links are this
    machine's folders, which the build cannot see.
    """
    settings: dict[str, str] = {}
    listing = subprocess.run(
        ["python3", "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    ).stdout
    for line in listing.splitlines():
        key, _, value = line.partition("=")
        name = key.split(".", 1)[-1]
        settings[name] = value.strip().strip("'\"")
    for name in ("index-url", "extra-index-url", "trusted-host"):
        env_value = os.environ.get("PIP_" + name.upper().replace("-", "_"))
        if env_value:
            settings[name] = env_value
    config = configparser.ConfigParser()
    config["global"] = {"cert": str(HOST_CA_BUNDLE), "timeout": "120"}
    index = settings.get("index-url", DEFAULT_INDEX_URL)
    config["global"]["index-url"] = index if index.startswith("http") else DEFAULT_INDEX_URL
    extras = [url for url in settings.get("extra-index-url", "").split() if url.startswith("http")]
    if extras:
        config["global"]["extra-index-url"] = " ".join(extras)
    if settings.get("trusted-host"):
        config["global"]["trusted-host"] = settings["trusted-host"]
    lines = ["# pip configuration of the host that built this stand-in (tests/support/images.py)"]
    for key, value in config["global"].items():
        lines.append(f"{key} = {value}")
    return "[global]\n" + "\n".join(lines[1:]) + "\n"


def rootfs_key() -> str:
    recipe = {
        "suite": SUITE,
        "variant": "minbase",
        "packages": PACKAGES,
        "mirror": debian_mirror(),
        "version": ROOTFS_RECIPE_VERSION,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


@contextlib.contextmanager
def _locked(name: str, folder: Path = CACHE_DIR):
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def rootfs_tarball(log=print, cache_dir: Path = CACHE_DIR) -> Path:
    """The cached Debian root file system tarball, made with debootstrap when missing."""
    key = rootfs_key()
    tarball = cache_dir / f"debian-{SUITE}-python-{key}.tar"
    with _locked("rootfs", cache_dir):
        if tarball.exists():
            return tarball
        started = time.monotonic()
        with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".rootfs-") as scratch:
            target = Path(scratch) / "rootfs"
            result = subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(PACKAGES)}",
                    SUITE,
                    str(target),
                    debian_mirror(),
                ],
                capture_output=True,
                text=True,
                timeout=DEBOOTSTRAP_TIMEOUT_SECONDS,
                check=False,
            )
            if result.returncode != 0:
                raise RuntimeError(
                    f"debootstrap failed:\n{(result.stdout + result.stderr)[-3000:]}"
                )
            # What the official slim images leave out too: downloaded packages and apt lists.
            for folder in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for entry in (target / folder).glob("*"):
                    if entry.is_file():
                        entry.unlink()
            partial = Path(scratch) / "rootfs.tar"
            subprocess.run(
                ["tar", "--numeric-owner", "-C", str(target), "-cf", str(partial), "."],
                check=True,
                timeout=DEBOOTSTRAP_TIMEOUT_SECONDS,
            )
            partial.rename(tarball)
        log(f"debootstrap root file system made in {time.monotonic() - started:.0f} s: {tarball}")
    return tarball


def _build(daemon: Daemon, context: Path, tag: str, *extra: str) -> None:
    env = {**os.environ, "DOCKER_BUILDKIT": "1", "DOCKER_HOST": daemon.host}
    result = subprocess.run(
        [docker_cli(), "build", "--network", "host", "--progress", "plain", "-t", tag, *extra, "."],
        cwd=context,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"docker build of {tag} failed:\n{(result.stdout + result.stderr)[-6000:]}"
        )


def _label(daemon: Daemon, reference: str, label: str) -> str | None:
    if not daemon.docker("images", "-q", reference).strip():
        return None
    labels = json.loads(
        daemon.docker("image", "inspect", "--format", "{{json .Config.Labels}}", reference)
    )
    return (labels or {}).get(label)


def stand_in_recipe() -> str:
    """What the stand-in is made of: the root file system's recipe, pip config, CA bundle."""
    digest = hashlib.sha256(rootfs_key().encode() + host_pip_config().encode())
    digest.update(HOST_CA_BUNDLE.read_bytes() + STAND_IN_PATH.encode())
    return digest.hexdigest()[:16]


def import_rootfs(daemon: Daemon, tarball: Path, tag: str, log=print) -> float:
    started = time.monotonic()
    daemon.docker("import", str(tarball), tag, timeout=BUILD_TIMEOUT_SECONDS)
    seconds = time.monotonic() - started
    log(f"root file system imported as {tag} in {seconds:.0f} s")
    return seconds


def build_stand_in(daemon: Daemon, rootfs_image: str, name: str, *extra: str, log=print) -> float:
    """Build the stand-in on the imported root file system and tag it `name`; returns seconds."""
    with tempfile.TemporaryDirectory(prefix="kargo-stand-in-") as scratch:
        context = Path(scratch)
        (context / "ca-certificates.crt").write_bytes(HOST_CA_BUNDLE.read_bytes())
        (context / "pip.conf").write_text(host_pip_config())
        (context / "Dockerfile").write_text(
            f"FROM {rootfs_image}\n"
            f"RUN python3 -m venv {VENV}\n"
            "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n"
            "COPY pip.conf /etc/pip.conf\n"
            f"ENV PATH={STAND_IN_PATH} LANG=C.UTF-8\n"
            f'LABEL {STAND_IN_LABEL}="{stand_in_recipe()}"\n'
            'CMD ["python"]\n'
        )
        started = time.monotonic()
        _build(daemon, context, name, *extra)
    seconds = time.monotonic() - started
    log(f"stand-in {name} built in {seconds:.0f} s")
    return seconds


def ensure_base_image(daemon: Daemon, log=print) -> str:
    """Make the stand-in for the Dockerfile's base image; returns its name (the FROM line's)."""
    name = base_image_name()
    with _locked("base-image"):
        if _label(daemon, name, STAND_IN_LABEL) == stand_in_recipe():
            return name
        rootfs_image = f"{ROOTFS_IMAGE_REPOSITORY}:{rootfs_key()}"
        if not daemon.docker("images", "-q", rootfs_image).strip():
            import_rootfs(daemon, rootfs_tarball(log), rootfs_image, log)
        build_stand_in(daemon, rootfs_image, name, log=log)
    return name


def build_kargo(daemon: Daemon, tag: str, *extra: str) -> float:
    """`docker build` of the project's Dockerfile as `tag`; returns seconds."""
    started = time.monotonic()
    _build(daemon, ROOT, tag, "--file", str(DOCKERFILE), *extra)
    return time.monotonic() - started


def image_size(daemon: Daemon, reference: str) -> int:
    return int(daemon.docker("image", "inspect", "--format", "{{.Size}}", reference).strip())


def ensure_kargo_image(daemon: Daemon, log=print) -> Built:
    """The project's image from its Dockerfile, reused when nothing it is built from changed."""
    base = ensure_base_image(daemon, log)
    with _locked("kargo-image"):
        base_id = daemon.docker("image", "inspect", "--format", "{{.Id}}", base).strip()
        tag = f"{KARGO_IMAGE_REPOSITORY}:{context_hash(base_id)}"
        seconds = 0.0
        if not daemon.docker("images", "-q", tag).strip():
            seconds = build_kargo(daemon, tag)
            log(f"{tag} built in {seconds:.0f} s")
            _remove_stale_builds(daemon, keep=tag)
    return Built(tag=tag, seconds=seconds, size_bytes=image_size(daemon, tag))


def _remove_stale_builds(daemon: Daemon, keep: str) -> None:
    """Earlier trees' images (each a full copy per layer on vfs), once they are old enough that
    no other checkout's test run is still about to start them; one in use stays."""
    listing = daemon.docker(
        "images", KARGO_IMAGE_REPOSITORY, "--format", "{{.Repository}}:{{.Tag}} {{.CreatedAt}}"
    )
    now = time.time()
    for line in listing.splitlines():
        reference, _, created = line.partition(" ")
        if reference == keep or not created:
            continue
        try:  # "2026-11-30 13:49:58 +0000 UTC"
            stamp = datetime.strptime(created[:25], "%Y-%m-%d %H:%M:%S %z").timestamp()
        except ValueError:
            continue
        if now - stamp > STALE_IMAGE_SECONDS:
            daemon.docker("rmi", reference, check=False)
