#!/usr/bin/env bash
# Prepare, here (PyPI reachable), what tools/device_check.py needs on the GPU machine, which has
# PyTorch and torchvision but no Jupyter kernel stack and no network:
#   .whl/          the kernel packages as wheels for that machine's Python (3.12, x86-64 Linux)
#   .device_data/  real MNIST idx files for the full-size chapter (from ../shared/data; 11 MB:
#                  the repo, the wheels and the data must stay under the tool's 64 MiB together)
# Both folders are kept out of git through .git/info/exclude and travel with `carry`.
# Usage: bash tools/device_kit.sh [python-version]   (default 3.12; 3.11 to test on this machine)
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER="${1:-3.12}"
WHL=.whl
[ "$PYVER" = 3.12 ] || WHL=".whl-$PYVER"
for d in .whl/ .whl-3.11/ .device_data/; do
  grep -qxF "/$d" .git/info/exclude 2>/dev/null || echo "/$d" >> .git/info/exclude
done
mkdir -p "$WHL"
# The versions this project's venv uses (constraints.txt where pinned there).
PKGS=(
  nbclient==0.11.0 nbformat==5.11.1 jupyter_client==8.10.0 jupyter_core==5.9.1 ipykernel==6.31.0
  ipython==9.18.1 ipython_pygments_lexers==1.1.1 traitlets==5.16.1 comm==0.2.3 debugpy==1.8.22
  matplotlib-inline==0.2.2 pyzmq==27.3.0 tornado==6.6.1 platformdirs==4.14.7 fastjsonschema==2.22.3
  jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1
  decorator jedi==0.20.1 parso==0.8.7 pexpect==4.9.0 ptyprocess==0.7.0 prompt_toolkit==3.0.53
  wcwidth==0.9.4 stack-data==0.6.3 asttokens==3.0.2 executing==2.3.0 pure_eval==0.2.4
  ipywidgets==8.1.9 widgetsnbextension==4.0.16 jupyterlab_widgets==3.0.17 nest-asyncio==1.6.0
)
PLAT=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_26_x86_64 manylinux_2_17_x86_64 \
         manylinux2014_x86_64 manylinux_2_5_x86_64 manylinux1_x86_64; do PLAT+=(--platform "$p"); done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
  "${PLAT[@]}" -d "$WHL" "${PKGS[@]}"
mkdir -p .device_data
if [ -d ../shared/data/mnist ]; then
  cp -r ../shared/data/mnist .device_data/
else
  echo "../shared/data/mnist not found: the full-size chapter will have no data" >&2
fi
du -sh "$WHL" .device_data
