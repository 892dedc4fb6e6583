#!/bin/bash
# One open-loop latency run against a fresh server: starts `chorus serve` on an empty data directory,
# drives it with `chorus load` at RATE messages/s over 2,000 WebSockets, and prints the end-to-end
# p50/p99, and per message the CPU time and the read/write system calls (`/proc/PID/io`) of the
# server and of the generator, sampled over 6 s of the sending window, and the VM's steal time.
# With `--fsync always` or `batch` it adds the log's fsync p99 over the run (the server's histogram bucket).
# JSON_OUT=FILE keeps the generator's whole report (with its 100 ms latency timeline).
# Usage: [SERVE_CPUS=0 LOAD_CPUS=1] [LOAD_OPTS="--event-loops 1"] [JSON_OUT=FILE] Benchmarks/scripts/open_loop.sh .build/release/chorus RATE [extra serve options...]
set -euo pipefail
BIN=$1; RATE=$2; shift 2
. "$(dirname "$0")/fresh_server.sh"
start_fresh_server "$BIN" "$@"
steal_mark
${LOAD_CPUS:+taskset -c "$LOAD_CPUS"} "$BIN" load --target 127.0.0.1:$PORT --connections 2000 --rate "$RATE" --duration 14 --warmup 2 ${LOAD_OPTS:-} 2>/dev/null > "$DATA.json" &
LP=$!
sleep 6; T0=$(awk '{print $14+$15}' /proc/$SP/stat); G0=$(awk '{print $14+$15}' /proc/$LP/stat); SC0=$(io_calls $SP); GC0=$(io_calls $LP)
sleep 6; T1=$(awk '{print $14+$15}' /proc/$SP/stat); G1=$(awk '{print $14+$15}' /proc/$LP/stat); SC1=$(io_calls $SP); GC1=$(io_calls $LP)
wait $LP
STEAL=$(steal_since)
FSYNC=$(fsync_p99)
[ -n "${JSON_OUT:-}" ] && cp "$DATA.json" "$JSON_OUT"
TICKS=$(getconf CLK_TCK)
python3 - "$DATA.json" "$RATE" "$T0" "$T1" "$TICKS" "$G0" "$G1" "$SC0" "$SC1" "$GC0" "$GC1" "$STEAL" "$FSYNC" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); rate = float(sys.argv[2]); t0, t1, hz, g0, g1, sc0, sc1, gc0, gc1 = map(float, sys.argv[3:12])
e = d["endToEndLatencyMs"]
print(f"rate {rate:.0f}/s acked {d['acked']} lost {d['lost']} dup {d['duplicates']} ooo {d['outOfOrder']} "
      f"e2e p50 {e['p50']} ms p99 {e['p99']} ms server CPU {(t1 - t0) / hz * 1e6 / (6 * rate):.1f} us/msg "
      f"generator CPU {(g1 - g0) / hz * 1e6 / (6 * rate):.1f} us/msg "
      f"read+write calls/msg server {(sc1 - sc0) / (6 * rate):.2f} generator {(gc1 - gc0) / (6 * rate):.2f} "
      f"VM steal {sys.argv[12]}{sys.argv[13]}")
PY
