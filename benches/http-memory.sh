#!/usr/bin/env bash
# http-memory.sh: the HTTP API's memory figures, from the server's VmRSS
# (/proc/<pid>/status), loopback only.
#
#   1. idle keep-alive HTTP connections: CONNS connections that each did one
#      request (GET /health) and stay open; (RSS delta) / CONNS  target <= 2 KiB
#   2. idle sessions: SESSIONS sessions created (POST /v1/sessions, pipelined
#      on one connection); (RSS delta) / SESSIONS                target <= 512 B
#   3. idle SSE streams: STREAMS GET /v1/signals?pattern=x streams that got
#      their head and ":ok"; RSS delta for all of them            target <= 24 MiB
#
# Each figure gets a fresh server per run; the baseline is taken after one
# warm-up request of the same kind, so one-time allocations (the route table,
# the first session's timers) are not counted per item. Median of RUNS runs.
# The server runs without caps (--max-connections 0 --http-max-sessions 0
# --http-max-sessions-per-ip 0 --http-max-connections-per-ip 0) and with a
# long session idle timeout, so no session expires while it is measured.
#
# Installs nothing: needs python3 and coreutils `timeout`; builds dflockd
# (cargo build --release) if it is missing. Stops everything it started, also
# on Ctrl-C / SIGTERM. Raises `ulimit -n` to the hard limit (it needs about
# CONNS + 100 descriptors in the server and in the client).
#
# Environment:
#   DFLOCKD_BIN   dflockd binary [${CARGO_TARGET_DIR:-target}/release/dflockd]
#   RUNS=3        runs per figure (median taken)
#   CONNS=10000   idle keep-alive connections
#   SESSIONS=100000 idle sessions
#   STREAMS=10000 idle SSE streams
#   ONLY          space-separated figures to run: conns sessions streams
#
# Exit status: 0 when everything ran (missed targets are reported, not
# fatal); 1 a measurement failed; 2 missing tools or too few descriptors;
# 130/143 interrupted.

set -Eeuo pipefail

RUNS=${RUNS:-3}
CONNS=${CONNS:-10000}
SESSIONS=${SESSIONS:-100000}
STREAMS=${STREAMS:-10000}
ONLY=${ONLY:-conns sessions streams}
HOST=127.0.0.1

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
DFLOCKD_BIN=${DFLOCKD_BIN:-${CARGO_TARGET_DIR:-target}/release/dflockd}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/http-memory.XXXXXX")
D_PID=  # the server running now
CHILD=  # the python3 client running now
ROWS=()

die() {
    echo "http-memory: $1" >&2
    exit "${2:-1}"
}

# Stop the server: SIGTERM (it drains), SIGKILL after 3 s.
stop_server() {
    [[ -n $D_PID ]] || return 0
    local i
    kill -TERM "$D_PID" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do
        kill -0 "$D_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$D_PID" 2>/dev/null || true
    wait "$D_PID" 2>/dev/null || true
    D_PID=
}

cleanup() {
    if [[ -n $CHILD ]]; then
        kill -TERM "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v python3 >/dev/null || die "python3 not found" 2
command -v timeout >/dev/null || die "coreutils timeout not found" 2
if [[ ! -x $DFLOCKD_BIN ]]; then
    echo "== building $DFLOCKD_BIN"
    cargo build --release --bin dflockd
fi

want=$((CONNS > STREAMS ? CONNS : STREAMS))
want=$((want + 100))
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(($(ulimit -n) >= want)) || die "ulimit -n is $(ulimit -n); $want descriptors needed (lower CONNS/STREAMS or raise the hard limit)" 2

# Start dflockd on an ephemeral TCP port and a free HTTP port (--http-port 0
# means "off", so a port the kernel just handed out is passed; on a clash the
# server exits and another is tried). Sets D_PID and H_PORT.
start_server() {
    local try line
    for try in 1 2 3 4 5; do
        H_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        local cmd=("$DFLOCKD_BIN" --host "$HOST" --port 0 --http-port "$H_PORT"
            --max-connections 0 --http-max-sessions 0 --http-max-sessions-per-ip 0
            --http-max-connections-per-ip 0 --http-session-idle-timeout 86400)
        [[ $try == 1 && -z ${SHOWN_CMD:-} ]] && { printf '$'; printf ' %q' "${cmd[@]}"; printf '\n'; SHOWN_CMD=1; }
        RUST_LOG=info "${cmd[@]}" </dev/null >/dev/null 2>"$WORK/server.log" &
        D_PID=$!
        for _ in $(seq 100); do
            grep -q "listening on .* (http)" "$WORK/server.log" && return 0
            kill -0 "$D_PID" 2>/dev/null || break
            sleep 0.05
        done
        stop_server
    done
    cat "$WORK/server.log" >&2
    die "dflockd did not start"
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

cat >"$WORK/open.py" <<'PY'
"""Open idle HTTP items against dflockd and report its RSS before and after.

usage: open.py conns|sessions|streams PORT PID COUNT
prints: COUNT BASELINE_KB LOADED_KB
"""
import os, socket, sys, time

kind, port, pid, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ADDR = ("127.0.0.1", port)

def rss_kb():
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))

def settled_rss():
    # Give the server's loop a moment to finish and the allocator to settle.
    time.sleep(0.5)
    return rss_kb()

def connect():
    s = socket.create_connection(ADDR, timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

class Reader:
    """Whole HTTP/1.1 responses (Content-Length framing, which dflockd uses)."""
    def __init__(self, sock):
        self.sock, self.buf = sock, b""
    def fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            sys.exit("dflockd closed a connection")
        self.buf += data
    def response(self):
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for l in lines[1:]:
            name, _, value = l.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            self.fill()
            head, _, rest = self.buf.partition(b"\r\n\r\n")
        self.buf = rest[length:]
        return status, rest[:length]

HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
SESSION = b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
STREAM = b"GET /v1/signals?pattern=x HTTP/1.1\r\nHost: x\r\n\r\n"

def one_request(sock, req):
    sock.sendall(req)
    status, body = Reader(sock).response()
    if status != 200:
        sys.exit(f"{req.split()[1].decode()} answered {status} {body!r}")

def open_stream():
    s = connect()
    s.sendall(STREAM)
    buf = b""
    while not buf.endswith(b":ok\n\n"):
        data = s.recv(4096)
        if not data:
            sys.exit("dflockd closed a stream")
        buf += data
    if not buf.startswith(b"HTTP/1.1 200 "):
        sys.exit(f"stream refused: {buf[:200]!r}")
    return s

keep = []
if kind == "conns":
    warm = connect()
    one_request(warm, HEALTH)
    warm.close()
    base = settled_rss()
    for _ in range(count):
        s = connect()
        one_request(s, HEALTH)
        keep.append(s)
elif kind == "sessions":
    s = connect()
    r = Reader(s)
    one_request(s, SESSION)  # warm-up: the sweep timer, the first table slots
    base = settled_rss()
    made, batch = 0, 1000
    while made < count:
        k = min(batch, count - made)
        s.sendall(SESSION * k)
        for _ in range(k):
            status, body = r.response()
            if status != 200 or b'"session_id"' not in body:
                sys.exit(f"session {made} refused: {status} {body!r}")
            made += 1
    keep.append(s)
elif kind == "streams":
    keep.append(open_stream())
    base = settled_rss()
    for _ in range(count):
        keep.append(open_stream())
else:
    sys.exit(f"unknown kind {kind}")
loaded = settled_rss()
print(count, base, loaded)
for s in keep:
    s.close()
PY

# measure KIND COUNT: RUNS runs, each on a fresh server; sets PER_RUN (deltas in kB).
measure() {
    local kind=$1 count=$2 i n base loaded status
    PER_RUN=()
    for ((i = 1; i <= RUNS; i++)); do
        start_server
        [[ $i == 1 ]] && echo "$ python3 open.py $kind <port> <pid> $count   (open.py is a heredoc in benches/http-memory.sh)"
        timeout --kill-after=5 600 python3 "$WORK/open.py" "$kind" "$H_PORT" "$D_PID" "$count" >"$WORK/out" &
        CHILD=$!
        status=0
        wait "$CHILD" || status=$?
        CHILD=
        stop_server
        ((status == 0)) || die "open.py $kind failed (status $status)"
        read -r n base loaded <"$WORK/out"
        PER_RUN+=("$((loaded - base))")
        echo "   run $i: $n $kind: RSS $base kB -> $loaded kB (+$((loaded - base)) kB)"
    done
}

verdict() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b) ? "yes" : "NO" }'; }

for what in $ONLY; do
    case $what in
    conns)
        echo "== 1. $CONNS idle keep-alive HTTP connections, one GET /health each"
        measure conns "$CONNS"
        d=$(median "${PER_RUN[@]}")
        per=$(awk -v d="$d" -v n="$CONNS" 'BEGIN { printf "%.0f", d * 1024 / n }')
        ROWS+=("idle keep-alive connection|$per bytes (+$d kB / $CONNS)|<= 2048 bytes|$(verdict "$per" 2048)")
        ;;
    sessions)
        echo "== 2. $SESSIONS idle sessions"
        measure sessions "$SESSIONS"
        d=$(median "${PER_RUN[@]}")
        per=$(awk -v d="$d" -v n="$SESSIONS" 'BEGIN { printf "%.0f", d * 1024 / n }')
        ROWS+=("idle session|$per bytes (+$d kB / $SESSIONS)|<= 512 bytes|$(verdict "$per" 512)")
        ;;
    streams)
        echo "== 3. $STREAMS idle SSE streams (GET /v1/signals?pattern=x)"
        measure streams "$STREAMS"
        d=$(median "${PER_RUN[@]}")
        mib=$(awk -v d="$d" 'BEGIN { printf "%.1f", d / 1024 }')
        per=$(awk -v d="$d" -v n="$STREAMS" 'BEGIN { printf "%.0f", d * 1024 / n }')
        ROWS+=("$STREAMS idle SSE streams|$mib MiB (+$d kB, $per bytes each)|<= 24 MiB|$(verdict "$mib" 24)")
        ;;
    *) die "unknown figure $what (conns sessions streams)" 2 ;;
    esac
done

echo
echo "== results (median of $RUNS runs, $(date -u +%FT%H:%MZ), $DFLOCKD_BIN)"
printf '%-28s %-36s %-16s %s\n' figure measured target met
for r in "${ROWS[@]}"; do
    IFS='|' read -r a b c d <<<"$r"
    printf '%-28s %-36s %-16s %s\n' "$a" "$b" "$c" "$d"
done
