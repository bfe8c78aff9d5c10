#!/usr/bin/env bash
# Set up a development environment on a fresh Debian machine: system packages that are missing
# (Mesa's lavapipe Vulkan driver, so WebGPU runs without a GPU natively; Chromium, whose
# SwiftShader runs WebGPU in the browser tests; redis-server, the shared embedding cache of
# `sandseg serve --ray --cache redis://`, whose tests start their own on loopback), a Python
# >= 3.12 virtual environment in .venv, and the package with its test and dev tools (Ray Serve
# and the redis client come with them: the `scale` extra). Node.js/npm must be present
# (build.py fetches Pyodide from the npm registry). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in mesa-vulkan-drivers libvulkan1 chromium redis-server; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

command -v npm >/dev/null 2>&1 || {
  echo "setup: npm not found; install Node.js (Debian: apt-get install nodejs npm)" >&2
  exit 1
}

find_python() {
  for candidate in python3.12 python3.13 python3 "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$candidate"
      return
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  python=$(find_python) || {
    echo "setup: no Python >= 3.12 found; install one (e.g. 'pyenv install 3.12') and retry" >&2
    exit 1
  }
  echo "setup: creating .venv with $python"
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
echo "setup: ready ($(.venv/bin/python --version))"
