"""A store that is read-only or full (a 2 MiB tmpfs): 503 at submit with a clear reason and
no path, /readyz not ready, a result that cannot be written reported as such after one
render, and the service back to normal once the store is."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.conftest import Stack
from tests.service.helpers import make_inputs, submit, wait_for, wait_status
from tests.service.test_faults_stalls import renders, runs, wait_animating

FULL = "storage unavailable or full"


@pytest.fixture
def small_store(stack: Stack, tmp_path: Path) -> Iterator[Path]:
    """The stack's store on a 2 MiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        stack.storage_url = (mount / "store").as_uri()
        yield mount
    finally:
        stack.close()
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _remount(mount: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount)], check=True)


@contextlib.contextmanager
def _filled(mount: Path) -> Iterator[None]:
    """Fill the tmpfs to the last byte; free it afterwards."""
    filler = mount / "filler"
    with open(filler, "wb") as handle:
        with contextlib.suppress(OSError):
            for _ in range(64):  # 64 x 64 KiB > 2 MiB
                handle.write(b"\0" * 65536)
                handle.flush()
    try:
        yield
    finally:
        filler.unlink()


def _refused(answer: object, mount: Path) -> None:
    assert getattr(answer, "status_code", None) == 503, getattr(answer, "text", answer)
    text = answer.text  # type: ignore[attr-defined]
    assert FULL in text or "not writable" in text, text
    assert str(mount) not in text and "/store" not in text, text


def test_read_only_store(stack: Stack, small_store: Path, tmp_path: Path) -> None:
    stack.start_worker()
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api() as client:
        assert client.get("/readyz").status_code == 200
        _remount(small_store, "ro")
        try:
            _refused(submit(client, source, driving), small_store)
            _refused(client.get("/readyz"), small_store)
        finally:
            _remount(small_store, "rw")
        assert client.get("/readyz").status_code == 200
        job_id = submit(client, source, driving).json()["id"]
        assert wait_status(client, job_id, timeout=120)["status"] == "finished"


def test_full_store_at_submit(stack: Stack, small_store: Path, tmp_path: Path) -> None:
    stack.start_worker()
    source, driving = make_inputs(tmp_path, frames=2)
    spool = tmp_path / "spool"  # uploads arrive elsewhere; the full store refuses the copy
    with stack.api(spool_dir=spool) as client:
        with _filled(small_store):
            for _ in range(3):
                _refused(submit(client, source, driving), small_store)
            _refused(client.get("/readyz"), small_store)
            inputs = small_store / "store" / "inputs"
            assert not inputs.exists() or list(inputs.iterdir()) == []  # no empty job folders
        assert client.get("/readyz").status_code == 200
        job_id = submit(client, source, driving).json()["id"]
        assert wait_status(client, job_id, timeout=120)["status"] == "finished"
        assert client.get(f"/jobs/{job_id}/result").status_code == 200


def test_store_full_when_the_result_is_written(
    stack: Stack, small_store: Path, tmp_path: Path
) -> None:
    worker = stack.start_worker()
    source, driving = make_inputs(tmp_path, frames=40)
    with stack.api() as client:
        job_id = submit(client, source, driving).json()["id"]
        wait_animating(stack, job_id)
        with _filled(small_store):
            final = wait_status(client, job_id, timeout=180)
        assert final["status"] == "failed", final
        assert FULL in str(final["error"]), final
        assert runs(worker, job_id) == 1 and renders(stack, job_id) == 0
        assert client.get(f"/jobs/{job_id}/result").status_code == 409
        wait_for(worker.alive, 5, "the worker to stay up")
