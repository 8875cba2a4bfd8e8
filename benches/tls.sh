#!/usr/bin/env bash
# tls.sh: the TLS figures of the README, plain text and TLS side by side.
#
# Needs openssl, python3 and the release binaries (cargo build --release
# --bin dflockd --bin dflock-load). Makes an ECDSA P-256 CA and server
# certificate in a temporary directory, starts one plain and one TLS dflockd
# on 127.0.0.1 ephemeral ports, and measures:
#   1. lock + release pairs/s, 100 persistent connections (dflock-load lock)
#   2. new connections per second: plain connects vs TLS 1.3 handshakes
#      (dflock-load connect: connect, [handshake,] ping, close)
#      Both with the servers' CPU per op (/proc utime+stime), which the
#      machine's other load disturbs less than the rates.
#   3. idle RSS right after start, with TLS configured
#   4. RSS per idle TLS connection, IDLE_CONNS of them (each did one ping)
#   5. the stripped binary's size
# Every dflock-load command is printed as run. Stops what it started.
#
# Environment: DURATION=10 (measured seconds per run, after 2 s warm-up),
# RUNS=1 (interleaved plain/TLS pairs), IDLE_CONNS=10000, ONLY="pairs
# connects idle" (the workloads to run; all when unset).

set -Eeuo pipefail
DURATION=${DURATION:-10}
RUNS=${RUNS:-1}
IDLE_CONNS=${IDLE_CONNS:-10000}
ONLY=${ONLY:-pairs connects idle}
want() { [[ " $ONLY " == *" $1 "* ]]; }
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release
# shellcheck source=benches/lib.sh
. "$REPO/benches/lib.sh"
bench_workdir tls
need tls.sh openssl python3 "$BIN/dflockd" "$BIN/dflock-load"
cd "$WORK"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout ca.key -out ca.pem -days 30 -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
    -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth') \
    -out server.pem 2>/dev/null

# start NAME ARGS...: start dflockd, wait for its port; sets PORT and PID
start() {
    local name=$1
    shift
    : >"$name.log"
    "$BIN/dflockd" --port 0 --read-timeout 0 "$@" 2>"$name.log" &
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq 100); do
        PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\) (tcp).*/\1/p' "$name.log")
        [[ -n $PORT ]] && return
        sleep 0.05
    done
    echo "tls.sh: $name did not start" >&2
    exit 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk "/^$2:/"'{print $2}' "/proc/$1/status"; }

start plain
PLAIN_PID=$PID PLAIN_PORT=$PORT
start tls --tls-cert server.pem --tls-key server.key
TLS_PID=$PID TLS_PORT=$PORT
sleep 0.5
echo "== idle RSS after start: plain $(rss_kb "$PLAIN_PID" VmRSS) kB; with TLS configured $(rss_kb "$TLS_PID" VmRSS) kB (RssAnon $(rss_kb "$TLS_PID" RssAnon) kB, RssFile $(rss_kb "$TLS_PID" RssFile) kB)"

# load PID ARGS...: run dflock-load, print its report and the server's CPU per op
load() {
    local pid=$1
    shift
    local before after ops
    before=$(cpu_ticks "$pid")
    "$BIN/dflock-load" "$@" --json >run.json
    after=$(cpu_ticks "$pid")
    python3 - "$before" "$after" "$(getconf CLK_TCK)" <<'EOF'
import json, sys
r = json.load(open("run.json"))
before, after, hz = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
# The server also worked during the warm-up: count those ops too (rate x warm-up).
ops_all = r["ops"] + r["ops_per_sec"] * r["warmup_s"]
print(f"$ {r['command']}")
print(f"   {r['ops_per_sec']:.0f} ops/s, p50 {r['p50_us']} us, p99 {r['p99_us']} us, "
      f"errors {r['errors']}, timeouts {r['timeouts']}, client CPU {r['cpu_us_per_op']} us/op, "
      f"server CPU {(after - before) / hz * 1e6 / max(ops_all, 1):.1f} us/op")
EOF
}

want pairs && echo "== lock + release pairs/s, 100 persistent connections"
want pairs && for _ in $(seq "$RUNS"); do
    load "$PLAIN_PID" lock --server "127.0.0.1:$PLAIN_PORT" -c 100 -d "$DURATION" --warmup 2
    load "$TLS_PID" lock --server "localhost:$TLS_PORT" --tls-ca ca.pem -c 100 -d "$DURATION" --warmup 2
done
want connects && echo "== a new connection per op: plain connects/s vs TLS 1.3 handshakes/s (ECDSA P-256, X25519)"
want connects && for _ in $(seq "$RUNS"); do
    load "$PLAIN_PID" connect --server "127.0.0.1:$PLAIN_PORT" -c 4 -d "$DURATION" --warmup 2
    load "$TLS_PID" connect --server "localhost:$TLS_PORT" --tls-ca ca.pem -c 4 -d "$DURATION" --warmup 2
done

want idle && echo "== $IDLE_CONNS idle TLS connections"
want idle && start idle --tls-cert server.pem --tls-key server.key
want idle && python3 - "$PID" "$PORT" "$IDLE_CONNS" <<'EOF'
import socket, ssl, sys, threading, time
pid, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rss = lambda: int(next(l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:")))
ctx = ssl.create_default_context(cafile="ca.pem")
before, conns, lock = rss(), [], threading.Lock()
def opener(count):
    mine = []
    for _ in range(count):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
        s.sendall(b"ping\n_\n\n")
        assert s.recv(16) == b"ok\n"
        mine.append(s)
    with lock:
        conns.extend(mine)
threads = [threading.Thread(target=opener, args=(n // 4,)) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
time.sleep(2)
after = rss()
print(f"   RSS {before} kB -> {after} kB with {len(conns)} idle TLS connections: "
      f"{(after - before) * 1024 / len(conns):.0f} bytes per connection")
EOF
echo "== stripped release binary: $(stat -c %s "$BIN/dflockd") bytes"
