"""One worker with N threads against N single-thread workers, at N concurrent jobs, on a CPU.

A worker runs one job at a time, so with N jobs queued one N-thread worker runs them one after
the other, while N one-thread workers run them side by side. Each worker here is a process
that loads the model once and animates its jobs with the batched animator (the model is where
a job's time goes on a CPU; decoding, cropping and encoding are not included). Both set-ups
start when every process has loaded its model, and run in turn `--repeats` times; jobs per
minute are 60 * jobs / the time until the last job is done (medians).

    python benchmarks/threads.py --frames 4 --repeats 2 --precisions fp32 bf16
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from model.animator import Animator  # noqa: E402
from model.checkpoint import demo_networks  # noqa: E402
from model.config import MCNetConfig  # noqa: E402
from model.precision import Precision  # noqa: E402
from tests.conformance_fixture import fixture_networks, fixture_path, load_fixture  # noqa: E402


def worker(
    config: str,
    precision: Precision,
    threads: int,
    jobs: int,
    frames: int,
    barrier: Barrier,
    results: mp.Queue,
) -> None:
    """One worker process: load the model, wait for the others, run `jobs` jobs in turn."""
    torch.set_num_threads(threads)
    if config == "vox256" and fixture_path().is_file():
        fixture = load_fixture()
        networks = fixture_networks(fixture)
        source, driving = fixture["source"], fixture["driving"]
    else:
        networks = demo_networks(MCNetConfig.named(config))
        images = np.random.default_rng(0).uniform(0, 1, (5, 256, 256, 3)).astype(np.float32)
        source, driving = images[0], images[1:]
    clip = np.stack([driving[i % len(driving)] for i in range(frames)])
    animator = Animator(networks, device="cpu", precision=precision, batch_size=1)
    list(animator.animate(source, clip[:1]))  # warm up
    barrier.wait()
    start = time.perf_counter()
    for _ in range(jobs):
        list(animator.animate(source, clip))
    results.put(time.perf_counter() - start)


def measure(config: str, precision: Precision, workers: int, threads: int, jobs: int,
            frames: int) -> float:  # fmt: skip
    """Seconds until `jobs` jobs (spread over `workers` processes) are all done."""
    context = mp.get_context("spawn")
    barrier = context.Barrier(workers)
    results: mp.Queue = context.Queue()
    per_worker = jobs // workers
    processes = [
        context.Process(
            target=worker, args=(config, precision, threads, per_worker, frames, barrier, results)
        )
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    seconds = max(results.get(timeout=3600) for _ in processes)
    for process in processes:
        process.join()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="concurrent jobs (and cores)")
    parser.add_argument("--frames", type=int, default=4, help="driving frames per job")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    parser.add_argument("--config", choices=["vox256", "tiny"], default="vox256")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    setups = {
        f"1 worker x {args.jobs} threads": (1, args.jobs),
        f"{args.jobs} workers x 1 thread": (args.jobs, 1),
    }
    rows = []
    for precision in args.precisions:
        seconds: dict[str, list[float]] = {name: [] for name in setups}
        for _ in range(args.repeats):
            for name, (workers, threads) in setups.items():
                seconds[name].append(
                    measure(args.config, precision, workers, threads, args.jobs, args.frames)
                )
        for name, runs in seconds.items():
            median = statistics.median(runs)
            rows.append(
                {
                    "precision": precision,
                    "setup": name,
                    "jobs_per_min": 60 * args.jobs / median,
                    "seconds": runs,
                }
            )
    lines = [f"{args.jobs} jobs of {args.frames} frames ({args.config}), {args.repeats} runs each"]
    for row in rows:
        lines.append(
            f"{row['precision']:<5} {row['setup']:<24} {row['jobs_per_min']:7.2f} jobs/min  "
            f"runs: {', '.join(f'{s:.1f} s' for s in row['seconds'])}"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
