#!/usr/bin/env bash
# One side-by-side sitting: a peer's llama-bench and `harness bench` on the same model files,
# interleaved (for each file and round: the peer, then ours), in one sitting, then one table of
# ours / the peer per file and test from `harness compare` (samples of all rounds pooled).
#
#   reports/comparisons/run_sitting.sh -b PATH/TO/llama-bench -o OUTDIR [-r ROUNDS] \
#       [-a "ARGS FOR BOTH"] [-x "ARGS FOR THE PEER ONLY"] MODEL.gguf [MODEL.gguf ...]
#
#   -b  the peer's llama-bench binary (llama.cpp, ik_llama.cpp, ...)          (required)
#   -o  folder for the raw JSON, stderr, the machine's load and table.txt     (required, created)
#   -r  interleaved rounds per file (default 2)
#   -a  arguments both tools take the same way (default "-p 512 -n 128 -r 3 -t 2")
#   -x  arguments only the peer takes, e.g. "-rtr 1" for ik_llama.cpp's run-time repacking
#   HARNESS: the harness command (default: harness on PATH)
#
# Files written: peer-<model>-<round>.json / .err, ours-<model>-<round>.json / .err, load.txt
# (uptime and the busiest processes before each run), command.txt and table.txt.
set -euo pipefail

usage() {
    {
        echo "usage: $(basename "$0") -b LLAMA_BENCH -o OUTDIR [-r ROUNDS] [-a ARGS] [-x PEER_ARGS] MODEL.gguf ..."
        sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    } >&2
    exit 2
}

peer="" out="" rounds=2 both="-p 512 -n 128 -r 3 -t 2" peer_only=""
while getopts "b:o:r:a:x:h" opt; do
    case $opt in
        b) peer=$OPTARG ;;
        o) out=$OPTARG ;;
        r) rounds=$OPTARG ;;
        a) both=$OPTARG ;;
        x) peer_only=$OPTARG ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
harness=${HARNESS:-harness}

[ -n "$peer" ] && [ -n "$out" ] && [ $# -ge 1 ] || usage
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "run_sitting.sh: -r must be a positive integer, got '$rounds'" >&2; exit 2; }
[ -x "$peer" ] || { echo "run_sitting.sh: $peer is not an executable llama-bench" >&2; exit 1; }
for m in "$@"; do
    [ -f "$m" ] || { echo "run_sitting.sh: no such model file: $m" >&2; exit 1; }
done
mkdir -p "$out"

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "peer: $peer $peer_only"
    echo "both: $both"
    echo "rounds: $rounds"
    echo "models: $*"
    echo "harness: $($harness --version 2>/dev/null || echo "$harness")"
} > "$out/command.txt"

snapshot() {   # the machine's load before each run: a sitting on a busy machine says so
    {
        echo "== $1 $(date -u +%H:%M:%S) $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
        ps -eo pcpu,comm --sort=-pcpu 2>/dev/null | sed -n '2,4p'
    } >> "$out/load.txt"
}

peer_files=() our_files=()
for m in "$@"; do
    name=$(basename "$m" .gguf)
    for round in $(seq 1 "$rounds"); do
        snapshot "peer $name round $round"
        # shellcheck disable=SC2086  # the argument strings are split into words on purpose
        "$peer" -m "$m" $both $peer_only -o json > "$out/peer-$name-$round.json" 2> "$out/peer-$name-$round.err"
        snapshot "ours $name round $round"
        # shellcheck disable=SC2086
        $harness bench "$m" $both -o json > "$out/ours-$name-$round.json" 2> "$out/ours-$name-$round.err"
        peer_files+=("$out/peer-$name-$round.json")
        our_files+=("$out/ours-$name-$round.json")
    done
done

join() { local IFS=,; echo "$*"; }
status=0
$harness compare "$(join "${peer_files[@]}")" "$(join "${our_files[@]}")" --threshold 0% > "$out/table.txt" || status=$?
cat "$out/table.txt"
# compare exits 1 when ours is slower somewhere: a finding of the sitting, not a failure of the script
[ "$status" -le 1 ] || exit "$status"
