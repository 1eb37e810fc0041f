"""Scale to zero: with no worker the API stays ready and accepts jobs (an autoscaler starts
a worker on the queue's length); /readyz and /metrics say that no worker is live; the job
submitted meanwhile finishes once a worker starts."""

from __future__ import annotations

from pathlib import Path

from tests.service.conftest import Stack
from tests.service.helpers import make_inputs, submit, wait_for, wait_status


def test_a_job_submitted_with_no_worker_waits_and_finishes_once_one_starts(
    stack: Stack, tmp_path: Path
) -> None:
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api() as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text  # the API's readiness: it accepts jobs
        body = ready.json()
        assert body["status"] == "ready" and body["redis"] is True and body["storage"] is True
        assert body["workers"] == 0 and body["workers_available"] is False
        assert "mcnet_workers_alive 0.0" in client.get("/metrics").text

        answer = submit(client, source, driving)
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        queued = client.get(f"/jobs/{job_id}").json()
        assert queued["status"] == "queued" and queued["queue_position"] == 1
        assert stack.redis.llen(f"rq:queue:{stack.queue}") == 1  # what KEDA's trigger reads

        stack.start_worker()
        wait_for(lambda: client.get("/readyz").json()["workers_available"], 30, "a live worker")
        final = wait_status(client, job_id, timeout=90)
        assert final["status"] == "finished", final
        assert client.get(f"/jobs/{job_id}/result").status_code == 200
        body = client.get("/readyz").json()
        assert body["workers"] == 1 and body["models"] == ["demo"]
        assert "mcnet_workers_alive 1.0" in client.get("/metrics").text
