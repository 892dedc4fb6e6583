#!/usr/bin/env bash
# Installs what Chorus needs on a fresh Debian machine (run as root). Idempotent: it installs only
# what is missing. The Swift toolchain itself is expected on PATH (swift 6.1 or newer).
set -euo pipefail

need_apt=()
pkg-config --exists liblz4 2>/dev/null || need_apt+=(liblz4-dev)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
[ -x /usr/bin/setpriv ] || need_apt+=(util-linux)
command -v openssl >/dev/null || need_apt+=(openssl)  # the STARTTLS test makes a certificate
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "deps: installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

command -v python3 >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; apt-get install -y -qq python3 python3-pip >/dev/null; }

# Acceptance tests use real third-party clients and servers: Python's websockets (client) and
# aiosmtpd (a real SMTP server the email tests start), run by pytest.
if ! python3 -c "import websockets, pytest, aiosmtpd" 2>/dev/null; then
    echo "deps: installing websockets, pytest and aiosmtpd from PyPI"
    python3 -m pip install -q --disable-pip-version-check websockets pytest aiosmtpd 2>&1 | grep -v "Running pip as the 'root' user" || true
    python3 -c "import websockets, pytest, aiosmtpd"
fi

command -v swift >/dev/null || { echo "deps: swift is not on PATH (Swift 6.1+ toolchain required)" >&2; exit 1; }
