"""Many clients at once: 50 concurrent submissions from 10 API keys (each within its share
of the upload slots), two workers, every output correct."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np

from tests.media_factory import decode_all
from tests.service.conftest import Stack
from tests.service.helpers import make_inputs, wait_for

JOBS = 50
KINDS = 5  # distinct inputs; jobs of one kind must give identical pixels, kinds differ
CLIENTS = 10  # API keys: each key is one client, sending 5 of the jobs at once
KEYS = [f"client{n}:key-{n}" for n in range(CLIENTS)]


def _auth(index: int) -> dict[str, str]:
    """The header of the key that sends job `index`."""
    return {"Authorization": f"Bearer key-{index % CLIENTS}"}


async def _submit_all(base_url: str, inputs: list[tuple[Path, Path]]) -> list[str]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:

        async def one(index: int) -> str:
            source, driving = inputs[index % KINDS]
            answer = await client.post(
                "/animate",
                files={"source": source.read_bytes(), "driving": driving.read_bytes()},
                data={"crop": "none", "seed": str(index % KINDS)},
                headers=_auth(index),
            )
            assert answer.status_code == 202, answer.text
            job_id: str = answer.json()["id"]
            return job_id

        return list(await asyncio.gather(*(one(i) for i in range(JOBS))))


def test_fifty_concurrent_submissions_all_finish_correctly(stack: Stack, tmp_path: Path) -> None:
    inputs = [make_inputs(tmp_path, frames=1, seed=kind) for kind in range(KINDS)]
    stack.start_worker(wait=False)
    stack.start_worker(wait=False)
    with stack.api(api_keys=KEYS) as client:
        base_url = str(client.base_url)
        ids = asyncio.run(_submit_all(base_url, inputs))
        assert len(set(ids)) == JOBS

        def all_done() -> bool:
            states = [
                client.get(f"/jobs/{job_id}", headers=_auth(index)).json()["status"]
                for index, job_id in enumerate(ids)
            ]
            assert "failed" not in states and "canceled" not in states
            return all(state == "finished" for state in states)

        wait_for(all_done, 240, "all jobs to finish", interval=0.5)
        frames: dict[int, list[np.ndarray]] = {}
        for index, job_id in enumerate(ids):
            answer = client.get(f"/jobs/{job_id}/result", headers=_auth(index))
            assert answer.status_code == 200
            path = tmp_path / f"{index}.mp4"
            path.write_bytes(answer.content)
            decoded = decode_all(path)
            assert len(decoded) == 1
            kind = index % KINDS
            if kind in frames:
                for got, want in zip(decoded, frames[kind], strict=True):
                    assert np.array_equal(got, want), f"job {index} differs from its kind"
            else:
                frames[kind] = decoded
        firsts = [frames[k][0].astype(int) for k in range(KINDS)]
        for a in range(KINDS):
            for b in range(a + 1, KINDS):
                assert np.abs(firsts[a] - firsts[b]).mean() > 1.0, "different inputs, same output"
        metrics = client.get("/metrics", headers=_auth(0)).text
        assert f"mcnet_jobs_submitted_total {JOBS}.0" in metrics
        assert f'mcnet_jobs{{status="finished"}} {JOBS}.0' in metrics
    done = sum(
        float(line.split()[-1])
        for worker in stack.workers
        for line in worker.metrics().splitlines()
        if line.startswith('mcnet_worker_jobs_total{outcome="finished"}')
    )
    assert done == JOBS
