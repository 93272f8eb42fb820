#!/usr/bin/env bash
# The layering rules of ARCHITECTURE.md ("Rooms and the arrows between
# them") that the compiler does not see: which headers each room may
# include. Prints one line per forbidden #include and exits 1 if any.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
# check ROOM_GLOB DESCRIPTION REGEX: no file of the room includes a header
# matching REGEX (extended regex on the text between the quotes/brackets).
check() {
  local files=$1 what=$2 re=$3 f line
  for f in $files; do
    [ -f "$f" ] || continue
    while IFS= read -r line; do
      echo "tools/layer-check.sh: $f: $line ($what)"
      bad=1
    done < <(grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($re)[>\"]" "$f" || true)
  done
}
host_headers='host_int\.h|repl_int\.h|vh_host\.h|vh_datadir\.h|vh_offline\.h|vh_log\.h|vh_export_cmd\.h|vh_control\.h|vh_repl\.h'
check "persist/*.c persist/*.h" "persist/ uses neither Lua nor libuv nor the rooms above it" \
  "lua\.h|lauxlib\.h|lualib\.h|lua5\.4/.*|uv\.h|vhl\.h|vhl_int\.h|$host_headers"
check "bindings/*.c bindings/*.h" "bindings/ knows no libuv and no host" \
  "uv\.h|$host_headers"
check "host/http.c" "the HTTP ingress is built on the public plugin ABI only" \
  "host_int\.h|repl_int\.h|vh_host\.h|vhl\.h|vhl_int\.h"
exit $bad
