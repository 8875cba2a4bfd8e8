#!/usr/bin/env bash
# compare-redis.sh: measure dflockd against Redis on this machine, loopback only.
#
# Installs nothing. Needs redis-server, redis-benchmark, python3 and coreutils
# `timeout` on PATH; builds dflockd and dflock-load (cargo build --release) if
# they are missing. Starts every server itself on 127.0.0.1 ephemeral ports,
# runs the workloads of the performance table, prints the figures, ratios and
# targets, and stops everything it started (also on Ctrl-C / SIGTERM).
#
# Every figure is the median of RUNS runs (start-up time: of STARTS starts).
#
# Environment:
#   DFLOCKD_BIN      dflockd binary      [${CARGO_TARGET_DIR:-target}/release/dflockd]
#   DFLOCK_LOAD_BIN  dflock-load binary  [${CARGO_TARGET_DIR:-target}/release/dflock-load]
#   STATIC_BIN       a static-pie dflockd (the small-host build of the README),
#                    measured in workload 7 beside the default build; built into
#                    ${CARGO_TARGET_DIR:-target}/static when unset; STATIC_BIN=none skips it
#   RUNS=3           runs per figure (median taken)
#   DURATION=5       measured seconds per dflock-load run (after 1 s warm-up);
#                    redis-benchmark request counts are sized to last about as long
#   STARTS=5         start-ups timed for the start-up figure
#   IDLE_CONNS=10000 idle connections opened in workload 8
#   HELD_LOCKS=1000000 locks held in workload 9
#   ONLY             space-separated workloads to run, e.g. ONLY="held_locks idle_conns"
#                    (idle_rss idle_conns held_locks startup lock_vs_set cpu_per_pair
#                    contended pipeline pubsub); all when unset
#
# Exit status: 0 when everything ran (missed targets are reported, not fatal);
# 1 when a workload failed (e.g. dflock-load saw errors); 2 missing tools or
# binaries; 130/143 interrupted.

set -Eeuo pipefail

RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
STARTS=${STARTS:-5}
IDLE_CONNS=${IDLE_CONNS:-10000}
HELD_LOCKS=${HELD_LOCKS:-1000000}
ONLY=${ONLY:-}
HOST=127.0.0.1

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
TARGET_DIR=${CARGO_TARGET_DIR:-target}
DFLOCKD_BIN=${DFLOCKD_BIN:-}
DFLOCK_LOAD_BIN=${DFLOCK_LOAD_BIN:-}
STATIC_BIN=${STATIC_BIN:-}

# ---------------------------------------------------------------- plumbing --

WORK=$(mktemp -d "${TMPDIR:-/tmp}/compare-redis.XXXXXX")
PIDS=()     # every server this script started and has not stopped yet
CHILD=      # the client (dflock-load, redis-benchmark, python3) running now
ROWS=()     # result rows, tab-separated, printed as the table at the end
# Hard time limit of any one client run: a safety net only, every workload
# bounds itself (durations, request counts, socket timeouts).
LIMIT=$((DURATION * 4 + 300))

# die MESSAGE [STATUS]
die() {
    echo "compare-redis: $1" >&2
    exit "${2:-1}"
}

# Stop one process we started: SIGTERM first (dflockd drains, Redis exits),
# SIGKILL if it is still there after 3 s so the script never hangs here.
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local keep=() p
    for p in "${PIDS[@]}"; do
        [[ $p == "$pid" ]] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

cleanup() {
    local pid
    if [[ -n $CHILD ]]; then
        kill -TERM "$CHILD" 2>/dev/null || true # `timeout` passes it on
        wait "$CHILD" 2>/dev/null || true
    fi
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'echo "compare-redis: command failed at line $LINENO" >&2' ERR

# Echo a command (shell-quoted, so it can be pasted), then run it.
show() {
    printf '$'
    printf ' %q' "$@"
    printf '\n'
}

# run OUT CMD...: echo CMD, run it under the time limit, stdout to OUT.
# It runs in the background and the shell `wait`s for it: a trapped
# INT/TERM interrupts `wait` at once, where a foreground command would be
# waited out first.
run() {
    show "${@:2}"
    run_quietly "$@"
}

run_quietly() {
    local out=$1
    shift
    timeout --kill-after=5 "$LIMIT" "$@" </dev/null >"$out" &
    CHILD=$!
    local status=0
    wait "$CHILD" || status=$?
    CHILD=
    if ((status != 0)); then
        cat "$out" >&2
        ((status == 124)) && die "$1 ran over the ${LIMIT} s limit"
        die "$1 exited with status $status"
    fi
}

# run_py NAME OUT ARGS... <<'PY': save the Python script on stdin as
# NAME.py in the work directory and run it like `run` does.
run_py() {
    local script="$WORK/$1.py" out=$2
    shift 2
    cat >"$script"
    show python3 "$script" "$@"
    echo "  ($(basename "$script") is a heredoc in benches/compare-redis.sh)"
    run_quietly "$out" python3 "$script" "$@"
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# calc EXPR A B: floating-point arithmetic on a and b (awk, no bc needed).
calc() {
    awk -v a="$2" -v b="${3:-0}" "BEGIN { x = $1; printf \"%.6g\n\", x }"
}

# num DECIMALS VALUE: a figure as printed in the table.
num() {
    printf "%.${1}f" "$2"
}

# verdict VALUE OP LIMIT -> PASS or MISS
verdict() {
    if awk -v v="$1" -v l="$3" "BEGIN { exit !(v $2 l) }"; then echo PASS; else echo MISS; fi
}

# row WORKLOAD DFLOCKD REDIS RATIO TARGET RESULT
row() {
    local IFS=$'\t'
    ROWS+=("$*")
}

# jget FILE KEY: one field of dflock-load's JSON report.
jget() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# csv_field FILE TEST COLUMN: a column of redis-benchmark --csv output
# ("test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",
#  "p95_latency_ms","p99_latency_ms","max_latency_ms").
csv_field() {
    awk -F'","' -v t="\"$2" -v c="$3" '$1 == t { gsub(/"/, "", $c); print $c }' "$1"
}

rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# utime + stime of a process (all threads), in clock ticks. Fields 14 and 15
# of /proc/PID/stat; cut after the ")" closing the command name, where the
# fields are counted from 3.
cpu_ticks() {
    local stat f
    stat=$(<"/proc/$1/stat")
    read -r -a f <<<"${stat##*) }"
    echo $((f[11] + f[12]))
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_dflockd [EXTRA ARGS]: start dflockd on an ephemeral port; sets
# D_PID and D_PORT. The port comes from its "listening on HOST:PORT (tcp)" line.
start_dflockd() {
    local log="$WORK/dflockd.$RANDOM.log" i
    show "$DFLOCKD_BIN" --port 0 --log-level info --max-locks 2000000 "$@"
    "$DFLOCKD_BIN" --port 0 --log-level info --max-locks 2000000 "$@" </dev/null >/dev/null 2>"$log" &
    D_PID=$!
    PIDS+=("$D_PID")
    D_PORT=
    for ((i = 0; i < 100; i++)); do
        D_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\) (tcp).*/\1/p' "$log")
        [[ -n $D_PORT ]] && return 0
        kill -0 "$D_PID" 2>/dev/null || break
        sleep 0.05
    done
    cat "$log" >&2
    die "dflockd did not report a listening port"
}

# start_redis: start redis-server on a free loopback port, without
# persistence (dflockd keeps nothing on disk either); sets R_PID and R_PORT.
start_redis() {
    local i
    R_PORT=$(free_port)
    show redis-server --port "$R_PORT" --bind "$HOST" --save '' --appendonly no --daemonize no
    redis-server --port "$R_PORT" --bind "$HOST" --save '' --appendonly no --daemonize no \
        </dev/null >"$WORK/redis.$R_PORT.log" 2>&1 &
    R_PID=$!
    PIDS+=("$R_PID")
    for ((i = 0; i < 100; i++)); do
        # Bash's /dev/tcp: a connect probe without redis-cli.
        if (exec 3<>"/dev/tcp/$HOST/$R_PORT") 2>/dev/null; then return 0; fi
        kill -0 "$R_PID" 2>/dev/null || break
        sleep 0.05
    done
    cat "$WORK/redis.$R_PORT.log" >&2
    die "redis-server did not start"
}

# redis_requests PROBE_N ARGS... -t TEST: set REDIS_N so that a
# redis-benchmark run lasts about DURATION seconds; a short probe run gives
# the rate. Keeps the runtime predictable on any machine.
redis_requests() {
    local probe_n=$1 rps
    shift
    run "$WORK/probe.csv" redis-benchmark -h "$HOST" -p "$R_PORT" "$@" -n "$probe_n" --csv
    rps=$(csv_field "$WORK/probe.csv" "$(tr '[:lower:]' '[:upper:]' <<<"${*: -1}")" 2)
    REDIS_N=$(awk -v r="$rps" -v d="$DURATION" -v m="$probe_n" 'BEGIN { n = int(r * d); print (n > m ? n : m) }')
    echo "   probe: $rps requests/s -> -n $REDIS_N"
}

# ------------------------------------------------------------- preflight --

preflight() {
    local tool
    for tool in redis-server redis-benchmark python3 timeout awk getconf; do
        command -v "$tool" >/dev/null || die "$tool not found on PATH (this script installs nothing)" 2
    done
    # Binaries named by the caller must exist; only the default ones are built.
    if [[ -n $DFLOCKD_BIN && ! -x $DFLOCKD_BIN ]]; then
        die "DFLOCKD_BIN=$DFLOCKD_BIN is not an executable" 2
    fi
    if [[ -n $DFLOCK_LOAD_BIN && ! -x $DFLOCK_LOAD_BIN ]]; then
        die "DFLOCK_LOAD_BIN=$DFLOCK_LOAD_BIN is not an executable" 2
    fi
    DFLOCKD_BIN=${DFLOCKD_BIN:-$TARGET_DIR/release/dflockd}
    DFLOCK_LOAD_BIN=${DFLOCK_LOAD_BIN:-$TARGET_DIR/release/dflock-load}
    if [[ ! -x $DFLOCKD_BIN || ! -x $DFLOCK_LOAD_BIN ]]; then
        command -v cargo >/dev/null || die "release binaries missing and cargo not found" 2
        show cargo build --release --bin dflockd --bin dflock-load
        cargo build --release --bin dflockd --bin dflock-load || die "cargo build failed" 2
    fi

    if [[ -z $STATIC_BIN ]] && want idle_rss; then
        # The small-host build of the README: glibc linked in, no ld.so.
        local host
        host=$(rustc -vV | sed -n 's/^host: //p')
        STATIC_BIN=$TARGET_DIR/static/$host/release/dflockd
        show RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --target "$host" --bin dflockd
        RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$TARGET_DIR/static" \
            cargo build --release --target "$host" --bin dflockd || die "static build failed" 2
    fi
    if [[ $STATIC_BIN != none && ! -x $STATIC_BIN ]]; then
        die "STATIC_BIN=$STATIC_BIN is not an executable" 2
    fi

    # 10,000 connections need 10,000 descriptors in the server and in the
    # client; both inherit this shell's limit. Raise it as far as allowed.
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    CLK_TCK=$(getconf CLK_TCK)
}

# ------------------------------------------------------------- workloads --

# 1, 2 and the Redis half of 5: lock+release pairs/s and pair p99 with 100
# connections on keys of their own, against SETs from 100 connections.
# Redis CPU is sampled across its runs: -n fixes the exact number of SETs.
w_lock_vs_set() {
    echo
    echo "== 1/2/5. lock+release pairs vs Redis SET, 100 connections"
    local n i d_ops=() d_p99=() r_rps=() r_p99=() r_cpu=() t0 t1
    redis_requests 20000 -c 100 -t set
    n=$REDIS_N
    for ((i = 1; i <= RUNS; i++)); do
        run "$WORK/lock.json" "$DFLOCK_LOAD_BIN" --server "$HOST:$D_PORT" --connections 100 \
            --duration "$DURATION" --warmup 1 --json lock
        d_ops+=("$(jget "$WORK/lock.json" ops_per_sec)")
        d_p99+=("$(jget "$WORK/lock.json" p99_us)")

        t0=$(cpu_ticks "$R_PID")
        run "$WORK/set.csv" redis-benchmark -h "$HOST" -p "$R_PORT" -c 100 -t set -n "$n" -q --csv
        t1=$(cpu_ticks "$R_PID")
        r_rps+=("$(csv_field "$WORK/set.csv" SET 2)")
        r_p99+=("$(calc 'a * 1000' "$(csv_field "$WORK/set.csv" SET 7)")")
        r_cpu+=("$(calc "a / $CLK_TCK * 1e6 / b" "$((t1 - t0))" "$n")")
        echo "   run $i: dflockd ${d_ops[-1]} pairs/s p99 ${d_p99[-1]} µs;" \
            "Redis ${r_rps[-1]} SET/s p99 ${r_p99[-1]} µs, CPU ${r_cpu[-1]} µs/SET"
    done
    LOCK_PAIRS=$(median "${d_ops[@]}")
    LOCK_P99=$(median "${d_p99[@]}")
    REDIS_SET=$(median "${r_rps[@]}")
    REDIS_P99=$(median "${r_p99[@]}")
    REDIS_CPU=$(median "${r_cpu[@]}")
    local r
    r=$(calc 'a / b' "$LOCK_PAIRS" "$REDIS_SET")
    row "1 lock+release pairs/s, 100 conns" "$(num 0 "$LOCK_PAIRS")" "$(num 0 "$REDIS_SET") SET/s" "$(num 2 "$r")" ">= 1.0" "$(verdict "$r" '>=' 1.0)"
    r=$(calc 'a / b' "$LOCK_P99" "$REDIS_P99")
    row "2 p99 of a pair (µs)" "$(num 0 "$LOCK_P99")" "$(num 0 "$REDIS_P99") (SET)" "$(num 2 "$r")" "<= 2.0" "$(verdict "$r" '<=' 2.0)"
}

# 5 (dflockd half): server CPU per pair. A --rounds run gives an exact pair
# count (100 x rounds, no warm-up), sized from (1) to last about DURATION s.
w_cpu_per_pair() {
    echo
    echo "== 5. server CPU per lock+release pair (Redis: per SET, sampled in 1)"
    local rounds i t0 t1 ops cpu=()
    rounds=$(awk -v p="$LOCK_PAIRS" -v d="$DURATION" 'BEGIN { r = int(p * d / 100); print (r > 100 ? r : 100) }')
    for ((i = 1; i <= RUNS; i++)); do
        t0=$(cpu_ticks "$D_PID")
        run "$WORK/cpu.json" "$DFLOCK_LOAD_BIN" --server "$HOST:$D_PORT" --connections 100 \
            --rounds "$rounds" --json lock
        t1=$(cpu_ticks "$D_PID")
        ops=$(jget "$WORK/cpu.json" ops)
        cpu+=("$(calc "a / $CLK_TCK * 1e6 / b" "$((t1 - t0))" "$ops")")
        echo "   run $i: $ops pairs, $((t1 - t0)) ticks -> ${cpu[-1]} µs/pair"
    done
    local d r
    d=$(median "${cpu[@]}")
    r=$(calc 'a / b' "$d" "$REDIS_CPU")
    row "5 server CPU µs per pair (Redis: per SET)" "$(num 2 "$d")" "$(num 2 "$REDIS_CPU")" "$(num 2 "$r")" "<= 0.5" "$(verdict "$r" '<=' 0.5)"
}

# 3: 100 connections queueing on one key (FIFO hand-offs), relative to the
# uncontended pairs/s of (1). No Redis equivalent.
w_contended() {
    echo
    echo "== 3. contended: 100 connections on one key"
    local i ops=()
    for ((i = 1; i <= RUNS; i++)); do
        run "$WORK/cont.json" "$DFLOCK_LOAD_BIN" --server "$HOST:$D_PORT" --connections 100 \
            --duration "$DURATION" --warmup 1 --json contended
        ops+=("$(jget "$WORK/cont.json" ops_per_sec)")
        echo "   run $i: ${ops[-1]} hand-offs/s"
    done
    local d r
    d=$(median "${ops[@]}")
    r=$(calc 'a / b' "$d" "$LOCK_PAIRS")
    row "3 contended pairs/s (ratio: vs 1)" "$(num 0 "$d")" "n/a" "$(num 2 "$r")" ">= 0.5" "$(verdict "$r" '>=' 0.5)"
}

# 4: one connection, 64 incr requests in flight, against INCR with -P 64.
w_pipeline() {
    echo
    echo "== 4. pipelined incr, 1 connection, depth 64"
    local n i d=() r=()
    redis_requests 200000 -c 1 -P 64 -t incr
    n=$REDIS_N
    for ((i = 1; i <= RUNS; i++)); do
        run "$WORK/pipe.json" "$DFLOCK_LOAD_BIN" --server "$HOST:$D_PORT" --connections 1 \
            --duration "$DURATION" --warmup 1 --json pipeline --depth 64
        d+=("$(jget "$WORK/pipe.json" ops_per_sec)")
        run "$WORK/incr.csv" redis-benchmark -h "$HOST" -p "$R_PORT" -c 1 -P 64 -t incr -n "$n" --csv
        r+=("$(csv_field "$WORK/incr.csv" INCR 2)")
        echo "   run $i: dflockd ${d[-1]} incr/s; Redis ${r[-1]} INCR/s"
    done
    local dm rm ratio
    dm=$(median "${d[@]}")
    rm=$(median "${r[@]}")
    ratio=$(calc 'a / b' "$dm" "$rm")
    row "4 pipelined incr/s, 1 conn, depth 64" "$(num 0 "$dm")" "$(num 0 "$rm")" "$(num 2 "$ratio")" ">= 1.0" "$(verdict "$ratio" '>=' 1.0)"
}

# 6: one signal fanned out to 1,000 listeners. Redis PUBLISH is not in
# redis-benchmark's tests, so there is no Redis column.
w_pubsub() {
    echo
    echo "== 6. pub/sub fan-out to 1000 subscribers (no Redis column: redis-benchmark has no PUBLISH test)"
    local pubs i v=() label
    for pubs in 16 1; do
        v=()
        for ((i = 1; i <= RUNS; i++)); do
            run "$WORK/pubsub.json" "$DFLOCK_LOAD_BIN" --server "$HOST:$D_PORT" --subscribers 1000 \
                --connections "$pubs" --duration "$DURATION" --warmup 1 --json pubsub
            v+=("$(jget "$WORK/pubsub.json" deliveries_per_sec)")
            echo "   run $i ($pubs publisher(s)): ${v[-1]} deliveries/s"
        done
        if [[ $pubs == 16 ]]; then
            local m
            m=$(median "${v[@]}")
            row "6 pub/sub deliveries/s, 16 publishers" "$(num 0 "$m")" "n/a" "-" ">= 1000000" "$(verdict "$m" '>=' 1000000)"
        else
            label="6 pub/sub deliveries/s, 1 publisher"
            row "$label" "$(num 0 "$(median "${v[@]}")")" "n/a" "-" "info" "-"
        fi
    done
}

# 7: resident memory of a freshly started server (each one new, nothing sent).
# 0.5 s lets start-up allocations finish before reading.
w_idle_rss() {
    echo
    echo "== 7. idle RSS after start"
    local i d=() r=() st=()
    for ((i = 1; i <= RUNS; i++)); do
        start_dflockd
        start_redis
        sleep 0.5
        d+=("$(rss_kb "$D_PID")")
        r+=("$(rss_kb "$R_PID")")
        echo "   run $i: dflockd ${d[-1]} kB, Redis ${r[-1]} kB"
        stop_pid "$D_PID"
        stop_pid "$R_PID"
    done
    IDLE_KB=$(median "${d[@]}")
    local rm ratio
    rm=$(median "${r[@]}")
    ratio=$(calc 'a / b' "$IDLE_KB" "$rm")
    row "7 idle RSS (kB)" "$IDLE_KB" "$rm" "$(num 2 "$ratio")" "<= 2048" "$(verdict "$IDLE_KB" '<=' 2048)"
    [[ $STATIC_BIN == none ]] && return 0
    local default_bin=$DFLOCKD_BIN
    DFLOCKD_BIN=$STATIC_BIN
    for ((i = 1; i <= RUNS; i++)); do
        start_dflockd
        sleep 0.5
        st+=("$(rss_kb "$D_PID")")
        echo "   run $i: static-pie dflockd ${st[-1]} kB"
        stop_pid "$D_PID"
    done
    DFLOCKD_BIN=$default_bin
    local sm
    sm=$(median "${st[@]}")
    ratio=$(calc 'a / b' "$sm" "$rm")
    row "7 idle RSS, static-pie build (kB)" "$sm" "$rm" "$(num 2 "$ratio")" "<= 2048" "$(verdict "$sm" '<=' 2048)"
}

# 8: 10,000 idle connections to a fresh dflockd: RSS while open, and after
# closing them (does the server give the memory back?). The Python client
# waits until the server holds all the sockets (its /proc fd count) so the
# figure includes every accepted connection.
w_idle_conns() {
    echo
    echo "== 8. $IDLE_CONNS idle connections (fd limit $(ulimit -n))"
    local i open=() back=() opened=0
    for ((i = 1; i <= RUNS; i++)); do
        start_dflockd
        sleep 0.5
        run_py idle_conns "$WORK/idle.out" "$D_PORT" "$D_PID" "$IDLE_CONNS" <<'PY'
import os, resource, socket, sys, time

port, pid, want = (int(a) for a in sys.argv[1:4])
soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
n = min(want, soft - 64)  # leave descriptors for stdio, /proc reads and the server's own

def rss_kb():
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))

def server_fds():
    return len(os.listdir(f"/proc/{pid}/fd"))

base_fds, idle = server_fds(), rss_kb()
socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(n)]
deadline = time.monotonic() + 10
while server_fds() - base_fds < n and time.monotonic() < deadline:
    time.sleep(0.05)
accepted = server_fds() - base_fds
open_kb = rss_kb()
for s in socks:
    s.close()
time.sleep(1.0)
print(f"{n} {accepted} {idle} {open_kb} {rss_kb()} {server_fds() - base_fds}")
PY
        local n accepted idle open_kb closed_kb left
        read -r n accepted idle open_kb closed_kb left <"$WORK/idle.out"
        [[ $accepted -ge $n ]] || die "server accepted only $accepted of $n connections"
        opened=$n
        open+=("$open_kb")
        back+=("$(calc '(a - b) / b * 100' "$closed_kb" "$idle")")
        echo "   run $i: $n open ($accepted accepted): idle $idle kB, open $open_kb kB," \
            "after close $closed_kb kB (${back[-1]}% vs idle, $left fds left)"
        stop_pid "$D_PID"
    done
    local note=""
    [[ $opened -lt $IDLE_CONNS ]] && note=" (only $opened: fd limit)"
    local om bm
    om=$(median "${open[@]}")
    bm=$(median "${back[@]}")
    row "8 RSS with $opened idle conns (kB)$note" "$om" "-" "-" "<= 12288" "$(verdict "$om" '<=' 12288)"
    row "8 RSS after closing them (vs idle)" "$(printf '%+.1f%%' "$bm")" "-" "-" "<= 20%" "$(verdict "$bm" '<=' 20)"
}

# 9: memory per held lock. One connection pipelines `l` requests (timeout 0,
# lease 3600 s) on unique keys in batches of 10,000 and checks every reply.
w_held_locks() {
    echo
    echo "== 9. $HELD_LOCKS held locks, bytes per lock"
    local i per=()
    for ((i = 1; i <= RUNS; i++)); do
        start_dflockd
        sleep 0.5
        run_py held_locks "$WORK/held.out" "$D_PORT" "$D_PID" "$HELD_LOCKS" 10000 <<'PY'
import socket, sys, time

port, pid, count, batch = (int(a) for a in sys.argv[1:5])

def rss_kb():
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))

s = socket.create_connection(("127.0.0.1", port), timeout=60)
before = rss_kb()
started = time.monotonic()
held, rest = 0, b""
while held < count:
    k = min(batch, count - held)
    s.sendall(b"".join(b"l\nk%d\n0 3600\n" % j for j in range(held, held + k)))
    got = 0
    while got < k:
        data = s.recv(1 << 20)
        if not data:
            sys.exit(f"server closed the connection after {held + got} locks")
        lines = (rest + data).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if not line.startswith(b"ok "):
                sys.exit(f"lock {held + got} refused: {line!r}")
            got += 1
    held += k
took = time.monotonic() - started
after = rss_kb()  # read while the connection (and so every lock) is still held
print(f"{held} {before} {after} {took:.2f}")
PY
        local held before after took
        read -r held before after took <"$WORK/held.out"
        per+=("$(calc '(a - b) * 1024' "$after" "$before" | awk -v h="$held" '{ print $1 / h }')")
        echo "   run $i: $held locks in $took s: RSS $before kB -> $after kB = ${per[-1]} bytes/lock"
        stop_pid "$D_PID"
    done
    local m
    m=$(median "${per[@]}")
    row "9 bytes per held lock ($HELD_LOCKS held)" "$(num 1 "$m")" "-" "-" "<= 250" "$(verdict "$m" '<=' 250)"
}

# 10: spawn to "listening on" (the moment clients can connect), median of
# STARTS starts; and the size of the stripped release binary.
w_startup_and_size() {
    echo
    echo "== 10. start-up time and binary size"
    run_py startup "$WORK/startup.out" "$DFLOCKD_BIN" "$STARTS" <<'PY'
import signal, statistics, subprocess, sys, time

binary, starts = sys.argv[1], int(sys.argv[2])
# Turn SIGTERM (e.g. from `timeout`) into an exception so `finally` stops the child.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
times = []
for _ in range(starts):
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "--port", "0", "--log-level", "info", "--max-locks", "2000000"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            line = p.stderr.readline()
            if not line:
                sys.exit("dflockd exited before listening")
            if b"listening on" in line:
                times.append((time.monotonic() - t0) * 1000)
                break
    finally:
        p.terminate()
        p.wait(10)
print(f"{statistics.median(times):.2f} " + " ".join(f"{t:.2f}" for t in times))
PY
    local med all
    read -r med all <"$WORK/startup.out"
    echo "   start-up ms: $all -> median $med"
    row "10 start-up to listening (ms)" "$med" "-" "-" "<= 10" "$(verdict "$med" '<=' 10)"

    # Release builds are already stripped (profile.release strip = "symbols");
    # strip a copy anyway in case DFLOCKD_BIN points at an unstripped build.
    local size
    cp "$DFLOCKD_BIN" "$WORK/dflockd.stripped"
    if command -v strip >/dev/null; then
        show strip "$WORK/dflockd.stripped"
        strip "$WORK/dflockd.stripped"
    fi
    size=$(stat -c %s "$WORK/dflockd.stripped")
    echo "   stripped dflockd: $size bytes"
    row "10 stripped binary size (KiB)" "$(num 0 "$(calc 'a / 1024' "$size")")" "-" "-" "<= 4096" "$(verdict "$size" '<=' 4194304)"
}

print_table() {
    echo
    echo "== results (median of $RUNS runs; $DURATION s per dflock-load run)"
    local fmt='%-44s %14s %18s %8s %12s %6s\n' f
    # shellcheck disable=SC2059  # the format is the constant above
    printf "$fmt" workload dflockd Redis ratio target result
    # Rows in table order (they were measured memory-first).
    while IFS=$'\t' read -r -a f; do
        # shellcheck disable=SC2059
        printf "$fmt" "${f[@]}"
    done < <(printf '%s\n' "${ROWS[@]}" | sort -s -n -k1,1)
}

# True when workload $1 is selected by ONLY (or ONLY is unset).
want() {
    [[ -z $ONLY || " $ONLY " == *" $1 "* ]]
}

main() {
    preflight
    echo "== compare-redis: dflockd vs Redis on $HOST"
    echo "date:     $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
    echo "nproc:    $(nproc)"
    echo "uname:    $(uname -srm)"
    echo "redis:    $(redis-server --version)"
    echo "dflockd:  $DFLOCKD_BIN ($("$DFLOCKD_BIN" --version))"
    echo "load:     $DFLOCK_LOAD_BIN"
    echo "settings: RUNS=$RUNS DURATION=$DURATION STARTS=$STARTS IDLE_CONNS=$IDLE_CONNS HELD_LOCKS=$HELD_LOCKS fd limit $(ulimit -n)"
    echo

    # Memory and start-up first, each on fresh servers, before the machine is warm.
    want idle_rss && w_idle_rss
    want idle_conns && w_idle_conns
    want held_locks && w_held_locks
    want startup && w_startup_and_size

    # Throughput workloads share one dflockd and one Redis.
    if want lock_vs_set || want cpu_per_pair || want contended || want pipeline || want pubsub; then
        echo
        echo "== servers for the throughput workloads"
        start_dflockd
        start_redis
        want lock_vs_set && w_lock_vs_set
        want cpu_per_pair && w_cpu_per_pair
        want contended && w_contended
        want pipeline && w_pipeline
        want pubsub && w_pubsub
        stop_pid "$D_PID"
        stop_pid "$R_PID"
    fi

    print_table
}

main "$@"
