#!/bin/sh
# The long memory-budget storm of issue 17: 8 clients pushing at a 16 MiB
# budget for 20 s while 8 others lock and release. Passes when no lock is
# refused, every refusal is error_max_memory and the server does not panic.
# The test suite runs the same scenario for 3 s; this script only lengthens it.
#
#   benches/membudget-storm.sh [seconds]     (default 20)
set -eu
cd "$(dirname "$0")/.."
MEMBUDGET_STORM_SECS="${1:-20}" exec cargo test --profile ci --test all \
    memory_budget::storm_pushers_at_the_budget_never_stop_the_lockers -- --nocapture
