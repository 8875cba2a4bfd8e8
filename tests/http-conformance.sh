#!/usr/bin/env bash
# Conformance of the HTTP API (http.md) against external tools:
#
#   0. openapi-spec-validator checks that the served document is valid
#      OpenAPI 3.1 (§10).
#   1. schemathesis runs every check (the `--checks all` set) against the OpenAPI
#      document the server serves (§10), with the bearer token (§3.2), a live
#      session for the session endpoints (§5), the links the document declares
#      (stateful phase), a fixed seed and a bounded number of examples.
#      Requirements: no failure of any check, so no 5xx and no response that
#      violates the document.
#   2. A short load (dflock-load on the TCP port, curl on the HTTP port, an SSE
#      stream and a long-poll) while /metrics is scraped into
#      `promtool check metrics` (§9): no error and no lint warning.
#   3. The server's own counters confirm that no request got a 5xx.
#
# Builds nothing. Usage:
#   tests/http-conformance.sh [path/to/dflockd]      (default target/ci/dflockd)
# dflock-load is taken from the same directory as the server binary.
# Environment: SCHEMATHESIS (default: schemathesis on PATH), OPENAPI_VALIDATOR
# (default: openapi-spec-validator), PROMTOOL (default: promtool),
# CONFORMANCE_EXAMPLES (examples per operation; default in
# tests/http-conformance/schemathesis.toml), CONFORMANCE_SEED (another seed, for
# soak runs; CI keeps the fixed one), CONFORMANCE_KEEP=1 keeps the work
# directory (reports, server log) after a successful run too.
# Needs curl and jq. Exit status: 0 when everything passed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-target/ci/dflockd}
[[ -x $bin ]] || { echo "server binary $bin not found: build it first (cargo build --profile ci)" >&2; exit 2; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
load_bin=$(dirname "$bin")/dflock-load
st=${SCHEMATHESIS:-schemathesis}
validator=${OPENAPI_VALIDATOR:-openapi-spec-validator}
promtool=${PROMTOOL:-promtool}
for tool in "$st" "$validator" "$promtool" curl jq; do
    command -v "$tool" >/dev/null || { echo "$tool not found" >&2; exit 2; }
done
[[ -x $load_bin ]] || { echo "$load_bin not found" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/http-conformance.XXXXXX")
token=conformance-$RANDOM$RANDOM
server_pid=
bg_pids=()
status=1

cleanup() {
    local p
    for p in "${bg_pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    for p in "${bg_pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    if [[ $status -eq 0 && -z ${CONFORMANCE_KEEP:-} ]]; then
        rm -rf "$work"
    else
        echo "work directory kept: $work (server.log, reports/)" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# ---- the server ------------------------------------------------------------
# Two adjacent ports below the kernel's ephemeral range (a client socket there,
# even in TIME-WAIT, makes the bind fail on a busy machine), retried if the
# bind fails anyway. The limits are raised so that the fuzzer's thousands of
# keys and values never meet a cap (a `503 max_locks` or `503 max_memory` is
# correct but counts as a server error), sessions live as long as the run, and
# default leases are short (see hooks.py).
start_server() {
    local attempt low span
    low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    span=$((low - 2 - 10000))
    ((span > 1000)) || span=20000 # an unusual range: take our chances
    for attempt in 1 2 3 4 5 6 7 8; do
        tcp_port=$((10000 + RANDOM % span))
        http_port=$((tcp_port + 1))
        "$bin" --host 127.0.0.1 --port "$tcp_port" --http-port "$http_port" \
            --auth-token "$token" --http-session-idle-timeout 3600 \
            --max-locks 1000000 --max-keys 0 --max-memory 0 --default-lease-ttl 1 \
            --log-level warn \
            >"$work/server.log" 2>&1 &
        server_pid=$!
        local i
        for i in $(seq 50); do
            if ! kill -0 "$server_pid" 2>/dev/null; then
                break
            fi
            # Ours, not another server on that port: it takes our token and
            # refuses a request without it.
            if curl -fsS -o /dev/null -H "Authorization: Bearer $token" \
                "http://127.0.0.1:$http_port/v1/stats" 2>/dev/null; then
                local code
                code=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/v1/stats")
                if [[ $code == 401 ]] && kill -0 "$server_pid" 2>/dev/null; then
                    return 0
                fi
                break
            fi
            sleep 0.1
        done
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
        echo "server did not start on $tcp_port/$http_port (attempt $attempt):" >&2
        tail -5 "$work/server.log" >&2
    done
    fail "could not start $bin"
}

start_server
url=http://127.0.0.1:$http_port
auth=(-H "Authorization: Bearer $token")
echo "== server pid $server_pid: tcp 127.0.0.1:$tcp_port, http $url"

curl -fsS "$url/v1/openapi.json" -o "$work/openapi.json" || fail "GET /v1/openapi.json"
jq -e '.openapi == "3.1.0"' "$work/openapi.json" >/dev/null || fail "not an OpenAPI 3.1.0 document"

# ---- 0. the document validates as OpenAPI 3.1 ---------------------------------
echo "== openapi-spec-validator"
"$validator" "$work/openapi.json" || fail "GET /v1/openapi.json is not valid OpenAPI 3.1"

# ---- 1. schemathesis ---------------------------------------------------------
# A live session for the X-Dflockd-Session header (pinned in the config).
session=$(curl -fsS -X POST "${auth[@]}" "$url/v1/sessions" | jq -r .session_id)
[[ $session =~ ^[0-9a-f]{32}$ ]] || fail "POST /v1/sessions gave '$session'"

# SSE streams never end, so schemathesis cannot test them (it would wait for
# the body forever); they are exercised in the load below instead.
excluded=(
    streamSignals streamWatch streamLeaderEvents streamSessionEvents
)
# All checks are on: the config file selects them (`[checks] enabled = true`,
# the set of `--checks all`), because `--checks all` on the command line
# would override its per-operation exceptions, each justified by the spec.
st_args=(
    --config-file "$here/http-conformance/schemathesis.toml"
    run "$url/v1/openapi.json" --url "$url"
    --report junit,ndjson --report-dir "$work/reports"
    --no-color
)
for op in "${excluded[@]}"; do
    st_args+=(--exclude-operation-id "$op")
done
if [[ -n ${CONFORMANCE_EXAMPLES:-} ]]; then
    st_args+=(--max-examples "$CONFORMANCE_EXAMPLES")
fi
if [[ -n ${CONFORMANCE_SEED:-} ]]; then
    st_args+=(--seed "$CONFORMANCE_SEED")
fi
echo "== schemathesis ($("$st" --version 2>/dev/null | head -1))"
st_status=0
(
    cd "$work" # its caches and databases stay out of the tree
    export DFLOCKD_TOKEN=$token DFLOCKD_SESSION=$session
    export SCHEMATHESIS_HOOKS=$here/http-conformance/hooks.py
    "$st" "${st_args[@]}"
) >"$work/schemathesis.txt" 2>&1 || st_status=$?
cat "$work/schemathesis.txt"
[[ $st_status -eq 0 ]] || fail "schemathesis exited $st_status"
grep -q "^Test cases:" "$work/schemathesis.txt" || fail "schemathesis ran no tests"
kill -0 "$server_pid" 2>/dev/null || fail "the server died during schemathesis"

# ---- 2. load, scraped into promtool -------------------------------------------
echo "== load and promtool ($("$promtool" --version 2>&1 | head -1))"
# dflock-load exits non-zero on any error or timeout.
"$load_bin" --server "127.0.0.1:$tcp_port" --auth-token "$token" -c 8 -d 6 \
    --key-prefix conformance lock >"$work/load-lock.txt" 2>&1 &
load_pids=($!)
"$load_bin" --server "127.0.0.1:$tcp_port" --auth-token "$token" -c 4 -d 6 \
    --key-prefix conformance-kv kv >"$work/load-kv.txt" 2>&1 &
load_pids+=($!)
bg_pids+=("${load_pids[@]}")

# HTTP traffic: session life cycle, locks, KV, lists, signals, and the error
# paths that label metrics differently (401, 404, 405, OPTIONS, HEAD).
http_load() {
    local deadline=$((SECONDS + 6)) sid tok i=0
    local post=(curl -sS -o /dev/null -X POST "${auth[@]}" -H 'Content-Type: application/json')
    while ((SECONDS < deadline)); do
        i=$((i + 1))
        sid=$(curl -sS -X POST "${auth[@]}" "$url/v1/sessions" | jq -r .session_id)
        tok=$(curl -sS -X POST "${auth[@]}" -H "X-Dflockd-Session: $sid" \
            -d '{"acquire_timeout_s":1,"lease_ttl_s":10}' "$url/v1/locks/http-load-$((i % 4))" |
            jq -r '.token // empty')
        if [[ -n $tok ]]; then
            "${post[@]}" -H "X-Dflockd-Session: $sid" -d "{\"token\":\"$tok\"}" \
                "$url/v1/locks/http-load-$((i % 4))/renew"
            "${post[@]}" -H "X-Dflockd-Session: $sid" -d "{\"token\":\"$tok\"}" \
                "$url/v1/locks/http-load-$((i % 4))/release"
        fi
        "${post[@]}" -d "{\"value\":\"v$i\",\"ttl_s\":30}" "$url/v1/kv/http-load"
        curl -sS -o /dev/null "${auth[@]}" "$url/v1/kv/http-load"
        "${post[@]}" -d '{"delta":1}' "$url/v1/counters/http-load/incr"
        "${post[@]}" -d "{\"value\":\"item $i\"}" "$url/v1/lists/http-load/rpush"
        "${post[@]}" "$url/v1/lists/http-load/lpop"
        "${post[@]}" -d "{\"payload\":\"tick $i\"}" "$url/v1/signals/conformance.tick"
        curl -sS -o /dev/null "$url/v1/stats" # 401
        curl -sS -o /dev/null "${auth[@]}" "$url/v1/no-such-path"
        curl -sS -o /dev/null -X PUT "${auth[@]}" "$url/v1/kv/http-load"
        curl -sS -o /dev/null -X OPTIONS "${auth[@]}" "$url/v1/kv/http-load"
        curl -sS -o /dev/null -I "$url/health"
        curl -sS -o /dev/null -X DELETE "${auth[@]}" "$url/v1/sessions/$sid"
    done
}
http_load >"$work/http-load.txt" 2>&1 &
bg_pids+=($!)
# SSE streams (ended by --max-time) and a long-poll that times out.
curl -sS -N --max-time 7 "${auth[@]}" "$url/v1/signals?pattern=conformance.*" \
    >"$work/sse-signals.txt" 2>&1 &
bg_pids+=($!)
curl -sS -N --max-time 7 "${auth[@]}" "$url/v1/watch?pattern=http-load" \
    >"$work/sse-watch.txt" 2>&1 &
bg_pids+=($!)
curl -sS -o /dev/null -X POST "${auth[@]}" -d '{"timeout_s":2}' \
    "$url/v1/lists/conformance-empty/blpop" &
bg_pids+=($!)

for n in 1 2 3; do
    sleep 1.5
    scrape=$work/metrics-$n.txt
    curl -fsS "${auth[@]}" "$url/metrics" -o "$scrape" || fail "GET /metrics"
    # promtool exits non-zero on format errors and lint problems (naming,
    # HELP); any output at all counts as a failure too.
    if ! lint=$("$promtool" check metrics <"$scrape" 2>&1) || [[ -n $lint ]]; then
        echo "$lint" >&2
        fail "promtool check metrics on scrape $n ($scrape)"
    fi
    echo "scrape $n: $(grep -vc '^#' "$scrape") samples, promtool clean"
done

for p in "${load_pids[@]}"; do
    wait "$p" || { cat "$work"/load-*.txt >&2; fail "dflock-load failed"; }
done
for p in "${bg_pids[@]}"; do
    wait "$p" 2>/dev/null || true
done
bg_pids=()
grep -q '^:ok' "$work/sse-signals.txt" || fail "the signal stream did not start with :ok"
grep -q '^event: sig' "$work/sse-signals.txt" || fail "the signal stream got no event"
grep -q '^event: watch' "$work/sse-watch.txt" || fail "the watch stream got no event"

# ---- 3. no 5xx, by the server's own count; §9 labels of unrouted requests -------
curl -fsS "${auth[@]}" "$url/metrics" -o "$work/metrics-final.txt" || fail "GET /metrics"
if grep -E '^dflockd_http_requests_total\{.*status="5[0-9][0-9]"' "$work/metrics-final.txt"; then
    fail "the server answered 5xx (above)"
fi
# OPTIONS and 405 are counted under the path's template and the request's
# method, and the delayed 401 is counted too (the load above sent each).
for sample in \
    'method="OPTIONS",path="/v1/kv/{key}",status="204"' \
    'method="OTHER",path="/v1/kv/{key}",status="405"' \
    'method="GET",path="/v1/stats",status="401"' \
    'method="GET",path="unmatched",status="404"'; do
    grep -qF "dflockd_http_requests_total{$sample}" "$work/metrics-final.txt" ||
        fail "no dflockd_http_requests_total{$sample} in /metrics"
done
allow=$(curl -fsS -o /dev/null -D - -X OPTIONS "${auth[@]}" "$url/v1/kv/x" | tr -d '\r' | sed -n 's/^Allow: //Ip')
[[ $allow == "GET, HEAD, POST, DELETE, OPTIONS" ]] || fail "OPTIONS /v1/kv/x: Allow: $allow"
kill -0 "$server_pid" 2>/dev/null || fail "the server died"

status=0
echo "== http conformance: OK"
