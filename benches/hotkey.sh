#!/usr/bin/env bash
# hotkey.sh: hot-key hand-offs, dflockd against the original Go dflockd
# (../shared/bench/dflockd-go-v1.10), loopback only.
#
# Every worker loops `l` then `r` on one shared key, so every pair is a FIFO
# hand-off; the semaphore workload does `sl`/`sr` on one semaphore of limit 4.
# Both client shapes of dflock-load drive both servers: one OS thread per
# connection with blocking reads (--threads-per-connection, the shape of the
# Go, Python and TypeScript clients) and one event loop driving every
# connection. Runs are interleaved (server A, B, A, B … per workload) and
# every figure is the median of RUNS runs. Server CPU per hand-off is
# utime+stime from /proc/PID/stat over the middle of the measured window.
#
# Then, in the same run:
#   moderate   ~1,000 hand-offs/s (--rate 1000, 10 threads): the CPU
#              busy-polling costs, ours with the default against --busy-poll-us 0
#   unique     unique-key pairs (lock mode, 100 connections) A/B against the
#              previous binary BASE_BIN: the no-regression check (AB_RUNS runs)
#   idle       CPU of every server over IDLE seconds after the traffic, and
#              idle RSS of a fresh start (ours vs BASE_BIN)
#
# Installs nothing. Needs python3, timeout, awk, getconf; builds dflockd and
# dflock-load (cargo build --release) when they are missing. Stops everything
# it starts, also on Ctrl-C / SIGTERM; every client run has a hard time limit.
#
# Environment:
#   DFLOCKD_BIN      our dflockd          [${CARGO_TARGET_DIR:-target}/release/dflockd]
#   DFLOCK_LOAD_BIN  dflock-load          [${CARGO_TARGET_DIR:-target}/release/dflock-load]
#   GO_BIN           the Go peer          [../shared/bench/dflockd-go-v1.10 from the repo]
#   BASE_BIN         the previous dflockd, measured beside ours in every
#                    table ("before") and in the unique-key A/B; unset = skipped
#   SWEEP            busy-poll values (µs) of extra dflockd instances shown in
#                    the hot-key tables, e.g. SWEEP="0 25 100"; unset = none
#   RUNS=3           runs per figure (median); AB_RUNS=5 for the unique-key A/B
#   DURATION=5       measured seconds per run, after WARMUP=1 s of warm-up
#   IDLE=10          idle seconds measured
#   ONLY             workloads to run, e.g. ONLY="hot10 moderate"; all when unset
#                    (hot10 hot100 loop100 sem-threads sem-loop moderate unique idle)
#
# Exit status: 0 when everything ran (missed targets are reported, not
# fatal); 1 a run failed (e.g. dflock-load saw errors); 2 missing binaries;
# 130/143 interrupted.

set -Eeuo pipefail

RUNS=${RUNS:-3}
AB_RUNS=${AB_RUNS:-5}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
IDLE=${IDLE:-10}
ONLY=${ONLY:-}
SWEEP=${SWEEP:-}
HOST=127.0.0.1

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
TARGET_DIR=${CARGO_TARGET_DIR:-target}
DFLOCKD_BIN=${DFLOCKD_BIN:-}
DFLOCK_LOAD_BIN=${DFLOCK_LOAD_BIN:-}
GO_BIN=${GO_BIN:-$REPO/../shared/bench/dflockd-go-v1.10}
BASE_BIN=${BASE_BIN:-}

# ---------------------------------------------------------------- plumbing --

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hotkey.XXXXXX")
PIDS=()  # every server this script started and has not stopped yet
CHILD=   # the client running now
LIMIT=$((WARMUP + DURATION + 60)) # hard limit of one client run (a safety net)
TCK=$(getconf CLK_TCK)

die() {
    echo "hotkey: $1" >&2
    exit "${2:-1}"
}

# Stop one process we started: SIGTERM, then SIGKILL after 3 s.
stop_pid() {
    local pid=$1 i p keep=()
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do
        [[ $p == "$pid" ]] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

cleanup() {
    local pid
    if [[ -n $CHILD ]]; then
        kill -TERM "$CHILD" 2>/dev/null || true
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
trap 'echo "hotkey: command failed at line $LINENO" >&2' ERR

show() {
    printf '$'
    printf ' %q' "$@"
    printf '\n'
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# calc EXPR A B: floating-point arithmetic on a and b.
calc() {
    awk -v a="$2" -v b="${3:-0}" "BEGIN { x = $1; printf \"%.6g\n\", x }"
}

jget() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# utime + stime of a process (all threads), in clock ticks (fields 14, 15).
cpu_ticks() {
    local stat f
    stat=$(<"/proc/$1/stat")
    read -r -a f <<<"${stat##*) }"
    echo $((f[11] + f[12]))
}

rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

now_s() {
    date +%s.%N
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start NAME CMD...: start a server on a free port given as "--port PORT"
# (both servers take --host/--port); wait until it accepts. Sets
# PID_<NAME> and PORT_<NAME>.
start() {
    local name=$1 port i pid
    shift
    port=$(free_port)
    show "$@" --host "$HOST" --port "$port"
    "$@" --host "$HOST" --port "$port" </dev/null >"$WORK/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    for ((i = 0; i < 100; i++)); do
        if (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then
            printf -v "PID_$name" '%s' "$pid"
            printf -v "PORT_$name" '%s' "$port"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    cat "$WORK/$name.log" >&2
    die "$name did not start"
}

# measure NAME OUT CLIENT-ARGS...: one dflock-load run against server NAME
# (JSON report in OUT); appends "ops/s p50 p99 cpu_us_per_op cpu_percent"
# to OUT.row. Server CPU is sampled from half a second after the warm-up to
# half a second before the end, where the load is steady.
measure() {
    local name=$1 out=$2 pidv="PID_$1" portv="PORT_$1"
    shift 2
    local pid=${!pidv} port=${!portv} t0 t1 c0 c1 status=0
    timeout --kill-after=5 "$LIMIT" "$DFLOCK_LOAD_BIN" --server "$HOST:$port" \
        --warmup "$WARMUP" --duration "$DURATION" --key-prefix "hk$RANDOM" --json "$@" \
        </dev/null >"$out" 2>"$out.err" &
    CHILD=$!
    sleep "$(calc 'a + 0.5' "$WARMUP")"
    c0=$(cpu_ticks "$pid") t0=$(now_s)
    sleep "$(calc 'a - 1' "$DURATION")"
    c1=$(cpu_ticks "$pid") t1=$(now_s)
    wait "$CHILD" || status=$?
    CHILD=
    if ((status != 0)); then
        cat "$out" "$out.err" >&2
        die "dflock-load $* against $name exited with status $status"
    fi
    local ops p50 p99
    ops=$(jget "$out" ops_per_sec) p50=$(jget "$out" p50_us) p99=$(jget "$out" p99_us)
    # CPU seconds over the window; per hand-off at the client's measured rate.
    awk -v t="$((c1 - c0))" -v hz="$TCK" -v dt="$(calc 'a - b' "$t1" "$t0")" \
        -v ops="$ops" -v p50="$p50" -v p99="$p99" 'BEGIN {
            cpu = t / hz
            printf "%s %s %s %.2f %.1f\n", ops, p50, p99, (ops > 0 ? cpu * 1e6 / (ops * dt) : 0), 100 * cpu / dt
        }' >>"$OUT_ROWS.$name"
}

wanted() {
    [[ -z $ONLY || " $ONLY " == *" $1 "* ]]
}

# ------------------------------------------------------------- preflight --

[[ -x $GO_BIN ]] || die "GO_BIN=$GO_BIN is not an executable (see ../shared/bench/README.md)" 2
for tool in python3 timeout awk getconf; do
    command -v "$tool" >/dev/null || die "$tool not found on PATH" 2
done
if [[ -z $DFLOCKD_BIN || -z $DFLOCK_LOAD_BIN ]]; then
    if [[ ! -x $TARGET_DIR/release/dflockd || ! -x $TARGET_DIR/release/dflock-load ]]; then
        show cargo build --release --bin dflockd --bin dflock-load
        cargo build --release --bin dflockd --bin dflock-load
    fi
fi
DFLOCKD_BIN=${DFLOCKD_BIN:-$TARGET_DIR/release/dflockd}
DFLOCK_LOAD_BIN=${DFLOCK_LOAD_BIN:-$TARGET_DIR/release/dflock-load}
for b in "$DFLOCKD_BIN" "$DFLOCK_LOAD_BIN" ${BASE_BIN:+"$BASE_BIN"}; do
    [[ -x $b ]] || die "$b is not an executable" 2
done

echo "# hotkey.sh $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# RUNS=$RUNS DURATION=$DURATION WARMUP=$WARMUP; ours: $DFLOCKD_BIN; Go: $GO_BIN${BASE_BIN:+; before: $BASE_BIN}"

# ---------------------------------------------------------------- servers --

OURS=(go ours)
start go "$GO_BIN"
start ours "$DFLOCKD_BIN" --log-level warn
if [[ -n $BASE_BIN ]]; then
    start before "$BASE_BIN" --log-level warn
    OURS+=(before)
fi
for us in $SWEEP; do
    start "busy$us" "$DFLOCKD_BIN" --log-level warn --busy-poll-us "$us"
    OURS+=("busy$us")
done
label() {
    case $1 in
        go) echo "Go v1.10" ;;
        ours) echo "ours" ;;
        before) echo "before" ;;
        busy*) echo "ours, busy-poll ${1#busy} µs" ;;
    esac
}

TABLE=()
# workload NAME TITLE CLIENT-ARGS...: every server, interleaved, RUNS times.
workload() {
    local name=$1 title=$2 s r
    shift 2
    wanted "$name" || return 0
    OUT_ROWS="$WORK/$name"
    echo
    echo "## $title"
    show "$DFLOCK_LOAD_BIN" --server "$HOST:PORT" --warmup "$WARMUP" --duration "$DURATION" --json "$@"
    for ((r = 1; r <= RUNS; r++)); do
        for s in "${OURS[@]}"; do
            measure "$s" "$WORK/$name.$s.$r.json" "$@"
            printf '  run %d %-22s %s\n' "$r" "$(label "$s")" "$(tail -n1 "$OUT_ROWS.$s")"
        done
    done
    # Medians per server, then ratios to Go.
    local go_ops go_p99 go_cpu
    for s in "${OURS[@]}"; do
        local ops p50 p99 cpu pct
        col() { median $(awk -v c="$1" '{ print $c }' "$OUT_ROWS.$s"); }
        ops=$(col 1) p50=$(col 2) p99=$(col 3) cpu=$(col 4) pct=$(col 5)
        if [[ $s == go ]]; then
            go_ops=$ops go_p99=$p99 go_cpu=$cpu
        fi
        TABLE+=("$(printf '%s\t%s\t%.0f\t%s\t%s\t%.1f\t%.0f%%\t%.2f×\t%.2f×\t%.2f×' \
            "$title" "$(label "$s")" "$ops" "$p50" "$p99" "$cpu" "$pct" \
            "$(calc 'a / b' "$ops" "$go_ops")" "$(calc 'a / b' "$p99" "$go_p99")" \
            "$(calc 'a / b' "$cpu" "$go_cpu")")")
    done
}

TPC=--threads-per-connection
workload hot10 "hot key, 10 conns, thread/conn" contended -c 10 "$TPC"
workload hot100 "hot key, 100 conns, thread/conn" contended -c 100 "$TPC"
workload loop100 "hot key, 100 conns, one loop" contended -c 100
workload sem-threads "semaphore 4, 100 conns, thread/conn" semaphore --limit 4 -c 100 "$TPC"
workload sem-loop "semaphore 4, 100 conns, one loop" semaphore --limit 4 -c 100

print_table() {
    echo
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' workload server "hand-offs/s" \
        "p50 µs" "p99 µs" "server CPU µs/hand-off" "server CPU" "ops vs Go" "p99 vs Go" "CPU vs Go"
    echo '|---|---|---|---|---|---|---|---|---|---|'
    local row
    for row in "$@"; do
        printf '| %s |\n' "${row//$'\t'/ | }"
    done
}
if ((${#TABLE[@]})); then
    echo
    echo "## Hot key: medians of $RUNS interleaved runs"
    print_table "${TABLE[@]}"
    echo
    echo "Targets: ours ≥ 1.50× Go hand-offs/s, p99 ≤ 0.75× Go, server CPU per hand-off ≤ 0.75× Go."
fi

# ------------------------------------------------------- moderate load --

if wanted moderate; then
    echo
    echo "## About 1,000 hand-offs/s: what busy-polling costs"
    # Every server above, plus ours with busy-polling off if no SWEEP has it.
    MOD=("${OURS[@]}")
    if [[ " ${OURS[*]} " != *" busy0 "* ]]; then
        start busy0 "$DFLOCKD_BIN" --log-level warn --busy-poll-us 0
        MOD+=(busy0)
    fi
    OUT_ROWS="$WORK/moderate"
    args=(contended -c 10 "$TPC" --rate 1000)
    show "$DFLOCK_LOAD_BIN" --server "$HOST:PORT" --warmup "$WARMUP" --duration "$DURATION" --json "${args[@]}"
    for ((r = 1; r <= RUNS; r++)); do
        for s in "${MOD[@]}"; do
            measure "$s" "$WORK/moderate.$s.$r.json" "${args[@]}"
            printf '  run %d %-22s %s\n' "$r" "$(label "$s")" "$(tail -n1 "$OUT_ROWS.$s")"
        done
    done
    echo
    echo '| server | hand-offs/s | p50 µs | p99 µs | server CPU µs/hand-off | server CPU |'
    echo '|---|---|---|---|---|---|'
    for s in "${MOD[@]}"; do
        col() { median $(awk -v c="$1" '{ print $c }' "$OUT_ROWS.$s"); }
        printf '| %s | %.0f | %s | %s | %.1f | %.1f%% |\n' "$(label "$s")" "$(col 1)" "$(col 2)" "$(col 3)" "$(col 4)" "$(col 5)"
    done
fi

# ------------------------------------------------------ unique-key A/B --

if wanted unique; then
    echo
    if [[ -z $BASE_BIN ]]; then
        echo "## Unique-key pairs A/B: skipped (set BASE_BIN to the previous dflockd)"
    else
        echo "## Unique-key pairs, 100 connections, one loop: A/B against the previous binary ($AB_RUNS runs)"
        OUT_ROWS="$WORK/unique"
        show "$DFLOCK_LOAD_BIN" --server "$HOST:PORT" --warmup "$WARMUP" --duration "$DURATION" --json lock -c 100
        ratios=()
        for ((r = 1; r <= AB_RUNS; r++)); do
            for s in before ours; do
                measure "$s" "$WORK/unique.$s.$r.json" lock -c 100
            done
            a=$(tail -n1 "$OUT_ROWS.before" | cut -d' ' -f1) b=$(tail -n1 "$OUT_ROWS.ours" | cut -d' ' -f1)
            ratios+=("$(calc 'a / b' "$b" "$a")")
            printf '  run %d  before %.0f  ours %.0f pairs/s  ours/before %.3f\n' "$r" "$a" "$b" "${ratios[-1]}"
        done
        col() { median $(awk -v c="$1" '{ print $c }' "$OUT_ROWS.$2"); }
        printf '\n| server | pairs/s | p50 µs | p99 µs | server CPU µs/pair |\n|---|---|---|---|---|\n'
        for s in before ours; do
            printf '| %s | %.0f | %s | %s | %.1f |\n' "$s" "$(col 1 "$s")" "$(col 2 "$s")" "$(col 3 "$s")" "$(col 4 "$s")"
        done
        printf 'median of the per-run ratios ours/before: %.3f (target: within 3%%, 0.97 ..)\n' "$(median "${ratios[@]}")"
    fi
fi

# ----------------------------------------------------------------- idle --

if wanted idle; then
    echo
    echo "## Idle: CPU over $IDLE s after the traffic above, and RSS of a fresh start"
    sleep 1
    declare -A c0
    for s in "${OURS[@]}"; do c0[$s]=$(cpu_ticks "$(eval echo "\$PID_$s")"); done
    sleep "$IDLE"
    for s in "${OURS[@]}"; do
        printf '  %-22s %d CPU ticks (1/%d s) in %d s\n' "$(label "$s")" \
            "$(($(cpu_ticks "$(eval echo "\$PID_$s")") - c0[$s]))" "$TCK" "$IDLE"
    done
    for s in ours ${BASE_BIN:+before}; do
        bin=$DFLOCKD_BIN
        [[ $s == before ]] && bin=$BASE_BIN
        start "fresh_$s" "$bin" --log-level warn
        sleep 0.5
        pidv="PID_fresh_$s"
        printf '  %-22s idle RSS %d kB after start\n' "$(label "$s")" "$(rss_kb "${!pidv}")"
        stop_pid "${!pidv}"
    done
fi
