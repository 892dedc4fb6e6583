#!/bin/bash
# The half-maximum latency measurement as one command: the maximum rate (closed_loop.sh), then, right after it on
# a fresh server, an open-loop run at half of that maximum (open_loop.sh), PAIRS times. Each pair
# is measured minutes apart at most, because this shared VM's capacity drifts by a third within an
# hour; a maximum from another hour says little about latency now.
# Usage: [SERVE_CPUS=0 LOAD_CPUS=1] [PAIRS=3] [WINDOW=8] [LOAD_OPTS="--event-loops 1"] Benchmarks/scripts/half_max.sh .build/release/chorus [extra serve options...]
set -euo pipefail
BIN=$1; shift
dir=$(dirname "$0")
for i in $(seq 1 "${PAIRS:-3}"); do
    max=$("$dir/closed_loop.sh" "$BIN" "$@")
    echo "pair $i maximum: $max"
    rate=$(awk '{for (i = 1; i < NF; i++) if ($i == "acked/s") print int($(i + 1) / 2)}' <<< "$max")
    echo "pair $i at half: $("$dir/open_loop.sh" "$BIN" "$rate" "$@")"
done
