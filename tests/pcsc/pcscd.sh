#!/bin/sh
# Start or stop a pcscd for the test run, with the vsmartcard vpcd reader.
#   pcscd.sh start   start pcscd in the background unless one already runs; wait until
#                    its socket is up and vpcd listens on TCP 35963; pidfile /tmp/gw-test-pcscd.pid
#   pcscd.sh stop    stop the pcscd this script started (never one it did not start)
#   pcscd.sh status  exit 0 when a pcscd with the vpcd reader is ready
# vpcd is configured by Debian in /etc/reader.conf.d/vpcd (CHANNELID 0x8C7B = port 35963;
# a second slot on 35964). pcscd reads reader.conf.d at start-up only, so it must be
# (re)started after vsmartcard-vpcd is installed. Run as root (pcscd needs /run/pcscd).
set -u
PIDFILE=${GW_PCSCD_PIDFILE:-/tmp/gw-test-pcscd.pid}
LOG=${GW_PCSCD_LOG:-/tmp/gw-test-pcscd.log}
SOCKET=${GW_PCSCD_SOCKET:-/run/pcscd/pcscd.comm}
PORT=35963

listening() {
    if command -v ss >/dev/null 2>&1; then
        ss -ltn 2>/dev/null | grep -q ":$PORT "
    else
        grep -qi ":$(printf '%04X' $PORT) 00000000:0000 0A" /proc/net/tcp /proc/net/tcp6 2>/dev/null
    fi
}

ready() { [ -S "$SOCKET" ] && listening; }

# vpcd's card ports listening anywhere but loopback (0.0.0.0, ::, a real address): a network
# peer could then play the smart card (issue 8). Without ss, /proc/net/tcp[6] (hex addresses).
exposed() {
    if command -v ss >/dev/null 2>&1; then
        ss -ltnH 2>/dev/null | awk '{print $4}' | grep -E ":($PORT|$((PORT + 1)))\$" \
            | grep -vqE '^(127\.[0-9.]+|\[::1\]|\[::ffff:127\.[0-9.]+\]):'
    else
        for p in $PORT $((PORT + 1)); do
            hex=$(printf '%04X' "$p")
            grep -iE ":$hex [0-9A-F]+:0000 0A" /proc/net/tcp 2>/dev/null | grep -viqE '^ *[0-9]+: [0-9A-F]{6}7F:' && return 0
            grep -iE ":$hex [0-9A-F]+:0000 0A" /proc/net/tcp6 2>/dev/null \
                | grep -viqE '^ *[0-9]+: (0{31}1|0{16}FFFF0000[0-9A-F]{6}7F):' && return 0
        done
        return 1
    fi
}

running_pid() {
    for f in "$PIDFILE" /run/pcscd/pcscd.pid; do
        if [ -f "$f" ]; then
            pid=$(cat "$f" 2>/dev/null)
            if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
                echo "$pid"; return 0
            fi
        fi
    done
    return 1
}

case "${1:-}" in
start)
    if ready && running_pid >/dev/null; then
        if exposed; then
            echo "pcscd: a pcscd runs (pid $(running_pid)) with vpcd listening beyond 127.0.0.1; stop it" \
                 "(systemctl stop pcscd.socket pcscd) and run again: this script starts one on loopback" >&2
            exit 1
        fi
        echo "pcscd: already running (pid $(running_pid))"
        exit 0
    fi
    PCSCD=$(command -v pcscd || echo /usr/sbin/pcscd)
    if [ ! -x "$PCSCD" ]; then
        echo "pcscd: not installed (run tests/pcsc/install.sh)" >&2
        exit 1
    fi
    if [ ! -f /etc/reader.conf.d/vpcd ]; then
        echo "pcscd: vsmartcard-vpcd is not installed (no /etc/reader.conf.d/vpcd)" >&2
        exit 1
    fi
    mkdir -p /run/pcscd 2>/dev/null || true
    # -- vpcd on loopback only (issue 8) ---------------------------------------------------
    # Debian's vpcd binds its card ports on every interface; bind_loopback.so (preloaded)
    # turns that into 127.0.0.1, so no network peer can act as the smart card.
    SHIM=$(cd "$(dirname "$0")" && pwd)/build/bind_loopback.so
    if [ ! -f "$SHIM" ]; then
        mkdir -p "$(dirname "$SHIM")"
        cc -shared -fPIC -O2 -o "$SHIM" "$(dirname "$0")/bind_loopback.c" -ldl 2>/dev/null || {
            echo "pcscd: cannot build $SHIM (needs cc; run tests/pcsc/install.sh); not starting vpcd on every interface" >&2
            exit 1
        }
    fi
    # -- end of the vpcd listen configuration -----------------------------------------------
    # -f: stay in the foreground (so the pid is ours), backgrounded here. No -a: APDUs carry keys.
    LD_PRELOAD="$SHIM" "$PCSCD" -f >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    i=0
    while [ $i -lt 100 ]; do
        if ready; then
            if exposed; then
                echo "pcscd: vpcd listens beyond 127.0.0.1 despite the loopback shim; stopping it" >&2
                kill "$(cat "$PIDFILE")" 2>/dev/null
                rm -f "$PIDFILE"
                exit 1
            fi
            echo "pcscd: started (pid $(cat "$PIDFILE"), log $LOG)"
            exit 0
        fi
        if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
            echo "pcscd: exited at start-up; log $LOG:" >&2
            tail -n 5 "$LOG" >&2
            rm -f "$PIDFILE"
            exit 1
        fi
        sleep 0.1
        i=$((i + 1))
    done
    echo "pcscd: not ready after 10 s; log $LOG" >&2
    exit 1
    ;;
stop)
    if [ -f "$PIDFILE" ]; then
        pid=$(cat "$PIDFILE")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            i=0
            while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
            if kill -0 "$pid" 2>/dev/null; then
                kill -9 "$pid" 2>/dev/null
                sleep 0.2
            fi
            # A dying pcscd must not look "ready" to the next test session: wait until the
            # vpcd port is closed and drop a socket file a killed pcscd left behind.
            i=0
            while listening && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
            kill -0 "$pid" 2>/dev/null || rm -f "$SOCKET"
            echo "pcscd: stopped (pid $pid)"
        fi
        rm -f "$PIDFILE"
    else
        echo "pcscd: not started by this script"
    fi
    ;;
status)
    if ready; then echo "pcscd: ready"; exit 0; fi
    echo "pcscd: not ready"; exit 1
    ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
