#!/usr/bin/env bash
# soak.sh: a long mixed workload against one dflockd (issue 13 §4): every
# minute, six dflock-load runs at once (own-key locks, a contended lock, a
# semaphore, KV, counters, pub/sub fan-out) for that minute; one summary
# line per minute (RSS, throughput, p99 per workload, errors). At the end it
# checks RSS flat (within ±RSS_TOLERANCE % of minute 1), p99 flat (no
# minute's p99 above P99_FACTOR × the workload's median p99) and 0 errors.
#
# Benchmark, not CI. Loopback only; builds the release binaries if missing.
#
# Environment:
#   MINUTES=30          length of the soak
#   STEP=60             seconds per step (a "minute"; shorter for a smoke test)
#   CONNS=8             connections per workload
#   RSS_TOLERANCE=5     allowed RSS drift from minute 1, percent
#   P99_FACTOR=3        allowed p99 of any minute over the workload's median
#   DFLOCKD_BIN / DFLOCK_LOAD_BIN   binaries [target/release/…]
#
# Exit status: 0 flat and error-free; 1 a check failed or a run erred;
# 2 missing tools; 130/143 interrupted.

set -Eeuo pipefail

MINUTES=${MINUTES:-30}
STEP=${STEP:-60}
CONNS=${CONNS:-8}
RSS_TOLERANCE=${RSS_TOLERANCE:-5}
P99_FACTOR=${P99_FACTOR:-3}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
TARGET_DIR=${CARGO_TARGET_DIR:-target}
DFLOCKD_BIN=${DFLOCKD_BIN:-$TARGET_DIR/release/dflockd}
DFLOCK_LOAD_BIN=${DFLOCK_LOAD_BIN:-$TARGET_DIR/release/dflock-load}
MODES=(lock contended semaphore kv counter pubsub)

die() {
    echo "soak: $1" >&2
    exit "${2:-1}"
}

command -v jq >/dev/null || die "jq is needed to read dflock-load --json" 2
if [[ ! -x $DFLOCKD_BIN || ! -x $DFLOCK_LOAD_BIN ]]; then
    cargo build --release --bin dflockd --bin dflock-load || die "build failed" 2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/soak.XXXXXX")
D_PID=
LOADS=()
cleanup() {
    local p
    for p in "${LOADS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    if [[ -n $D_PID ]]; then
        kill -TERM "$D_PID" 2>/dev/null || true
        sleep 1
        kill -KILL "$D_PID" 2>/dev/null || true
        wait "$D_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$DFLOCKD_BIN" --port 0 --log-level info --max-locks 100000 </dev/null >/dev/null 2>"$WORK/dflockd.log" &
D_PID=$!
PORT=
for ((i = 0; i < 100; i++)); do
    PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\) (tcp).*/\1/p' "$WORK/dflockd.log" 2>/dev/null || true)
    [[ -n $PORT ]] && break
    sleep 0.05
done
[[ -n $PORT ]] || die "dflockd did not start: $(cat "$WORK/dflockd.log")"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$D_PID/status"; }

echo "soak: dflockd pid $D_PID on 127.0.0.1:$PORT, $MINUTES min of ${MODES[*]} x $CONNS connections"
declare -A P99S
RSS=()
ERRORS=0
for ((m = 1; m <= MINUTES; m++)); do
    LOADS=()
    for mode in "${MODES[@]}"; do
        args=(-s "127.0.0.1:$PORT" -c "$CONNS" -d "$STEP" --json --key-prefix "soak-$mode")
        case $mode in
            semaphore) args+=(--limit 3) ;;
            pubsub) args=(-s "127.0.0.1:$PORT" -c 2 --subscribers "$CONNS" -d "$STEP" --json --key-prefix soak-pubsub) ;;
        esac
        "$DFLOCK_LOAD_BIN" "${args[@]}" "$mode" >"$WORK/$mode.json" 2>"$WORK/$mode.err" &
        LOADS+=($!)
    done
    status=0
    for p in "${LOADS[@]}"; do wait "$p" || status=1; done
    LOADS=()
    rss=$(rss_kib)
    RSS+=("$rss")
    line="minute $m: rss ${rss} KiB"
    total=0
    for mode in "${MODES[@]}"; do
        f=$WORK/$mode.json
        if ! jq -e . "$f" >/dev/null 2>&1; then
            echo "soak: $mode produced no report: $(cat "$WORK/$mode.err")" >&2
            ERRORS=$((ERRORS + 1))
            continue
        fi
        p99=$(jq -r .p99_us "$f")
        errs=$(jq -r '.errors + .timeouts' "$f")
        ops=$(jq -r '.ops_per_sec | floor' "$f")
        total=$((total + ops))
        ERRORS=$((ERRORS + errs))
        P99S[$mode]+="$p99 "
        line+=", $mode p99 ${p99}us"
        ((errs == 0)) || line+=" ($errs errors)"
    done
    ((status == 0)) || line+=" [a run failed]"
    echo "$line, ${total} ops/s, errors so far $ERRORS"
    ((status == 0)) || ERRORS=$((ERRORS + 1))
done

fail=0
base=${RSS[0]}
last=${RSS[${#RSS[@]} - 1]}
drift=$(awk -v a="$base" -v b="$last" 'BEGIN {printf "%.1f", (b - a) * 100 / a}')
if awk -v d="$drift" -v t="$RSS_TOLERANCE" 'BEGIN {exit !(d > t || d < -t)}'; then
    echo "soak: RSS drifted ${drift}% (minute 1: $base KiB, last: $last KiB)"
    fail=1
fi
for mode in "${MODES[@]}"; do
    read -r -a v <<<"${P99S[$mode]:-}"
    ((${#v[@]} > 0)) || continue
    med=$(printf '%s\n' "${v[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
    max=$(printf '%s\n' "${v[@]}" | sort -n | tail -1)
    if ((max > med * P99_FACTOR)); then
        echo "soak: $mode p99 not flat: median ${med}us, worst minute ${max}us"
        fail=1
    fi
done
((ERRORS == 0)) || fail=1
echo "soak: $MINUTES min, RSS drift ${drift}%, errors $ERRORS: $( ((fail == 0)) && echo PASS || echo FAIL)"
exit "$fail"
