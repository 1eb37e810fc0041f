"""The local images the container test runs on, since Docker Hub cannot be reached.

- a Debian 12 base (debootstrap, `docker import`) standing in for python:3.11-slim;
- Debian's redis-server and prometheus on that base, standing in for the official images;
- the torch wheel this environment installed (the CPU build), for the worker's TORCH_WHEELS.

The recipes are in docker/test-images/. Each image is tagged with a hash of what it is made
from, and the Debian tarball is kept in MCNET_DEPLOY_CACHE (default /var/cache/mcnet-deploy),
so a rerun, even on a wiped Docker engine, does not debootstrap again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
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

    def compose_env(self) -> dict[str, str]:
        """The variables docker-compose.yml reads for its images and build arguments."""
        return {
            "PYTHON_IMAGE": self.python,
            "REDIS_IMAGE": self.redis,
            "PROMETHEUS_IMAGE": self.prometheus,
            "TORCH_WHEELS": self.torch_wheels,
            # PyPI is the index (it serves torch's dependencies); the local +cpu wheel outranks
            # PyPI's 2.13.0 (a local version label sorts higher), so nothing CUDA is downloaded.
            "TORCH_INDEX": "cu130",
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
