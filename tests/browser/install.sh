#!/bin/sh
# Install what the AWS IoT MQTT-over-WebSocket and browser tests need:
#   mosquitto         a real MQTT broker (the bridge forwards to its TCP port)
#   chromium          headless browser for tests/e2e/endorse/test_browser.py
#   chromium-driver   chromedriver for selenium (the system build: no download at run time)
# then the `mqtt` npm package's browser bundle (dist/mqtt.min.js), vendored into
# plugins/endorse/static/vendor/ (.gitignored: built here, never committed).
# Idempotent and quiet: installs only what is missing; apt only when root.
# Always exits 0 (the tests then skip, or fail loudly under CI=true).
set -u
cd "$(dirname "$0")/../.." || exit 0
# --demo: only what `make demo` needs (the broker and the page's bundle), no browser.
PKGS="mosquitto chromium chromium-driver"
[ "${1:-}" = "--demo" ] && PKGS="mosquitto"
MQTT_VERSION="5"
VENDOR_DIR="plugins/endorse/static/vendor"
NPM_DIR="build/npm-mqtt"

sh tests/apt-install.sh browser $PKGS
# The Debian package enables a system-wide broker on 0.0.0.0:1883; the tests start their
# own on 127.0.0.1 with a random port, so keep the system one from listening.
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled mosquitto >/dev/null 2>&1; then
    systemctl disable --now mosquitto >/dev/null 2>&1 || true
fi

if [ -s "$VENDOR_DIR/mqtt.min.js" ]; then
    echo "browser: $VENDOR_DIR/mqtt.min.js present"
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq --no-install-recommends npm >/dev/null || true
    fi
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "browser: npm missing; cannot vendor the mqtt browser bundle"
    exit 0
fi
mkdir -p "$NPM_DIR" "$VENDOR_DIR"
if npm install --silent --no-audit --no-fund --prefix "$NPM_DIR" "mqtt@$MQTT_VERSION" >/dev/null 2>&1 \
        && [ -s "$NPM_DIR/node_modules/mqtt/dist/mqtt.min.js" ]; then
    cp "$NPM_DIR/node_modules/mqtt/dist/mqtt.min.js" "$VENDOR_DIR/mqtt.min.js"
    cp "$NPM_DIR/node_modules/mqtt/LICENSE.md" "$VENDOR_DIR/mqtt.LICENSE.md" 2>/dev/null || true
    echo "browser: vendored mqtt@$(node -p "require('./$NPM_DIR/node_modules/mqtt/package.json').version" 2>/dev/null) into $VENDOR_DIR"
else
    echo "browser: npm install mqtt@$MQTT_VERSION failed; the browser test will skip (or fail under CI=true)"
fi
exit 0
