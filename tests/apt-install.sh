#!/bin/sh
# apt-install.sh LABEL PACKAGE...: install the Debian/Ubuntu packages that are missing.
# Shared by the install scripts of the test suite (tests/install-tools.sh, tests/pcsc/install.sh,
# tests/browser/install.sh). Idempotent: installs only what is missing, and only when run as
# root with apt-get. Always exits 0 (the tests then skip, or fail loudly under CI=true).
set -u
label=$1
shift
missing=""
for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "$label: all packages present ($*)"
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "$label: missing:$missing (not root or no apt-get; install them yourself)"
    exit 0
fi
echo "$label: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null || echo "$label: apt-get failed for:$missing"
echo "$label: installed:$missing"
exit 0
