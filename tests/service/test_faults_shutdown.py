"""Scale-down loses nothing: a real worker gets SIGTERM, as from Kubernetes when an
autoscaler removes its pod, at several points of a job, and SIGKILL when it is still
running after the pod's grace period. Each time the job goes back to the queue without
spending a retry (the API runs with `job_retries=0`, so a spent retry would fail it) and
another worker finishes it, rendered once."""

from __future__ import annotations

import signal
import subprocess
import time
from functools import partial
from pathlib import Path

import httpx
import pytest
from rq.job import Job

from core.jobs import SERIALIZER
from core.lease import shutdown_key
from tests.service.conftest import Stack
from tests.service.helpers import WorkerProcess, make_inputs, submit, wait_for, wait_status
from tests.service.test_faults_stalls import renders, runs, wait_animating
from tests.service.test_faults_storage import small_store  # noqa: F401 - a fixture

FRAMES = 60  # long enough that the rest of the job outlasts the grace periods below


def pod_stop(worker: WorkerProcess, grace: float) -> bool:
    """Stop `worker` as the kubelet stops a pod: SIGTERM, then SIGKILL once `grace` seconds
    have passed. True when it exited by itself (status 0) before the SIGKILL."""
    worker.signal(signal.SIGTERM)
    try:
        worker.process.wait(grace)
    except subprocess.TimeoutExpired:
        worker.kill()
        return False
    assert worker.process.returncode == 0, worker.log_text()
    return True


def finish(client: httpx.Client, stack: Stack, job_id: str) -> None:
    """The job finishes, its result is there, and it was rendered once in all."""
    final = wait_status(client, job_id, timeout=180)
    assert final["status"] == "finished", final
    result = client.get(f"/jobs/{job_id}/result")
    assert result.status_code == 200 and result.content[4:8] == b"ftyp"
    # the worker logs the render just after recording it
    wait_for(lambda: renders(stack, job_id) >= 1, 10, "the render's log line")
    assert renders(stack, job_id) == 1


def job_field(stack: Stack, job_id: str, field: str) -> str:
    value = stack.redis.hget(Job.key_for(job_id), field)
    return value.decode() if isinstance(value, bytes) else ""


def stage(stack: Stack, job_id: str) -> str:
    job = Job.fetch(job_id, connection=stack.redis, serializer=SERIALIZER)
    return str(((job.meta or {}).get("progress") or {}).get("stage"))


def queue_key(stack: Stack) -> str:
    return f"rq:queue:{stack.queue}"


def taken(stack: Stack, job_id: str) -> bool:
    """Whether a worker took the job from the queue (RQ's intermediate list)."""
    return job_id.encode() in stack.redis.lrange(f"{queue_key(stack)}:intermediate", 0, -1)


def blocked_in_dequeue(stack: Stack) -> bool:
    """Whether a client waits in BLMOVE (an idle worker's wait for a job)."""
    return any(
        client.get("cmd") == "blmove" and "b" in str(client.get("flags"))
        for client in stack.redis.client_list()
    )


def test_sigterm_with_a_job_taken_but_not_started_gives_it_back(
    stack: Stack, tmp_path: Path
) -> None:
    """The job left the queue for the worker (RQ's intermediate list) as SIGTERM came: it
    goes back to the front of the queue, never started, and the worker quits."""
    source, driving = make_inputs(tmp_path, frames=4)
    intermediate = f"{queue_key(stack)}:intermediate"
    with stack.api(job_retries=0) as client:
        for attempt in range(3):  # the worker's wait may end just as it is frozen: again
            worker = stack.start_worker()
            wait_for(lambda: blocked_in_dequeue(stack), 20, "the worker to wait for a job")
            worker.signal(signal.SIGSTOP)  # Redis still hands it the next job
            job_id = submit(client, source, driving).json()["id"]
            try:
                wait_for(partial(taken, stack, job_id), 2, "the frozen worker to take the job")
                break
            except AssertionError:
                assert attempt < 2, "the frozen worker never took the job"
                worker.signal(signal.SIGCONT)
                finish(client, stack, job_id)
                worker.stop()
        worker.signal(signal.SIGTERM)
        worker.signal(signal.SIGCONT)
        worker.process.wait(30)
        assert worker.process.returncode == 0, worker.log_text()
        assert "put back in the queue unstarted" in worker.log_text()
        assert stack.redis.lrange(queue_key(stack), 0, 0) == [job_id.encode()]
        assert stack.redis.llen(intermediate) == 0
        body = client.get(f"/jobs/{job_id}").json()
        assert body["status"] == "queued" and body["started_at"] is None, body
        assert runs(worker, job_id) == 1 and renders(stack, job_id) == 0

        rescuer = stack.start_worker()
        finish(client, stack, job_id)
        assert runs(rescuer, job_id) == 1
        started = time.monotonic()
        assert pod_stop(rescuer, 20), "an idle worker quits on SIGTERM"
        assert time.monotonic() - started < 15


def test_sigterm_mid_render_requeues_before_the_pods_grace_ends(
    stack: Stack, tmp_path: Path
) -> None:
    """The worker's grace (MCNET_SHUTDOWN_GRACE) is shorter than the rest of the job, and
    the pod's: the job stops between batches and is put back before any SIGKILL."""
    worker = stack.start_worker(MCNET_SHUTDOWN_GRACE="1")
    source, driving = make_inputs(tmp_path, frames=FRAMES)
    with stack.api(job_retries=0) as client:
        job_id = submit(client, source, driving).json()["id"]
        wait_animating(stack, job_id, worker.name)
        assert pod_stop(worker, 20), "the job was put back within the pod's grace period"
        log = worker.log_text()
        assert f"job {job_id}: requeued" in log, log
        body = client.get(f"/jobs/{job_id}").json()
        assert body["status"] == "queued" and body["progress"]["frames_done"] == 0, body
        assert stack.redis.lrange(queue_key(stack), 0, 0) == [job_id.encode()]
        assert job_field(stack, job_id, "retries_left") in ("", "0")  # none to spend

        rescuer = stack.start_worker()
        finish(client, stack, job_id)
        assert runs(rescuer, job_id) == 1


def test_sigkill_mid_render_before_the_worker_could_requeue(stack: Stack, tmp_path: Path) -> None:
    """The pod's grace period is shorter than the worker's and than the rest of the job:
    SIGKILL comes mid-render. The run had marked the job shut down, so recovery puts it
    back without spending a retry (there is none), and the API shows it queued meanwhile."""
    worker = stack.start_worker(MCNET_SHUTDOWN_GRACE="600")
    source, driving = make_inputs(tmp_path, frames=FRAMES)
    with stack.api(job_retries=0) as client:
        job_id = submit(client, source, driving).json()["id"]
        wait_animating(stack, job_id, worker.name)
        assert not pod_stop(worker, 2), "killed mid-render"
        assert stack.redis.exists(shutdown_key(job_id))
        wait_for(lambda: not stack.redis.exists(f"mcnet:lease:{job_id}"), 20, "the lease to lapse")
        body = client.get(f"/jobs/{job_id}").json()
        assert body["status"] == "queued", body  # not "failed": no retry is spent

        rescuer = stack.start_worker(wait=False)  # (the killed one counts as dead)
        finish(client, stack, job_id)
        assert runs(rescuer, job_id) == 1
        assert "no retry spent" in rescuer.log_text()
        assert not stack.redis.exists(shutdown_key(job_id))


def test_sigkill_while_the_encoded_result_is_stored(
    stack: Stack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """SIGTERM after the encode, while the store refuses the result (read-only for now),
    and SIGKILL after the pod's grace: the job is put back without spending a retry and
    finishes once the store takes results again."""
    store: Path = request.getfixturevalue("small_store")  # the stack's store, on a tmpfs
    worker = stack.start_worker(MCNET_SHUTDOWN_GRACE="600")
    source, driving = make_inputs(tmp_path, frames=8)
    with stack.api(job_retries=0) as client:
        job_id = submit(client, source, driving).json()["id"]
        wait_animating(stack, job_id, worker.name)
        subprocess.run(["mount", "-o", "remount,ro", str(store)], check=True)
        try:
            wait_for(
                lambda: f"job {job_id}: result not stored" in worker.log_text(),
                90,
                "the store to refuse the result",
                0.1,
            )
            # rendered and encoded (the task reports "done" before it stores the MP4)
            assert stage(stack, job_id) == "done"
            assert job_field(stack, job_id, "status") == "started"
            assert not pod_stop(worker, 2), "killed while storing the result"
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(store)], check=True)
        rescuer = stack.start_worker(wait=False)  # (the killed one counts as dead)
        finish(client, stack, job_id)
        assert runs(rescuer, job_id) == 1 and "no retry spent" in rescuer.log_text()
