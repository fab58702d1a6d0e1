#!/usr/bin/env bash
# Prepare a ComfyUI checkout for the optional real-ComfyUI and real-editor tests
# (tests/editor/test_real_*.py).
#
# Usage:
#   git clone https://github.com/Comfy-Org/ComfyUI /path/to/ComfyUI     # once, by hand
#   tools/setup_comfyui.sh /path/to/ComfyUI [FRONTEND_VERSION]
#
# What it does, all outside this repo:
#   * creates a venv next to the checkout (<checkout>/../venv, or $COMFYUI_VENV)
#     with ComfyUI's requirements.txt minus torch/torchvision/torchaudio, plus a
#     CPU torch ($TORCH_SPEC, default torch==2.14.1 torchvision==0.29.1 from the
#     configured index) and requests;
#   * with FRONTEND_VERSION (e.g. 1.58.1): downloads comfyui-frontend-package of
#     that version and unzips it to <checkout>/../frontend-<version>; its
#     comfyui_frontend_package/static folder is what COMFYUI_FRONTEND_ROOT takes.
#     Without it the tests use the frontend the checkout pins (its
#     requirements.txt, installed into the venv).
#
# It prints the environment variables the tests read. The browser side is not
# installed here: Debian/Ubuntu `apt-get install chromium chromium-driver`, and
# `pip install selenium` into the venv that runs pytest.
set -euo pipefail

if [ $# -lt 1 ] || [ ! -f "$1/main.py" ]; then
  echo "usage: $0 /path/to/ComfyUI-checkout [frontend-version]" >&2
  echo "  (the checkout is the folder with main.py: git clone https://github.com/Comfy-Org/ComfyUI)" >&2
  exit 2
fi
COMFY=$(cd "$1" && pwd)
FRONTEND=${2:-}
PARENT=$(dirname "$COMFY")
VENV=${COMFYUI_VENV:-$PARENT/venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}

if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --quiet)

echo "== installing ComfyUI's requirements (torch left to the next step)"
REQS=$(mktemp)
trap 'rm -f "$REQS"' EXIT
# torch, torchvision, torchaudio are installed below as a CPU build; torchaudio is not needed.
grep -vE '^\s*(torch|torchvision|torchaudio)\s*([<>=!~].*)?$' "$COMFY/requirements.txt" > "$REQS"
# shellcheck disable=SC2086
"${PIP[@]}" $TORCH_SPEC requests -r "$REQS"

PINNED=$(sed -n 's/^comfyui-frontend-package==\([0-9.]*\).*/\1/p' "$COMFY/requirements.txt")
echo "== the checkout pins frontend ${PINNED:-?}"

ROOT_VAR=""
if [ -n "$FRONTEND" ]; then
  DEST="$PARENT/frontend-$FRONTEND"
  if [ ! -d "$DEST/comfyui_frontend_package/static" ]; then
    echo "== downloading comfyui-frontend-package==$FRONTEND"
    WHEELS=$(mktemp -d)
    "$VENV/bin/python" -m pip download --quiet --no-deps "comfyui-frontend-package==$FRONTEND" -d "$WHEELS"
    mkdir -p "$DEST"
    "$VENV/bin/python" -m zipfile -e "$WHEELS"/comfyui_frontend_package-*.whl "$DEST"
    rm -rf "$WHEELS"
  fi
  ROOT_VAR="$DEST/comfyui_frontend_package/static"
fi

cat <<EOF

Ready. Run the suites with:
  export COMFYUI_DIR=$COMFY
  export COMFYUI_PYTHON=$VENV/bin/python
EOF
if [ -n "$ROOT_VAR" ]; then
  echo "  export COMFYUI_FRONTEND_ROOT=$ROOT_VAR    # frontend $FRONTEND; unset it for the pinned ${PINNED:-one}"
fi
echo "  python -m pytest -q -p no:cacheprovider tests/editor"
