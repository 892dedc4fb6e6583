#!/bin/bash
# Compiles and runs loopback_yardstick.c (needs gcc): the CPU cost of one loopback round trip today,
# and the machine facts that explain it: the CPU, the guest's idle driver and halt polling (on a VM
# with halt polling off, each wake-up of an idle vCPU is a VM exit, most of a blocking round trip's
# cost), and how much two busy threads slow each other (vCPUs that share a physical core).
set -euo pipefail
out=$(mktemp)
trap 'rm -f "$out"' EXIT
gcc -O2 -o "$out" "$(dirname "$0")/loopback_yardstick.c"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) online"
idle=/sys/devices/system/cpu/cpuidle
poll=/sys/module/haltpoll/parameters/guest_halt_poll_ns
echo "idle driver: $(cat $idle/current_driver 2>/dev/null || echo none), guest halt polling: $(cat $poll 2>/dev/null || echo n/a) ns"
"$out" "${1:-100000}"
one=$("$out" spin)
two=$( ("$out" spin & "$out" spin; wait) | sort -n | tail -1)
echo "a busy thread: ${one} s alone, ${two} s with a second beside it (slowest of the two)"
