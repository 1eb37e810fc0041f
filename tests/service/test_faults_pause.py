"""A worker paused (SIGSTOP, as a frozen VM) mid-job for longer than the job's whole time
limit: the pause is not work, so once it resumes the job finishes, rendered once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.service.conftest import Stack
from tests.service.helpers import make_inputs, submit
from tests.service.test_faults_stalls import finish, redis_field, runs, wait_animating

FRAMES = 8  # little work: the time limit can be short, and the pause past it too
LIMIT_S = 15  # the job's time limit: well over its work, even on a busy machine
PAUSE_S = LIMIT_S + 3  # past the whole limit (and past the lease, 4 s)


def test_pause_past_the_time_limit_is_not_work(stack: Stack, tmp_path: Path) -> None:
    worker = stack.start_worker()
    source, driving = make_inputs(tmp_path, frames=FRAMES)
    with stack.api(job_timeout_base=LIMIT_S, job_timeout_per_frame=0.001) as client:
        job_id = submit(client, source, driving).json()["id"]
        wait_animating(stack, job_id)
        worker.signal(signal.SIGSTOP)
        try:
            assert redis_field(stack, job_id, "status") == "started"  # paused mid-job
            time.sleep(PAUSE_S)
        finally:
            worker.signal(signal.SIGCONT)
        final = finish(client, stack, job_id)
        assert final.get("error") is None, final
        assert runs(worker, job_id) == 1 and worker.alive()
