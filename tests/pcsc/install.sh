#!/bin/sh
# Install the system packages the PC/SC end-to-end tests need (Debian/Ubuntu):
#   pcscd            the PC/SC daemon
#   libpcsclite-dev  headers, to build pyscard from source when no wheel fits
#   vsmartcard-vpcd  the virtual reader driver (/etc/reader.conf.d/vpcd, TCP port 35963)
#   swig             pyscard's build dependency
#   gcc, libc6-dev   to build bind_loopback.so, which keeps vpcd on 127.0.0.1 (see pcscd.sh)
# Idempotent: installs only what is missing, and only when run as root with apt-get.
# Always exits 0 elsewhere (the tests then skip, or fail loudly under CI=true).
set -u
PKGS="pcscd libpcsclite-dev vsmartcard-vpcd swig gcc libc6-dev"

build_shim() {
    # vpcd listens on every interface; pcscd.sh preloads this shim to keep it on loopback (issue 8).
    here=$(dirname "$0")
    if [ ! -f "$here/build/bind_loopback.so" ] || [ "$here/bind_loopback.c" -nt "$here/build/bind_loopback.so" ]; then
        mkdir -p "$here/build" && cc -shared -fPIC -O2 -Wall -o "$here/build/bind_loopback.so" "$here/bind_loopback.c" -ldl \
            && echo "pcsc: built $here/build/bind_loopback.so"
    fi
}

sh "$(dirname "$0")/../apt-install.sh" pcsc $PKGS
build_shim || true
