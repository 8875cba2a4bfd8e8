# lib.sh: plumbing shared by bench scripts that source it (hostile.sh,
# tls.sh). Not run on its own.
#
#   bench_workdir NAME   makes WORK, a temporary directory, and PIDS, the
#                        processes to stop: on exit every pid in PIDS gets
#                        SIGTERM and WORK is removed
#   need NAME TOOL...    exits 2 with "NAME: TOOL not found" for the first
#                        TOOL that is neither on PATH nor an executable path

bench_workdir() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/dflockd-$1.XXXXXX")
    PIDS=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}

need() {
    local name=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$name: $tool not found" >&2; exit 2; }
    done
}
