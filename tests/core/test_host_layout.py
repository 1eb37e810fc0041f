"""The worker layout a host gets: one per GPU, or single-thread workers per physical core
as memory permits; and what the log says about it."""

from __future__ import annotations

import pytest

from core.host_layout import GIB, RESERVED_BYTES, Host, plan_workers


def _host(cores: int, memory_gib: float, gpus: int = 0, cpus: int | None = None) -> Host:
    return Host(
        cpus=cpus or cores * 2,
        cores=cores,
        memory=int(memory_gib * GIB),
        gpus=tuple(str(n) for n in range(gpus)),
    )


def test_auto_on_cuda_is_one_worker_per_gpu() -> None:
    layout = plan_workers("auto", _host(16, 128, gpus=4), 3 * GIB)
    assert (layout.workers, layout.gpus, layout.threads) == (4, ("0", "1", "2", "3"), 4)
    assert "one per GPU" in layout.describe() and "4 GPU(s)" in layout.describe()


def test_two_workers_per_gpu_share_the_devices_round_robin() -> None:
    layout = plan_workers("4", _host(16, 128, gpus=2), 3 * GIB)
    assert layout.gpus == ("0", "1", "0", "1") and layout.threads == 4


def test_auto_on_a_cpu_is_one_single_thread_worker_per_physical_core() -> None:
    layout = plan_workers(None, _host(8, 64, cpus=16), 3 * GIB)
    assert (layout.workers, layout.threads, layout.gpus) == (8, 1, (None,) * 8)
    line = layout.describe()
    assert "8 worker(s) x 1 thread:" in line and "one per physical core" in line
    assert "8 physical core(s), 16 CPU(s), 64.0 GiB" in line


def test_auto_on_a_cpu_stops_where_the_memory_does() -> None:
    memory = (RESERVED_BYTES + 3 * 3 * GIB) / GIB  # room for three workers of 3 GiB
    layout = plan_workers("auto", _host(8, memory), 3 * GIB)
    assert (layout.workers, layout.threads) == (3, 2)
    assert "as many as the memory holds at 3.0 GiB each" in layout.describe()
    assert plan_workers("auto", _host(8, 1), 3 * GIB).workers == 1  # always one


@pytest.mark.parametrize(
    ("asked", "threads", "expected"), [("2", None, 4), ("3", None, 2), ("16", None, 1), ("2", 3, 3)]
)
def test_a_number_of_workers_shares_the_cores(
    asked: str, threads: int | None, expected: int
) -> None:
    layout = plan_workers(asked, _host(8, 64), 3 * GIB, threads)
    assert layout.workers == int(asked) and layout.threads == expected
    assert "asked for" in layout.describe()


def test_this_host_is_read() -> None:
    host = Host.detect("cpu")
    assert host.gpus == () and 1 <= host.cores <= host.cpus and host.memory > 0
