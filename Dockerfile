# Two images from one file (docker-compose.yml builds both):
#   docker build --target api    -t mcnet-api .     # the HTTP API: no torch
#   docker build --target worker -t mcnet-worker .  # one GPU worker: torch with CUDA
#
# Build arguments:
#   PYTHON_IMAGE   the base image (python:3.11-slim; the container test passes a local Debian 12)
#   TORCH_INDEX    which torch build the worker gets, and so the NVIDIA driver the host needs:
#                    cu130 (default; PyPI's torch 2.13 is this build)  driver 580 or newer;
#                                                                       Turing to Blackwell
#                    cu126 (download.pytorch.org/whl/cu126)            driver 525.60.13 or newer;
#                                                                       Maxwell to Hopper
#                    cpu   (download.pytorch.org/whl/cpu)              no GPU
#                  Any other cuNNN index there works too (cu132 ...); 2.13 has no cu128 build.
#   TORCH_INDEX_URL  a mirror of that index (a PEP 503 simple index) to use instead of
#                  download.pytorch.org/whl/$TORCH_INDEX (cpu and cuNNN); default: none
#   TORCH_VERSION  2.13.0
#   TORCH_WHEELS   an image or stage whose /wheels holds torch wheels to prefer over the
#                  index (the container test's CPU wheel); default: none
#
# Layers, least often changed first: Python and a virtual environment, torch (worker; only
# the build arguments above change it), the dependencies read from pyproject.toml, then
# README.md and the code, one COPY per package (a new package is one more COPY line).
# torch is installed in a stage of its own and only the virtual environment is copied on,
# so the wheels it was installed from leave no layer in the image.

ARG PYTHON_IMAGE=python:3.11-slim
ARG TORCH_WHEELS=no-wheels

FROM ${PYTHON_IMAGE} AS base
LABEL org.opencontainers.image.title=mcnet-service
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
# A virtual environment: the same on python:3.11-slim and on Debian's python3 (which refuses
# `pip install` into the system). uid 10001 owns /data, the volume the results go to.
RUN python3 -m venv /opt/venv \
    && useradd --create-home --uid 10001 --user-group mcnet \
    && mkdir -p /data \
    && chown 10001:10001 /data
WORKDIR /app

FROM base AS no-wheels
RUN mkdir /wheels

FROM ${TORCH_WHEELS} AS torch-wheels

# --- API: FastAPI, Redis/RQ client, storage, probing (PyAV, Pillow); never torch ---------
FROM base AS api
COPY docker/requirements.py pyproject.toml /tmp/build/
RUN python /tmp/build/requirements.py /tmp/build/pyproject.toml > /tmp/build/requirements.txt \
    && pip install -r /tmp/build/requirements.txt
COPY README.md pyproject.toml ./
COPY core ./core
COPY service ./service
RUN pip install --no-deps . \
    && python -c "import service.app, sys; sys.exit('torch' in sys.modules)"
USER 10001:10001
ENV MCNET_HOST=0.0.0.0 \
    MCNET_PORT=8000 \
    STORAGE_URL=file:///data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('MCNET_PORT', '8000'), timeout=4)"]
CMD ["mcnet", "api"]

# --- worker: the model on one GPU ---------------------------------------------------------
FROM base AS torch
ARG TORCH_INDEX=cu130
ARG TORCH_INDEX_URL=
ARG TORCH_VERSION=2.13.0
COPY --from=torch-wheels /wheels /tmp/wheels
# DL3013: torch is pinned, by TORCH_VERSION (hadolint does not read through the variable);
# SC2086: $index is meant to split into an option and its value (or into nothing).
# hadolint ignore=DL3013,SC2086
RUN case "$TORCH_INDEX" in \
      cu130) index="" ;; \
      cu[0-9]*|cpu) index="--index-url ${TORCH_INDEX_URL:-https://download.pytorch.org/whl/$TORCH_INDEX}" ;; \
      *) echo "TORCH_INDEX must be cu130 (PyPI's torch), cpu, or cuNNN (an index of download.pytorch.org/whl, e.g. cu126), not '$TORCH_INDEX'" >&2; exit 1 ;; \
    esac \
    && pip install --find-links /tmp/wheels $index "torch==${TORCH_VERSION}"

FROM base AS worker
COPY --from=torch /opt/venv /opt/venv
COPY docker/requirements.py pyproject.toml /tmp/build/
RUN python /tmp/build/requirements.py /tmp/build/pyproject.toml worker > /tmp/build/requirements.txt \
    && pip install -r /tmp/build/requirements.txt
COPY README.md pyproject.toml ./
COPY core ./core
COPY service ./service
COPY model ./model
COPY worker ./worker
RUN pip install --no-deps .
USER 10001:10001
# MCNET_HEALTH_FILE: the worker touches it after each heartbeat it sent to Redis, and only
# once the model is loaded; the healthcheck wants it younger than 90 s (idle heartbeats
# come every 45 s with the default MCNET_WORKER_TTL of 60).
ENV MCNET_DEVICE=cuda \
    MCNET_METRICS_PORT=9101 \
    MCNET_HEALTH_FILE=/tmp/mcnet-worker-alive \
    STORAGE_URL=file:///data \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,video
EXPOSE 9101
HEALTHCHECK --interval=15s --timeout=5s --start-period=300s --retries=3 \
    CMD ["sh", "-c", "test $(( $(date +%s) - $(stat -c %Y \"$MCNET_HEALTH_FILE\") )) -lt 90"]
# SIGTERM: the current job runs MCNET_SHUTDOWN_GRACE seconds more, then goes back to the
# queue; give the container longer than that to stop (stop_grace_period in compose).
STOPSIGNAL SIGTERM
CMD ["mcnet", "worker"]
