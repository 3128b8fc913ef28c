#!/usr/bin/env bash
# One side-by-side sitting of our engine and several peers' llama-bench on the same model files,
# interleaved: for each file and round, every engine once, the order turned by one each round (so no
# engine always runs first or last). Then table.py prints ours against each peer.
#
#   reports/comparisons/run_peers.sh -o OUTDIR [-r ROUNDS] [-a "ARGS FOR ALL"] [-h "OUR ARGS"] \
#       -p NAME=PATH[:ARGS] [-p ...] MODEL.gguf [MODEL.gguf ...]
#
#   -o  folder for the raw JSON, stderr, the machine's load and the table       (required, created)
#   -r  interleaved rounds per file (default 2)
#   -a  arguments every engine takes the same way (default "-p 512 -n 128 -r 3 -t 2")
#   -h  arguments only ours takes (e.g. "--repack off")
#   -p  a peer: a name, its llama-bench, and arguments only it takes, e.g.
#       -p "ik=/w/ik/build/bin/llama-bench:-rtr 1" -p "llama.cpp=/w/llama.cpp/build/bin/llama-bench"
#   HARNESS: the harness command (default: harness on PATH)
#
# Files written: <engine>-<model>-<round>.json / .err (ours: "ours"), load.txt (the load average and
# the busiest processes before each run), command.txt, and table.txt (table.py).
set -euo pipefail

usage() {
    {
        echo "usage: $(basename "$0") -o OUTDIR [-r ROUNDS] [-a ARGS] [-h OUR_ARGS] -p NAME=PATH[:ARGS] ... MODEL.gguf ..."
        sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    } >&2
    exit 2
}

out="" rounds=2 both="-p 512 -n 128 -r 3 -t 2" ours_only="" peers=()
while getopts "o:r:a:h:p:" opt; do
    case $opt in
        o) out=$OPTARG ;;
        r) rounds=$OPTARG ;;
        a) both=$OPTARG ;;
        h) ours_only=$OPTARG ;;
        p) peers+=("$OPTARG") ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
harness=${HARNESS:-harness}
here=$(cd "$(dirname "$0")" && pwd)

[ -n "$out" ] && [ $# -ge 1 ] || usage
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "run_peers.sh: -r must be a positive integer, got '$rounds'" >&2; exit 2; }
names=(ours) paths=("") extras=("$ours_only")
for p in "${peers[@]}"; do
    [[ "$p" == *=* ]] || { echo "run_peers.sh: -p wants NAME=PATH[:ARGS], got '$p'" >&2; exit 2; }
    name=${p%%=*} rest=${p#*=}
    path=${rest%%:*} args=""
    [[ "$rest" == *:* ]] && args=${rest#*:}
    [ -x "$path" ] || { echo "run_peers.sh: $path is not an executable llama-bench" >&2; exit 1; }
    names+=("$name") paths+=("$path") extras+=("$args")
done
for m in "$@"; do
    [ -f "$m" ] || { echo "run_peers.sh: no such model file: $m" >&2; exit 1; }
done
mkdir -p "$out"

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "all engines: $both"
    for i in "${!names[@]}"; do echo "${names[$i]}: ${paths[$i]:-$harness bench} ${extras[$i]}"; done
    echo "rounds: $rounds"
    echo "models: $*"
    echo "harness: $($harness --version 2>/dev/null || echo "$harness")"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs"
} > "$out/command.txt"

snapshot() {   # the machine's load before each run: a sitting on a busy machine says so
    {
        echo "== $1 $(date -u +%H:%M:%S) $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
        ps -eo pcpu,comm --sort=-pcpu 2>/dev/null | sed -n '2,4p'
    } >> "$out/load.txt"
}

n=${#names[@]}
for m in "$@"; do
    model=$(basename "$m" .gguf)
    for round in $(seq 1 "$rounds"); do
        for k in $(seq 0 $((n - 1))); do
            i=$(( (k + round - 1) % n ))
            name=${names[$i]}
            snapshot "$name $model round $round"
            dest="$out/$name-$model-$round"
            # shellcheck disable=SC2086  # the argument strings are split into words on purpose
            if [ "$name" = ours ]; then
                $harness bench "$m" $both ${extras[$i]} -o json > "$dest.json" 2> "$dest.err"
            else
                "${paths[$i]}" -m "$m" $both ${extras[$i]} -o json > "$dest.json" 2> "$dest.err"
            fi
        done
    done
done
snapshot "end"
python "$here/table.py" "$out" | tee "$out/table.txt"
