#!/usr/bin/env bash
# Installs what Chorus needs on a fresh Debian machine (run as root). Idempotent: it installs only
# what is missing. The Swift toolchain itself is expected on PATH (swift 6.1 or newer).
# `deps.sh` installs what building and running the server needs; `deps.sh --test` also what the
# tests need (Python clients and servers, Node, headless Chromium and its driver).
set -euo pipefail
for_tests=false
[ "${1:-}" = "--test" ] && for_tests=true

need_apt=()
pkg-config --exists liblz4 2>/dev/null || need_apt+=(liblz4-dev)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
[ -x /usr/bin/setpriv ] || need_apt+=(util-linux)
if $for_tests; then
    command -v openssl >/dev/null || need_apt+=(openssl)  # the STARTTLS test makes a certificate
    command -v curl >/dev/null || need_apt+=(curl)
    command -v etcd >/dev/null || need_apt+=(etcd-server)  # replication tests coordinate through a real etcd
    command -v ip >/dev/null || need_apt+=(iproute2)     # a replicated node cut off in its own network namespace
    command -v node >/dev/null || need_apt+=(nodejs)      # the web client's unit tests (node --test)
    # The web client's end-to-end tests drive a real headless Chromium through Selenium.
    command -v chromium >/dev/null || need_apt+=(chromium)
    command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "deps: installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

command -v python3 >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; apt-get install -y -qq python3 python3-pip >/dev/null; }

# Acceptance tests use real third-party clients and servers: Python's websockets (client) and
# aiosmtpd (a real SMTP server the email tests start), run by pytest; the OpenAPI document is
# checked with PyYAML, jsonschema and openapi-spec-validator.
py_modules="websockets, pytest, aiosmtpd, selenium, yaml, jsonschema, openapi_spec_validator"
if $for_tests && ! python3 -c "import $py_modules" 2>/dev/null; then
    echo "deps: installing websockets, pytest, aiosmtpd, selenium, pyyaml, jsonschema and openapi-spec-validator from PyPI"
    python3 -m pip install -q --disable-pip-version-check websockets pytest aiosmtpd selenium pyyaml jsonschema openapi-spec-validator 2>&1 \
        | grep -v "Running pip as the 'root' user" || true
    python3 -c "import $py_modules"
fi

command -v swift >/dev/null || { echo "deps: swift is not on PATH (Swift 6.1+ toolchain required)" >&2; exit 1; }
