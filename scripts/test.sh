#!/usr/bin/env bash
# Installs what is missing, builds everything (the `chorus` binary the integration tests start
# included) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
swift build --build-tests
swift test --skip-build
