#!/usr/bin/env bash
# hostile.sh: hostile clients at full size (issue 11), as a benchmark script,
# not a timed test.
#
#   1. TRICKLE connections (1,000) each send one byte per second of a request
#      that never ends. Every one must be closed at its request deadline
#      (--read-timeout, 23 s by default, from its first byte), while a normal
#      client (dflock-load lock, -c 10) keeps its lock + release p99 within
#      2x the p99 it had on the same server unloaded, just before.
#   2. STALLED TLS connections (1,000) stop mid-handshake (half after a record
#      header promising 512 bytes, half before sending anything). Every one
#      must be closed at the 10 s handshake deadline.
#
# Needs openssl, python3 and the binaries (BIN, default target/release; the
# ci profile's target/ci works too). Prints every dflock-load command as run
# and exits 1 if a check fails. Stops what it started.
#
# Environment: TRICKLE=1000, STALLED=1000, READ_TIMEOUT=23, LOAD_S=12 (the
# measured seconds of each dflock-load run; must end before the deadline).

set -Eeuo pipefail
TRICKLE=${TRICKLE:-1000}
STALLED=${STALLED:-1000}
READ_TIMEOUT=${READ_TIMEOUT:-23}
LOAD_S=${LOAD_S:-12}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release}
# shellcheck source=benches/lib.sh
. "$REPO/benches/lib.sh"
bench_workdir hostile
need hostile.sh openssl python3 "$BIN/dflockd" "$BIN/dflock-load"
((LOAD_S + 4 < READ_TIMEOUT)) || { echo "hostile.sh: LOAD_S must end before READ_TIMEOUT" >&2; exit 2; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cd "$WORK"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout server.key -out server.pem -days 30 -subj "/CN=localhost" \
    -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' 2>/dev/null

# start NAME ARGS...: start dflockd, wait for its port; sets PORT and PID
start() {
    local name=$1
    shift
    : >"$name.log"
    "$BIN/dflockd" --port 0 "$@" 2>"$name.log" &
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq 100); do
        PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\) (tcp).*/\1/p' "$name.log")
        [[ -n $PORT ]] && return
        sleep 0.05
    done
    echo "hostile.sh: $name did not start" >&2
    exit 1
}

# p99 ARGS...: run dflock-load lock, print its report, echo nothing else; sets P99
p99() {
    local cmd=("$BIN/dflock-load" lock --server "127.0.0.1:$PORT" -c 10 -d "$LOAD_S" --warmup 1 --json)
    echo "\$ ${cmd[*]}"
    "${cmd[@]}" >run.json
    P99=$(python3 -c 'import json; r = json.load(open("run.json")); print(r["p99_us"])')
    python3 -c 'import json; r = json.load(open("run.json")); print("   %.0f pairs/s, p50 %s us, p99 %s us, errors %s" % (r["ops_per_sec"], r["p50_us"], r["p99_us"], r["errors"]))'
}

# watch_closes MODE N DEADLINE: open N connections, feed them per MODE, and
# report when the server closed each (seconds since its first byte or, for
# a stall, since connect). Writes closes.txt ("min max count").
watch_closes() {
    python3 - "$PORT" "$@" <<'EOF' &
import selectors, socket, sys, time
port, mode, n, deadline = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
request = b"l\n" + b"k" * 250           # never complete: no LF after the key
sel = selectors.DefaultSelector()
socks, started, lived = [], {}, []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setblocking(False)
    if mode == "stall" and i % 2 == 0:
        s.send(bytes([0x16, 0x03, 0x01, 0x02, 0x00]))   # a record header, then nothing
    started[s] = time.monotonic()
    sel.register(s, selectors.EVENT_READ)
    socks.append(s)
sent = 0
next_tick = time.monotonic()
give_up = time.monotonic() + deadline + 30
open_ = set(socks)
while open_ and time.monotonic() < give_up:
    now = time.monotonic()
    if mode == "trickle" and now >= next_tick and sent < len(request):
        for s in list(open_):
            try:
                s.send(request[sent:sent + 1])
                if sent == 0:
                    started[s] = time.monotonic()
            except OSError:
                pass
        sent += 1
        next_tick += 1.0
    for key, _ in sel.select(timeout=0.05):
        s = key.fileobj
        try:
            data = s.recv(4096)
        except BlockingIOError:
            continue
        except OSError:
            data = b""
        if not data:
            lived.append(time.monotonic() - started[s])
            sel.unregister(s)
            open_.discard(s)
            s.close()
with open("closes.txt", "w") as f:
    f.write(f"{min(lived, default=0):.2f} {max(lived, default=0):.2f} {len(lived)}\n")
EOF
    WATCHER=$!
}

FAILED=0
check() { # check WHAT MIN MAX COUNT N DEADLINE
    local what=$1 min=$2 max=$3 count=$4 n=$5 deadline=$6
    echo "   $what: $count of $n closed, after $min .. $max s (deadline $deadline s)"
    python3 -c "import sys; sys.exit(0 if $count == $n and $min >= $deadline - 0.5 and $max <= $deadline + 3 else 1)" ||
        { echo "   FAILED: $what"; FAILED=1; }
}

echo "== 1. $TRICKLE connections trickling a byte per second, --read-timeout $READ_TIMEOUT"
start trickle --read-timeout "$READ_TIMEOUT" --max-locks 100000
p99
UNLOADED=$P99
watch_closes trickle "$TRICKLE" "$READ_TIMEOUT"
sleep 2 # all connected and trickling
p99
LOADED=$P99
wait "$WATCHER"
read -r MIN MAX COUNT <closes.txt
check "trickled connections" "$MIN" "$MAX" "$COUNT" "$TRICKLE" "$READ_TIMEOUT"
echo "   lock + release p99: unloaded $UNLOADED us, with the trickle $LOADED us ($(python3 -c "print(f'{$LOADED / max($UNLOADED, 1):.2f}')")x; limit 2x)"
python3 -c "import sys; sys.exit(0 if $LOADED <= 2 * $UNLOADED else 1)" || { echo "   FAILED: p99"; FAILED=1; }

echo "== 2. $STALLED TLS connections stalled mid-handshake"
start stalled --tls-cert server.pem --tls-key server.key
watch_closes stall "$STALLED" 10
wait "$WATCHER"
read -r MIN MAX COUNT <closes.txt
check "stalled handshakes" "$MIN" "$MAX" "$COUNT" "$STALLED" 10
exit "$FAILED"
