#!/usr/bin/env bash
# reliability.sh: issue 13's checks at full size (benchmark, not CI). CI runs
# short seeded versions of the same tests; this runs them long:
#   1. model check of the lock state, MODEL_EXTRA levels deeper;
#   2. HISTORIES checked histories under faults against a real server;
#   3. the kill storm (1,000 holders, 200 of them SIGKILLed dflockctl
#      processes; median hand-off ≤ 10 ms), the disconnect storm (10 rounds of
#      5,000 connections; RSS within 5 % of round 1) and fence durability
#      (100 kill -9 cycles with --fence-state-file);
#   4. FUZZ_INPUTS seeded inputs per wire parser.
# Then run benches/soak.sh for the 30-minute mixed soak.
#
# Environment:
#   MODEL_EXTRA=2        extra model-check depth (each level costs ~4x)
#   HISTORIES=20000      randomized histories
#   HISTORY_SEED         first history's seed (default: the CI seed)
#   FUZZ_INPUTS=20000000 inputs per parser
#   ONLY                 space-separated subset of: model histories storms parsers
#
# Exit status: 0 all passed; 1 a check failed (its output says which, with
# the seed to reproduce it).

set -Eeuo pipefail

MODEL_EXTRA=${MODEL_EXTRA:-2}
HISTORIES=${HISTORIES:-20000}
FUZZ_INPUTS=${FUZZ_INPUTS:-20000000}
ONLY=${ONLY:-model histories storms parsers}
cd "$(dirname "${BASH_SOURCE[0]}")/.."

wanted() { [[ " $ONLY " == *" $1 "* ]]; }

# step NAME CMD...: echo, run, keep the summary lines (everything on failure).
step() {
    local name=$1 out rc=0
    shift
    printf '\n== %s\n$' "$name"
    printf ' %q' "$@"
    printf '\n'
    out=$(mktemp)
    "$@" >"$out" 2>&1 || rc=$?
    if ((rc == 0)); then
        grep -E '(model \[|randomized histories:|histories across|kill storm:|disconnect storm:|fence durability:|line framer:|dreadlock:|http heads:|http bodies:|test result)' "$out" || true
    else
        tail -n 200 "$out"
    fi
    rm -f "$out"
    return "$rc"
}

status=0
if wanted model; then
    step "model check (+$MODEL_EXTRA levels)" env DFLOCKD_MODEL_EXTRA_DEPTH="$MODEL_EXTRA" \
        cargo test --profile ci --test all model_state:: -- --nocapture || status=1
fi
if wanted histories; then
    step "checked histories ($HISTORIES)" env DFLOCKD_HISTORIES="$HISTORIES" \
        ${HISTORY_SEED:+DFLOCKD_HISTORY_SEED="$HISTORY_SEED"} \
        cargo test --profile ci --test all history:: -- --nocapture || status=1
fi
if wanted storms; then
    step "storms at full size" env DFLOCKD_STORM_FULL=1 \
        cargo test --profile ci --test all storms:: -- --ignored --nocapture --test-threads 1 || status=1
fi
if wanted parsers; then
    step "parsers ($FUZZ_INPUTS inputs each)" env DFLOCKD_FUZZ_INPUTS="$FUZZ_INPUTS" \
        cargo test --profile ci --test parsers_fuzz -- --nocapture --test-threads 1 || status=1
fi
echo
if ((status == 0)); then
    echo "reliability: all passed"
else
    echo "reliability: FAILED (see above)"
fi
exit "$status"
