#!/usr/bin/env bash
# ab-load.sh: interleaved A/B/A/B runs of one dflock-load workload against
# two or more (server, load generator, transport) variants on this machine,
# loopback only. Prints every run, then per variant the median ops/s, p99 and
# server CPU per op, and each variant's ratio to the first.
#
# The machine is shared and noisy, so variants are never measured in blocks:
# run i of every variant comes before run i+1 of any. Every run gets a fresh
# server (TCP on an ephemeral port; HTTP, for an http variant, on a free one)
# that is stopped after it.
#
# Environment:
#   VARIANTS  space-separated LABEL:DFLOCKD:DFLOCK_LOAD:TRANSPORT entries
#             [tcp and http, both with ${CARGO_TARGET_DIR:-target}/release binaries]
#   MODE=lock         dflock-load workload
#   CONNS=100         --connections
#   DURATION=5        --duration (s), after WARMUP=1 s of --warmup
#   RUNS=5            runs per variant (medians taken)
#   EXTRA="--lease 60"  further dflock-load flags, the same for every variant
#
# Example (the HTTP/TCP ratio of the README):
#   bash benches/ab-load.sh
# Old against new server and client, TCP only:
#   VARIANTS="old:/work/old/target/release/dflockd:/work/old/target/release/dflock-load:tcp \
#             new:target/release/dflockd:target/release/dflock-load:tcp" EXTRA= bash benches/ab-load.sh
#
# Exit status: 0 all runs clean; 1 a run failed; 2 bad setup; 130/143 interrupted.

set -Eeuo pipefail

T=${CARGO_TARGET_DIR:-target}/release
VARIANTS=${VARIANTS:-"tcp:$T/dflockd:$T/dflock-load:tcp http:$T/dflockd:$T/dflock-load:http"}
MODE=${MODE:-lock}
CONNS=${CONNS:-100}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
RUNS=${RUNS:-5}
EXTRA=${EXTRA---lease 60}
HOST=127.0.0.1

cd "$(dirname "${BASH_SOURCE[0]}")/.."
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ab-load.XXXXXX")
D_PID=
CHILD=

die() {
    echo "ab-load: $1" >&2
    exit "${2:-1}"
}

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
read -r -a SPECS <<<"$VARIANTS"
((${#SPECS[@]} >= 2)) || die "VARIANTS needs at least two entries" 2
for v in "${SPECS[@]}"; do
    IFS=: read -r label server load transport <<<"$v"
    [[ -x $server && -x $load && -n $label && -n $transport ]] || die "bad variant $v (binaries missing?)" 2
done

# start_server BIN TRANSPORT: TCP on an ephemeral port and, for an http
# variant, HTTP on a free one (--http-port 0 means "off"; on a clash the
# server exits and another port is tried). Sets D_PID, T_ADDR and H_ADDR.
start_server() {
    local bin=$1 transport=$2 try
    for try in 1 2 3 4 5; do
        local hp http=()
        if [[ $transport == http ]]; then
            hp=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
            http=(--http-port "$hp")
        fi
        RUST_LOG=info "$bin" --host "$HOST" --port 0 "${http[@]}" </dev/null >/dev/null 2>"$WORK/server.log" &
        D_PID=$!
        for _ in $(seq 100); do
            if grep -q "listening on .* (tcp)" "$WORK/server.log" &&
                { ((${#http[@]} == 0)) || grep -q "listening on .* (http)" "$WORK/server.log"; }; then
                T_ADDR=$(sed -n 's/.*listening on \(.*\) (tcp)$/\1/p' "$WORK/server.log")
                H_ADDR=$(sed -n 's/.*listening on \(.*\) (http)$/\1/p' "$WORK/server.log")
                return 0
            fi
            kill -0 "$D_PID" 2>/dev/null || break
            sleep 0.05
        done
        stop_server
    done
    cat "$WORK/server.log" >&2
    die "$bin did not start"
}

# Server CPU (utime + stime) in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

declare -A OPS P99 CPU
HZ=$(getconf CLK_TCK)
echo "== $MODE, $CONNS connections, ${DURATION} s after ${WARMUP} s warm-up, $RUNS interleaved runs per variant ($(date -u +%FT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg))"
for ((i = 1; i <= RUNS; i++)); do
    for v in "${SPECS[@]}"; do
        IFS=: read -r label server load transport <<<"$v"
        start_server "$server" "$transport"
        addr=$T_ADDR
        [[ $transport == http ]] && addr=$H_ADDR
        transport_flag=()
        [[ $transport == http ]] && transport_flag=(--transport http)
        # shellcheck disable=SC2206 # EXTRA is split into flags on purpose
        cmd=("$load" --server "$addr" "${transport_flag[@]}" --connections "$CONNS"
            --duration "$DURATION" --warmup "$WARMUP" $EXTRA --json "$MODE")
        if ((i == 1)); then
            printf '%s: $' "$label"
            printf ' %q' "${cmd[@]}"
            printf '\n'
        fi
        c0=$(cpu_ticks "$D_PID")
        status=0
        timeout --kill-after=5 $((DURATION + WARMUP + 120)) "${cmd[@]}" >"$WORK/run.json" </dev/null &
        CHILD=$!
        wait "$CHILD" || status=$?
        CHILD=
        c1=$(cpu_ticks "$D_PID")
        stop_server
        ((status == 0)) || { cat "$WORK/run.json" >&2; die "$label run $i failed (status $status)"; }
        read -r ops p99 n < <(python3 -c 'import json,sys; v = json.load(open(sys.argv[1])); print(v["ops_per_sec"], v["p99_us"], v["ops"])' "$WORK/run.json")
        # Server CPU over the whole run (warm-up included) per measured op:
        # comparable between variants, not an absolute figure.
        cpu=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$n" -v d="$DURATION" -v w="$WARMUP" \
            'BEGIN { printf "%.2f", t / hz * 1e6 / (n * (d + w) / d) }')
        OPS[$label]+="$ops "
        P99[$label]+="$p99 "
        CPU[$label]+="$cpu "
        printf '   run %d %-6s %10.1f ops/s  p99 %6d µs  server CPU %6.2f µs/op\n' "$i" "$label" "$ops" "$p99" "$cpu"
    done
done

# The ratio of medians, and the median of the per-run ratios (run i of a
# variant against run i of the first, measured seconds apart): the second is
# the steadier one when the machine's load drifts during the whole series.
echo
printf '%-8s %12s %10s %14s %16s %18s\n' variant "ops/s" "p99 µs" "server µs/op" "ratio of medians" "median run ratio"
first=
read -r -a base <<<"${OPS[${SPECS[0]%%:*}]}"
for v in "${SPECS[@]}"; do
    IFS=: read -r label _ <<<"$v"
    read -r -a mine <<<"${OPS[$label]}"
    ratios=()
    for ((i = 0; i < RUNS; i++)); do
        ratios+=("$(awk -v a="${mine[i]}" -v b="${base[i]}" 'BEGIN { print a / b }')")
    done
    # shellcheck disable=SC2086
    mo=$(median ${OPS[$label]})
    # shellcheck disable=SC2086
    mp=$(median ${P99[$label]})
    # shellcheck disable=SC2086
    mc=$(median ${CPU[$label]})
    [[ -n $first ]] || first=$mo
    printf '%-8s %12.1f %10s %14s %15.2fx %17.2fx\n' "$label" "$mo" "$mp" "$mc" \
        "$(awk -v a="$mo" -v b="$first" 'BEGIN { print a / b }')" "$(median "${ratios[@]}")"
done
