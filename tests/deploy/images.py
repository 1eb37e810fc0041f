"""The local images the container test runs on, since Docker Hub cannot be reached.

- a Debian 12 base (debootstrap, `docker import`) standing in for python:3.11-slim;
- Debian's redis-server and prometheus on that base, standing in for the official images;
- the torch wheel this environment installed (the CPU build), for the worker's TORCH_WHEELS;
- a simple index (PEP 503) with that wheel and its dependencies, served on loopback while the
  images build, standing in for download.pytorch.org/whl/cpu: the worker is built the way
  docker/compose.cpu.yml builds it (TORCH_INDEX=cpu), with TORCH_INDEX_URL pointing there.

The recipes are in docker/test-images/. Each image is tagged with a hash of what it is made
from, and the Debian tarball is kept in MCNET_DEPLOY_CACHE (default /var/cache/mcnet-deploy),
so a rerun, even on a wiped Docker engine, does not debootstrap again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import html
import http.server
import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.engine import ROOT, docker, docker_binary, run

RECIPES = ROOT / "docker" / "test-images"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Where the Debian tarball and the torch wheel are kept between runs."""
    folder = Path(os.environ.get("MCNET_DEPLOY_CACHE", "/var/cache/mcnet-deploy"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


def _exists(tag: str) -> bool:
    done = run([docker_binary(), "image", "inspect", tag], timeout=30, check=False)
    return done.returncode == 0


@dataclass(frozen=True)
class LocalImages:
    """Image references for the compose file's variables."""

    python: str
    redis: str
    prometheus: str
    torch_wheels: str

    def compose_env(self, torch_index_url: str) -> dict[str, str]:
        """The variables docker-compose.yml reads for its images and build arguments.
        TORCH_INDEX stays as docker/compose.cpu.yml sets it (cpu); the index it names is
        the local one at `torch_index_url`."""
        return {
            "PYTHON_IMAGE": self.python,
            "REDIS_IMAGE": self.redis,
            "PROMETHEUS_IMAGE": self.prometheus,
            "TORCH_WHEELS": self.torch_wheels,
            "TORCH_INDEX_URL": torch_index_url,
        }


def debian_base() -> str:
    """mcnet-test/debian:<hash>: imported from the cached tarball, made first if needed."""
    script = RECIPES / "debian-rootfs.sh"
    ca = CA_BUNDLE.read_bytes() if CA_BUNDLE.exists() else b""
    key = _digest(script.read_bytes(), ca)
    tag = f"mcnet-test/debian:{key}"
    if _exists(tag):
        return tag
    tarball = cache_dir() / f"debian-{key}.tar"
    if not tarball.exists():
        log.info("making the Debian base with debootstrap (a few minutes, once)")
        run(["bash", script, tarball], timeout=1200)
    run(
        [
            docker_binary(),
            "import",
            "--change",
            f"ENV PIP_CERT={CA_BUNDLE}",
            "--change",
            'CMD ["/bin/bash"]',
            tarball,
            tag,
        ],
        timeout=300,
    )
    return tag


def _build(recipe: str, base: str, context: Path, extra_key: bytes = b"") -> str:
    dockerfile = RECIPES / recipe
    key = _digest(dockerfile.read_bytes(), base.encode(), extra_key)
    tag = f"mcnet-test/{recipe.removesuffix('.Dockerfile')}:{key}"
    if not _exists(tag):
        run(
            [
                docker_binary(),
                "build",
                "--network",
                "host",
                "--build-arg",
                f"BASE={base}",
                "-f",
                dockerfile,
                "-t",
                tag,
                context,
            ],
            timeout=900,
        )
    return tag


def torch_wheel_dir() -> Path:
    """A folder with the torch wheel of this environment (pip finds it as it found it here)."""
    import torch

    folder = cache_dir() / "wheels" / torch.__version__
    if not any(folder.glob("torch-*.whl")):
        folder.mkdir(parents=True, exist_ok=True)
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--dest",
                folder,
                f"torch=={torch.__version__}",
            ],
            timeout=1800,
        )
    return folder


def _project(wheel: str) -> str:
    """The normalised project name of a wheel file (PEP 503)."""
    return re.sub(r"[-_.]+", "-", wheel.split("-", 1)[0]).lower()


def torch_index_dir() -> Path:
    """A simple index of this environment's torch wheel and its dependencies (made once)."""
    import torch

    folder = cache_dir() / "index" / torch.__version__
    files = folder / "files"
    if not (folder / "simple" / "torch" / "index.html").exists():
        files.mkdir(parents=True, exist_ok=True)
        run(
            [
                sys.executable,
                *("-m", "pip", "download", "--quiet", "--only-binary", ":all:"),
                *("--dest", files, f"torch=={torch.__version__}"),
            ],
            timeout=1800,
        )
        projects: dict[str, list[str]] = {}
        for wheel in sorted(p.name for p in files.glob("*.whl")):
            projects.setdefault(_project(wheel), []).append(wheel)
        for project, wheels in projects.items():
            page = folder / "simple" / project / "index.html"
            page.parent.mkdir(parents=True, exist_ok=True)
            links = "".join(
                f'<a href="../../files/{html.escape(w)}">{html.escape(w)}</a>\n' for w in wheels
            )
            page.write_text(f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n")
    return folder


@contextlib.contextmanager
def serve_index(folder: Path) -> Iterator[str]:
    """Serve `folder` on loopback (image builds use the host's network); the index's URL."""
    handler = functools.partial(_QuietHandler, directory=os.fspath(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        log.debug("index: " + format, *args)


def local_images() -> LocalImages:
    """Every local image the container test needs, built or taken from the cache."""
    base = debian_base()
    wheels = torch_wheel_dir()
    names = "\n".join(sorted(p.name for p in wheels.glob("torch-*.whl"))).encode()
    return LocalImages(
        python=base,
        redis=_build("redis.Dockerfile", base, RECIPES),
        prometheus=_build("prometheus.Dockerfile", base, RECIPES),
        torch_wheels=_build("torch-wheels.Dockerfile", "scratch", wheels, names),
    )


def engine_answers() -> bool:
    """Whether a Docker engine answers (CI starts one: .ci/run)."""
    try:
        docker("version", "--format", "{{.Server.Version}}", timeout=20)
    except (AssertionError, subprocess.TimeoutExpired, RuntimeError):
        return False
    return True
