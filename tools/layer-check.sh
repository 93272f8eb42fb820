#!/usr/bin/env bash
# The layering rules of ARCHITECTURE.md ("Rooms and the arrows between
# them") that the compiler does not see. Each room is a CMake target whose
# include path holds only the public headers of the rooms it may use, so
# most forbidden includes fail to compile; what is left is checked here:
#   - headers found on every include path (uv.h, system dirs) or by a
#     relative path ("../x/y.h"), which the include path cannot refuse;
#   - a .c or .h left outside a room (persist/ or host/ root).
# Prints one line per violation and exits 1 if any.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
# check FILES DESCRIPTION REGEX: no file includes a header matching REGEX
# (extended regex on the text between the quotes/brackets).
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
shopt -s nullglob
persist=$(echo persist/{format,trie,store}/*.[ch] persist/{trie,store}/internal/*.h)
bindings=$(echo bindings/*.[ch] bindings/internal/*.h)
host=$(echo host/{runtime,abi,repl,admin,cli,control,testing}/*.[ch] host/runtime/internal/*.h)
http=$(echo plugins/http/*.[ch])
lua='lua\.h|lauxlib\.h|lualib\.h|lua5\.4/.*'
host_headers='host_int\.h|repl_int\.h|vh_host\.h|vh_datadir\.h|vh_offline\.h|vh_log\.h|vh_export_cmd\.h|vh_recover\.h|vh_control\.h|vh_repl\.h|vh_plugin\.h|vh_json\.h|vh_jstream\.h|vh_cli_args\.h'
persist_headers='vh_(err|bytes|limits|crc32c|manifest|trie|trie_int|codec|flush|valenc|export|store|walscan)\.h|store_int\.h'
check "$persist" "persist/ uses neither Lua nor libuv nor the rooms above it" \
  "$lua|uv\.h|jansson\.h|vhl\.h|vhl_int\.h|$host_headers"
check "$bindings" "bindings/ knows no libuv, no store and no host" \
  "uv\.h|vh_store\.h|$host_headers"
check "$http" "the HTTP ingress is built on the public plugin ABI only" \
  "$host_headers|vhl\.h|vhl_int\.h|$persist_headers"
check "host/control/*.[ch]" "the control room knows no host runtime" \
  "$lua|host_int\.h|vh_host\.h|vhl\.h|vh_trie\.h"
# No room reaches into another by a relative path (tests may).
check "$persist $bindings $host $http" "no relative includes across rooms" \
  '\.\./.*'
for f in persist/*.[ch] host/*.[ch] plugins/*.[ch]; do
  echo "tools/layer-check.sh: $f is in no room (see ARCHITECTURE.md)"
  bad=1
done
exit $bad
