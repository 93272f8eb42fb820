#!/usr/bin/env bash
# bench/rehearse_bench.sh - a rehearsal of the last S slices against the
# time the host spent running them live (issue 17; target <= 2x).
#
#   bench/rehearse_bench.sh
#
# A host (nosync unless DURABILITY=sync) holds K keys (BENCH_K, default
# 10000) in one domain and runs a chain of S + 10 slices (BENCH_SLICES,
# default 10000) flat out: each slice delivers one message whose handler
# adds 1 to 5 random keys (math.random) and sends the next message; then
# ved.exit. LIVE = the slice clock of the newest version minus that of the
# version S back (`vedhost log`): the wall time the host spent on those S
# slices, persistence included. Then `vedhost rehearse --last S` with the
# same script (a clean rehearsal: same state, same replies) is timed:
# REHEARSE = its wall time (process start, secondary open, reading S input
# logs, the replay, the diff), INNER = its own "ms" (--json). Prints LIVE,
# REHEARSE, INNER and REHEARSE / LIVE.
#
# Settings: VEDHOST_BUILD (default ./build), BENCH_OUT (default a temp dir,
# removed unless given). Only the processes this script starts are stopped.
set -euo pipefail
BUILD=${VEDHOST_BUILD:-$(cd "$(dirname "$0")/.." && pwd)/build}
BIN=$BUILD/bin/vedhost
S=${BENCH_SLICES:-10000}
K=${BENCH_K:-10000}
DUR=${DURABILITY:-nosync}
OUT=${BENCH_OUT:-}
if [ -z "$OUT" ]; then
  OUT=$(mktemp -d)
  trap 'rm -rf "$OUT"' EXIT
fi
mkdir -p "$OUT"
cat >"$OUT/app.lua" <<EOF
local ved = require "ved"
ved.domain "bench" {
  state = { n = 0, kv = {}, sum = 0 },
  start = function(state, ctx)
    if state.n == 0 then for i = 1, $K do state.kv[i] = i end end
    ctx:send("bench", "step", {})
  end,
  on = {
    step = function(state, p, ctx)
      state.n = state.n + 1
      for _ = 1, 5 do
        local k = math.random($K)
        state.kv[k] = state.kv[k] + 1
        state.sum = state.sum + 1
      end
      if state.n < $S + 10 then ctx:send("bench", "step", {}) else ved.exit(0) end
    end,
  },
}
EOF
rm -rf "$OUT/data"
"$BIN" run --data "$OUT/data" --no-watch --durability "$DUR" --log-level warn \
  "$OUT/app.lua"
# LIVE: newest version's time minus the time of the version S back
LIVE=$("$BIN" log --data "$OUT/data" -n $((S + 1)) | python3 -c '
import sys, datetime
rows = [l.split() for l in sys.stdin.read().splitlines()[1:] if l.strip()]
def t(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
print("%.1f" % ((t(rows[0][1]) - t(rows[-1][1])) * 1000))')
t0=$(date +%s%N)
"$BIN" rehearse --data "$OUT/data" --last "$S" --json "$OUT/app.lua" \
  >"$OUT/rehearse.json"
t1=$(date +%s%N)
REH=$(( (t1 - t0) / 1000000 ))
INNER=$(tail -n 1 "$OUT/rehearse.json" | python3 -c '
import sys, json; v = json.loads(sys.stdin.read())
assert v["clean"] and v["slices"] == '"$S"', v
print("%.1f" % v["ms"])')
echo "slices:            $S (K=$K keys, durability $DUR)"
echo "live:              $LIVE ms"
echo "rehearse (wall):   $REH ms"
echo "rehearse (inner):  $INNER ms"
python3 -c "print('ratio rehearse/live: %.2f (wall), %.2f (inner); target <= 2' % ($REH / $LIVE, $INNER / $LIVE))"
