#!/bin/bash
# The maximum rate: a closed-loop run against a fresh server. Starts `chorus serve` on an empty data
# directory, keeps WINDOW messages in flight on each of 2,000 WebSockets for 10 s (`chorus load
# --rate 0`), and prints acknowledged messages per second and, per message, the server's and the
# generator's read/write system calls (`/proc/PID/io`, sampled over 5 s of the run): a batched
# run makes far fewer calls per message than an open-loop one (open_loop.sh); and the VM's steal time.
# The sample comes from the server's /metrics (chorus_messages_accepted_total), so it needs curl.
# Usage: [SERVE_CPUS=0 LOAD_CPUS=1] [WINDOW=8] [LOAD_OPTS="--event-loops 1"] Benchmarks/scripts/closed_loop.sh .build/release/chorus [extra serve options...]
set -euo pipefail
BIN=$1; shift
. "$(dirname "$0")/fresh_server.sh"
start_fresh_server "$BIN" "$@"
steal_mark
${LOAD_CPUS:+taskset -c "$LOAD_CPUS"} "$BIN" load --target 127.0.0.1:$PORT --connections 2000 --rate 0 --window "${WINDOW:-8}" --duration 10 --warmup 2 \
    ${LOAD_OPTS:-} 2>/dev/null > "$DATA.json" &
LP=$!
accepted() { curl -s 127.0.0.1:$PORT/metrics | awk '/^chorus_messages_accepted_total/ {print $2}'; }
# Set-up (2,000 registrations and logins) takes a few seconds; sample 5 s once acks are flowing.
for _ in $(seq 1 300); do [ "$(accepted)" -gt 1000 ] 2>/dev/null && break; sleep 0.1; done
sleep 1; SC0=$(io_calls $SP); GC0=$(io_calls $LP); M0=$(accepted)
sleep 5; SC1=$(io_calls $SP); GC1=$(io_calls $LP); M1=$(accepted)
wait $LP
STEAL=$(steal_since)
python3 - "$DATA.json" "$SC0" "$SC1" "$GC0" "$GC1" "${M0:-0}" "${M1:-0}" "$STEAL" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); sc0, sc1, gc0, gc1, m0, m1 = map(float, sys.argv[2:8])
n = max(m1 - m0, 1)
print(f"window {d['window']} acked/s {d['ackedPerSecond']:.0f} lost {d['lost']} dup {d['duplicates']} ooo {d['outOfOrder']} "
      f"read+write calls/msg server {(sc1 - sc0) / n:.2f} generator {(gc1 - gc0) / n:.2f} (over {n:.0f} messages) "
      f"VM steal {sys.argv[8]}")
PY
