# The Engram image the KubeRay manifests (cluster/kuberay/) run: Ray, Engram and vLLM in one
# environment, installed by the same script as a developer machine (scripts/setup.sh).
#   docker build -t engram/engram:0.1-cpu .
#   docker build --build-arg ENGRAM_EXTRA=gpu -t engram/engram:0.1-gpu .
FROM python:3.11-slim-bookworm

ARG ENGRAM_EXTRA=cpu
ENV ENGRAM_EXTRA=${ENGRAM_EXTRA} \
    ENGRAM_WITH_POSTGRES=0 \
    ENGRAM_DEV=0 \
    PATH=/app/.venv/bin:${PATH} \
    PYTHONUNBUFFERED=1

# KubeRay's probes and `ray start` need bash and wget in the image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bash wget ca-certificates \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY . /app
RUN bash scripts/setup.sh \
    && rm -rf /root/.cache/pip

# Engram's settings on a cluster; secrets come from the pod's environment (Kubernetes Secrets).
ENV ENGRAM_CONFIG=/app/cluster/engram-cluster.yaml
