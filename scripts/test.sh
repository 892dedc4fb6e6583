#!/usr/bin/env bash
# Installs what is missing, builds everything (the `chorus` binary the integration tests start
# included) and runs the whole test suite: Swift unit and integration tests, then the acceptance
# tests in Tests/acceptance (pytest + websockets, and Selenium with headless Chromium for the web
# client, against the real binary).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test
swift build --build-tests
swift test --skip-build
# The web client's protocol module, against a fake socket (Node's built-in runner, no packages).
node --test Tests/web/
# Every decoder of outside bytes, mutation-fuzzed from its checked-in seeds for a few seconds each
# (a long run: docs/SECURITY.md, "Fuzzing").
.build/debug/chorus-tools fuzz all --seconds 5 --seed "$(date +%s)"
# Acceptance tests: the real binary driven by Python's websockets client over real sockets.
python3 -m pytest -q Tests/acceptance
