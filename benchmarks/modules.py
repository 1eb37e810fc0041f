"""Where a frame's time goes: each module's own time per frame, per precision, in one run.

The animator (the serving path: fused networks, fp32 islands under bf16) animates the
conformance fixture's source with its driving frames (demo weights of the chosen
configuration without the fixture) `--repeats` times per precision, the precisions in turn.
Forward hooks time every module down to `--depth` levels (a module's time includes its
children's; an fp32 island goes by its module's path), so the table answers which parts a
faster precision speeds up and which it leaves alone. The rows are the modules of at least
`--min-share` of a frame, with the median ms/frame of each precision and the ratio between
the first precision and each other.

oneDNN picks its kernels by the CPU's instructions; `ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16`
(set in the environment) makes a CPU with AMX run the kernels of one without it, so both
kinds can be profiled on one machine. The CPU, its bfloat16 instructions and that variable
are printed with the figures.

    python benchmarks/modules.py --precisions fp32 bf16 --repeats 3
    ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 python benchmarks/modules.py --precisions fp32 bf16
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.throughput import synthetic_frames  # noqa: E402
from model.animator import Animator  # noqa: E402
from model.checkpoint import demo_networks  # noqa: E402
from model.config import MCNetConfig  # noqa: E402
from model.mixed_precision import Fp32Island  # noqa: E402
from model.precision import CPU_BF16_FLAGS, cpu_flags, unsupported_reason  # noqa: E402
from tests.conformance_fixture import fixture_networks, fixture_path, load_fixture  # noqa: E402


class ModuleTimer:
    """Forward hooks on every module of `root` down to `depth` levels, adding each call's
    wall time (children included) under the module's path."""

    def __init__(self, root: nn.Module, depth: int) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._started: dict[str, list[float]] = defaultdict(list)
        self._hook(root, "", depth)

    def _hook(self, module: nn.Module, prefix: str, depth: int) -> None:
        for name, child in module.named_children():
            path = f"{prefix}.{name}" if prefix else name
            child.register_forward_pre_hook(lambda *_, p=path: self._started[p].append(_now()))
            child.register_forward_hook(lambda *_, p=path: self._stop(p))
            if depth > 1:  # an fp32 island's module goes by the island's path
                inner = child.module if isinstance(child, Fp32Island) else child
                self._hook(inner, path, depth - 1)

    def _stop(self, path: str) -> None:
        self.seconds[path] += _now() - self._started[path].pop()

    def take(self) -> dict[str, float]:
        """The times gathered since the last take, then start again."""
        taken = dict(self.seconds)
        self.seconds.clear()
        return taken


def _now() -> float:
    return time.perf_counter()


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (empty where there is none)."""
    path = Path("/proc/cpuinfo")
    for line in path.read_text().splitlines() if path.is_file() else []:
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--min-share", type=float, default=0.02)
    parser.add_argument("--config", choices=["vox256", "tiny"], default="vox256")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.config == "vox256" and fixture_path().is_file():
        fixture = load_fixture()
        networks = fixture_networks(fixture)
        source, driving = fixture["source"], list(fixture["driving"])  # floats in [0, 1]
        inputs = "conformance fixture"
    else:
        size = MCNetConfig.named(args.config).image_size
        networks = demo_networks(MCNetConfig.named(args.config))
        frames = synthetic_frames(5, seed=0, size=size)
        source, driving, inputs = frames[0], list(frames[1:]), "synthetic frames, demo weights"
    flags = cpu_flags()
    precisions = [
        p for p in args.precisions if unsupported_reason(p, "cpu", flags, cuda_bf16=False) is None
    ]
    timers, animators = {}, {}
    for precision in precisions:
        animator = Animator(networks, "cpu", precision, batch_size=1)
        timers[precision] = ModuleTimer(animator.networks, args.depth)
        animators[precision] = animator
        for _ in animator.animate_batches(source, driving):  # warm-up
            pass
        timers[precision].take()
    runs: dict[str, list[dict[str, float]]] = {p: [] for p in precisions}
    totals: dict[str, list[float]] = {p: [] for p in precisions}
    for _ in range(args.repeats):
        for precision in precisions:
            start = _now()
            for _ in animators[precision].animate_batches(source, driving):
                pass
            totals[precision].append((_now() - start) / len(driving))
            runs[precision].append(
                {k: v / len(driving) for k, v in timers[precision].take().items()}
            )
    frame = {p: statistics.median(totals[p]) for p in precisions}
    modules = sorted(
        {m for p in precisions for run in runs[p] for m in run},
        key=lambda m: -statistics.median(run.get(m, 0.0) for run in runs[precisions[0]]),
    )
    table = []
    for module in modules:
        ms = {p: 1000 * statistics.median(r.get(module, 0.0) for r in runs[p]) for p in precisions}
        if max(ms[p] / (1000 * frame[p]) for p in precisions) >= args.min_share:
            table.append({"module": module, "ms_per_frame": ms})
    environment = {
        "cpu": cpu_model(),
        "bf16_instructions": sorted(flags & CPU_BF16_FLAGS),
        "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "inputs": inputs,
        "load_average": os.getloadavg(),
    }
    first = precisions[0]
    header = f"{'module':<48}" + "".join(f"{p + ' ms':>10}{'share':>7}" for p in precisions)
    others = precisions[1:]
    header += "".join(f"{first + '/' + p:>11}" for p in others)
    lines = [json.dumps(environment), header]
    whole = {"module": "whole frame", "ms_per_frame": {p: 1000 * frame[p] for p in precisions}}
    lines.append(_line(whole, precisions, frame, others))
    lines += [_line(row, precisions, frame, others) for row in table]
    sys.stdout.write("\n".join(lines) + "\n")
    if args.json:
        document = {"environment": environment, "ms_per_frame": frame, "modules": table}
        Path(args.json).write_text(json.dumps(document, indent=2))
    return 0


def _line(row: dict, precisions: list[str], frame: dict[str, float], others: list[str]) -> str:
    ms = row["ms_per_frame"]
    text = f"{row['module']:<48}"
    text += "".join(f"{ms[p]:>10.1f}{100 * ms[p] / (1000 * frame[p]):>6.1f}%" for p in precisions)
    first = precisions[0]
    text += "".join(f"{ms[first] / ms[p]:>11.2f}" if ms[p] else f"{'-':>11}" for p in others)
    return text


if __name__ == "__main__":
    sys.exit(main())
