"""How many worker processes this host serves best, and how many CPU threads each uses.

The rule (`plan_workers`), the same for `mcnet serve` and `mcnet workers` (compose):

- on CUDA, `auto` is one worker per GPU, each seeing only its own device
  (CUDA_VISIBLE_DEVICES); N workers on G GPUs share them round robin (2 per GPU: N = 2G);
- on a CPU, `auto` is one single-thread worker per physical core, as many as the memory
  available holds (each worker loads its own model): N single-thread workers serve more
  frames per second than one worker with N threads (docs/PERFORMANCE.md, "Host throughput");
- N workers on a CPU share its physical cores: each gets cores / N threads (at least one).

`Host.detect` reads what the host offers without torch: the CPUs this process may use and
the physical cores among them (cgroup quota included), the memory available (cgroup limit
included), and the NVIDIA GPUs visible (CUDA_VISIBLE_DEVICES, else the driver's list).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

GIB = 2**30
# Memory counted per worker process (model, activations, decode and encode buffers). On a
# CPU with the full model (vox256, fp32, batch 1) a worker's peak resident memory measured
# 1.6 GiB on 480x360 jobs; 3 GiB leaves room for 1080p frames in flight. The tiny test
# model's workers peak at about 0.4 GiB.
WORKER_BYTES = {"vox256": 3 * GIB, "tiny": GIB}
# Left for the API, Redis, the system and the page cache before workers are counted.
RESERVED_BYTES = 2 * GIB


@dataclass(frozen=True)
class Host:
    """What the host offers the workers."""

    cpus: int  # logical CPUs this process may use
    cores: int  # physical cores among them
    memory: int  # bytes available now
    gpus: tuple[str, ...]  # the CUDA devices visible, as CUDA_VISIBLE_DEVICES names them

    @classmethod
    def detect(cls, device: str = "auto") -> Host:
        """This host; no GPUs when `device` is cpu (or a numbered cuda:N, which the worker
        is pinned to)."""
        cpus = _usable_cpus()
        cores = min(_physical_cores(), cpus)
        gpus = _visible_gpus() if device in ("auto", "cuda") else ()
        return cls(cpus=cpus, cores=max(1, cores), memory=_available_memory(), gpus=gpus)


@dataclass(frozen=True)
class WorkerLayout:
    """The worker processes to run: how many, their threads, the GPU each sees, and why."""

    workers: int
    threads: int
    gpus: tuple[str | None, ...]  # per worker: its CUDA_VISIBLE_DEVICES (None: unchanged)
    reason: str

    def describe(self) -> str:
        """One line for the log: what was chosen and why."""
        devices = "" if not any(self.gpus) else f" on GPU {', '.join(map(str, self.gpus))}"
        each = "thread" if self.threads == 1 else "threads"
        return f"{self.workers} worker(s) x {self.threads} {each}{devices}: {self.reason}"


def plan_workers(
    requested: str | None, host: Host, worker_bytes: int, threads: int | None = None
) -> WorkerLayout:
    """The layout for `requested` workers ("auto", a number, or None: auto) on `host`;
    `threads` (when given) is each worker's thread count instead of the shared-out one."""
    facts = (
        f"{host.cores} physical core(s), {host.cpus} CPU(s), "
        f"{host.memory / GIB:.1f} GiB memory available, {len(host.gpus)} GPU(s)"
    )
    if requested in (None, "auto"):
        if host.gpus:
            count = len(host.gpus)
            why = f"auto, one per GPU ({facts})"
        else:
            fits = max(1, (host.memory - RESERVED_BYTES) // worker_bytes)
            count = max(1, min(host.cores, fits))
            limit = "one per physical core"
            if fits < host.cores:
                limit = f"as many as the memory holds at {worker_bytes / GIB:.1f} GiB each"
            why = f"auto on the CPU, {limit} ({facts})"
    else:
        count = int(requested)
        why = f"asked for ({facts})"
    each = threads or max(1, host.cores // count)
    gpus: tuple[str | None, ...] = (
        tuple(host.gpus[n % len(host.gpus)] for n in range(count)) if host.gpus else (None,) * count
    )
    return WorkerLayout(workers=count, threads=each, gpus=gpus, reason=why)


def _usable_cpus() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpus = cpus or 1
    quota = _read("/sys/fs/cgroup/cpu.max").split()
    if len(quota) == 2 and quota[0] != "max":
        cpus = min(cpus, max(1, math.ceil(int(quota[0]) / int(quota[1]))))
    return cpus


def _physical_cores() -> int:
    """Distinct (package, core) pairs of the CPUs this process may use."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    cores: set[tuple[str, str]] = set()
    processor, package = -1, "0"
    for line in _read("/proc/cpuinfo").splitlines():
        name, _, value = (part.strip() for part in line.partition(":"))
        if name == "processor":
            processor = int(value)
        elif name == "physical id":
            package = value
        elif name == "core id" and (allowed is None or processor in allowed):
            cores.add((package, value))
    return len(cores) or (os.cpu_count() or 1)


def _available_memory() -> int:
    match = re.search(r"^MemAvailable:\s+(\d+) kB", _read("/proc/meminfo"), re.MULTILINE)
    available = int(match.group(1)) * 1024 if match else 8 * GIB
    limit, used = _read("/sys/fs/cgroup/memory.max"), _read("/sys/fs/cgroup/memory.current")
    if limit.isdigit() and used.isdigit():
        available = min(available, int(limit) - int(used))
    return available


def _visible_gpus() -> tuple[str, ...]:
    """CUDA_VISIBLE_DEVICES's entries when set, else the NVIDIA driver's GPUs."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        names = []
        for name in (part.strip() for part in visible.split(",")):
            if not name or name.startswith("-"):  # CUDA stops at the first invalid entry
                break
            names.append(name)
        return tuple(names)
    listed = Path("/proc/driver/nvidia/gpus")
    count = len(list(listed.iterdir())) if listed.is_dir() else 0
    if not count and shutil.which("nvidia-smi"):
        try:
            found = subprocess.run(
                ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False
            )
            count = sum(line.startswith("GPU ") for line in found.stdout.splitlines())
        except (OSError, subprocess.TimeoutExpired):
            count = 0
    return tuple(str(index) for index in range(count))


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""
