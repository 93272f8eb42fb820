# bench/peers/lua/lua.sh: a plain Lua 5.4 table, the in-memory floor
# (sourced by bench/run). No persistence: throughput and memory only.

vb_lua_bench() {
  local K=$1 N=$2 rep=$3 out rc line
  vb_log "lua table K=$K N=$N rep $rep"
  vb_setting lua table "lua5.4, t[\"k\" .. j % K] = j in one loop, no \
persistence"
  out="$VB_OUT/work/lua-$K-$N-$rep.out"
  : >"$out"
  read -r _ rc < <(vb_time cmd "$(vb_timeout_for "$N")" "$out" -- lua5.4 \
    "$VB_ROOT/peers/lua/table.lua" "$N" "$K")
  line=$(grep '^VB ' "$out" | tail -1)
  if [ "$rc" != 0 ] || [ -z "$line" ]; then
    vb_record lua table "$K" "$N" tput n/a ups "$rep" \
      "table.lua failed (rc $rc)"
    return 1
  fi
  local v
  declare -A v
  for kv in ${line#VB }; do v[${kv%%=*}]=${kv#*=}; done
  vb_check lua table "$K" "$N" count "$((N < K ? N : K))" "${v[count]}"
  vb_record lua table "$K" "$N" tput \
    "$(awk -v n="$N" -v t="${v[elapsed]}" 'BEGIN {printf "%.1f", n / t}')" \
    ups "$rep" "update loop, timed inside lua5.4"
  vb_record lua native "$K" "$N" mem_bpk "$(awk -v a="${v[gc0]}" \
    -v b="${v[gc1]}" -v k="$K" 'BEGIN {printf "%.1f", (b - a) * 1024 / k}')" \
    B/key "$rep" "collectgarbage(\"count\") delta"
  vb_record lua rss "$K" "$N" mem_bpk "$(awk -v a="${v[rss0]}" \
    -v b="${v[rss1]}" -v k="$K" 'BEGIN {printf "%.1f", (b - a) * 1024 / k}')" \
    B/key "$rep" "VmRSS delta"
  rm -f "$out"
}
