#!/bin/bash
# Compiles and runs relay_floor.c (needs gcc): Chorus's one-to-one socket pattern over 2,000
# loopback connections with no application work, as a yardstick for the latency target at half the
# maximum. RATE 0 is a closed loop with WINDOW frames in flight per connection (the maximum); a rate
# is an open loop. Prints the generator's JSON plus, per message, the CPU time of relay and generator
# sampled over 4 s of the run. The relay appends every frame to a file (one pwrite every 16 reads and
# at the end of each epoll batch), as Chorus's log does with `--fsync never`; with FSYNC=1 it
# group-commits them with fdatasync on a writer thread (at most one commit a millisecond) and acks and
# delivers after each commit, as Chorus does with `--fsync always`.
# RATE `half` runs the maximum and then an open loop at half of it, as half_max.sh does for Chorus.
# Usage: [SERVE_CPUS=0 LOAD_CPUS=1] [WINDOW=8] [CONNS=2000] [FSYNC=1] Benchmarks/scripts/relay_floor.sh RATE|half
set -euo pipefail
RATE=$1
if [ "$RATE" = half ]; then
    max=$("$0" 0)
    echo "maximum: $max"
    echo "at half: $("$0" "$(awk '{print int($4 / 2)}' <<< "$max")")"
    exit 0
fi
dir=$(mktemp -d)
trap 'kill $SP 2>/dev/null || true; wait $SP 2>/dev/null || true; rm -rf "$dir"' EXIT
gcc -O2 -o "$dir/relay" "$(dirname "$0")/relay_floor.c" -lpthread
PORT=$((10000 + RANDOM % 10000))  # below the ephemeral range
${SERVE_CPUS:+taskset -c "$SERVE_CPUS"} "$dir/relay" server $PORT $([ -n "${FSYNC:-}" ] && echo --fsync || echo --log) "$dir/log" > "$dir/out" &
SP=$!
for _ in $(seq 1 50); do grep -q listening "$dir/out" && break; sleep 0.1; done
${LOAD_CPUS:+taskset -c "$LOAD_CPUS"} "$dir/relay" load $PORT "${CONNS:-2000}" "$RATE" 12 2 "${WINDOW:-8}" > "$dir/load.json" &
LP=$!
cpu() { awk '{print $14 + $15}' /proc/$1/stat; }
sleep 5; S0=$(cpu $SP); G0=$(cpu $LP)
sleep 4; S1=$(cpu $SP); G1=$(cpu $LP)
wait $LP
kill $SP; wait $SP || true
python3 - "$dir/load.json" "$RATE" "$S0" "$S1" "$G0" "$G1" "$(getconf CLK_TCK)" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); rate = float(sys.argv[2]); s0, s1, g0, g1, hz = map(float, sys.argv[3:8])
r = rate if rate > 0 else d["ackedPerSecond"]
e = d["endToEndMs"]
print(f"rate {sys.argv[2]} acked/s {d['ackedPerSecond']} sent {d['sent']} delivered {d['delivered']} "
      f"e2e p50 {e['p50']} ms p99 {e['p99']} ms p99.9 {e['p999']} ms "
      f"relay CPU {(s1 - s0) / hz / 4:.2f} cores, {(s1 - s0) / hz * 1e6 / (4 * r):.1f} us/msg; "
      f"generator {(g1 - g0) / hz / 4:.2f} cores, {(g1 - g0) / hz * 1e6 / (4 * r):.1f} us/msg", end="")
PY
echo " $(grep fsync "$dir/out" || true)"
