#!/usr/bin/env bash
# Installs what is missing, builds `chorus` in release mode and runs the server on its embedded
# default: one node, log under ./chorus-data, http://127.0.0.1:8080/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
swift build -c release --product chorus
exec .build/release/chorus serve "$@"
