#!/bin/sh
# Install the command-line tools the tests drive (Debian/Ubuntu), besides the PC/SC stack:
#   faketime   runs gw in the future (one MFA per session across hours: tests/core/test_shared_steps.py)
#   curl       the curl -H "$(gw token ...)" recipe (tests/plugins/cognito/test_token_command.py)
# Idempotent: installs only what is missing, and only when run as root with apt-get.
# Always exits 0 elsewhere (those tests then skip, or fail loudly under CI=true).
set -u
PKGS="faketime curl"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "tools: all packages present ($PKGS)"
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "tools: missing:$missing (not root or no apt-get; install them yourself)"
    exit 0
fi
echo "tools: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "tools: installed:$missing"
