#!/usr/bin/env bash
# `make bench`: the micro-benchmarks of Benchmarks/ (package-benchmark, release build), checked
# against the thresholds in Benchmarks/Thresholds: exits non-zero on a regression past a tolerance.
# End-to-end scripts are in Benchmarks/scripts (see its README); they need a release build of Chorus.
# Durable benchmarks write under $CHORUS_BENCH_DIR (default /tmp; it must be a real disk).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cd Benchmarks
swift package benchmark thresholds check "$@"
