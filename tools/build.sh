#!/usr/bin/env bash
# Build vedhost into ./build (or $1) after installing what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
