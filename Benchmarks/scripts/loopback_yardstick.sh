#!/bin/bash
# Compiles and runs loopback_yardstick.c (needs gcc): the CPU cost of one loopback round trip today.
set -euo pipefail
out=$(mktemp)
trap 'rm -f "$out"' EXIT
gcc -O2 -o "$out" "$(dirname "$0")/loopback_yardstick.c"
"$out" "${1:-100000}"
