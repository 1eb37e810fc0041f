"""`mcnet workers` (the compose worker service) whose workers exit on a wrong setting (a
checkpoint path that is a folder, as Docker makes for a mistyped MCNET_CHECKPOINT): each
worker is started once, not again and again, and the pool exits 2, so that the container's
restart policy (on-failure:5) gives up too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import EmbeddedRedis
from tests.service.helpers import ROOT, clean_env


def test_workers_exit_2_on_a_mistyped_checkpoint(
    redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    folder = tmp_path / "mcnet.pth.tar"  # what Docker mounts for a host path that is missing
    folder.mkdir()
    env = clean_env("REDIS_URL", "STORAGE_URL")
    env.update(
        {
            "REDIS_URL": redis_server.url,
            "STORAGE_URL": (tmp_path / "store").as_uri(),
            "MCNET_CHECKPOINT": str(folder),
            "MCNET_CHECKPOINT_HOST_PATH": "/srv/mdoels/mcnet.pth.tar",
            "MCNET_DEVICE": "cpu",
            "MCNET_WORKERS": "2",
            "MCNET_METRICS_PORT": "0",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "core.cli", "workers"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    log = done.stdout + done.stderr
    assert done.returncode == 2, log
    assert "MCNET_CHECKPOINT=/srv/mdoels/mcnet.pth.tar" in log, log
    assert log.count("not starting it again") == 2 and "starting it again in" not in log, log
