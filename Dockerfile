# syntax=docker/dockerfile:1
# Two images from one file:
#   docker build --target api    -t mcnet-api .     # the HTTP API: no torch, ~300 MB
#   docker build --target worker -t mcnet-worker .  # one GPU worker: torch with CUDA
# docker-compose.yml builds both.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 mcnet \
    && mkdir -p /data \
    && chown mcnet:mcnet /data
WORKDIR /app
COPY pyproject.toml README.md ./

# --- API: FastAPI, Redis/RQ client, storage, probing (PyAV, Pillow); never torch ---------
FROM base AS api
COPY core ./core
COPY service ./service
RUN pip install . \
    && python -c "import service.app, sys; sys.exit('torch' in sys.modules)"
USER mcnet
ENV MCNET_HOST=0.0.0.0 \
    MCNET_PORT=8000 \
    STORAGE_URL=file:///data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["mcnet", "api"]

# --- worker: the model on one GPU ---------------------------------------------------------
FROM base AS worker
# PyPI's Linux x86_64 torch wheels are CUDA builds that bring their CUDA libraries; the
# host needs only the NVIDIA driver and the NVIDIA container toolkit.
ARG TORCH_VERSION=2.13.0
RUN pip install "torch==${TORCH_VERSION}"
COPY core ./core
COPY service ./service
COPY model ./model
COPY worker ./worker
RUN pip install ".[worker]"
USER mcnet
ENV MCNET_DEVICE=cuda \
    MCNET_METRICS_PORT=9101 \
    STORAGE_URL=file:///data \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
EXPOSE 9101
# SIGTERM: the current job runs MCNET_SHUTDOWN_GRACE seconds more, then goes back to the
# queue; give the container longer than that to stop (stop_grace_period in compose).
STOPSIGNAL SIGTERM
CMD ["mcnet", "worker"]
