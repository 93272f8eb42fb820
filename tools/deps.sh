#!/usr/bin/env bash
# Install the Debian 12 packages vedhost builds and tests with (idempotent).
# Runs apt-get only when something is missing; needs root (or sudo).
set -euo pipefail
pkgs=(build-essential cmake pkg-config liblua5.4-dev lua5.4 libuv1-dev
      librocksdb-dev libzstd-dev lua-busted libedit-dev clang-format libhttp-parser-dev
      libjansson-dev curl wrk zstd
      clang libclang-rt-14-dev) # clang + libFuzzer runtime: tools/fuzz.sh
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "tools/deps.sh: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
