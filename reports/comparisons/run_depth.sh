#!/usr/bin/env bash
# pp and tg at context depths (llama-bench -d): ours against llama.cpp's flash-attention configuration
# (-fa 1), the same KV cache type on both sides, interleaved: for each round, cache type and depth,
# both engines once, the order turned each round. Then a table of ours against llama.cpp.
#
#   reports/comparisons/run_depth.sh -o OUTDIR -l LLAMA_BENCH [-r ROUNDS] [-c "f16 q8_0"] \
#       [-a "ARGS FOR BOTH"] MODEL.gguf DEPTH [DEPTH ...]
#
#   -o  folder for the raw JSON, stderr, the machine's load and the table       (required, created)
#   -l  llama.cpp's llama-bench                                                 (required)
#   -r  interleaved rounds (default 1)
#   -c  KV cache types, each for both K and V (default "f16")
#   -a  arguments both engines take the same way (default "-p 512 -n 128 -r 1 -t 2")
#   HARNESS: the harness command (default: harness on PATH)
#
# Files written: <engine>-<cache>-d<depth>-<round>.json / .err, load.txt (the load average before each
# run), command.txt (each call appended), and table.txt (medians over the rounds of every cell there).
set -euo pipefail

usage() {
    {
        echo "usage: $(basename "$0") -o OUTDIR -l LLAMA_BENCH [-r ROUNDS] [-c CACHES] [-a ARGS] MODEL.gguf DEPTH ..."
        sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    } >&2
    exit 2
}

command=$(printf '%q ' "$0" "$@")
out="" lb="" rounds=1 caches="f16" both="-p 512 -n 128 -r 1 -t 2"
while getopts "o:l:r:c:a:" opt; do
    case $opt in
        o) out=$OPTARG ;;
        l) lb=$OPTARG ;;
        r) rounds=$OPTARG ;;
        c) caches=$OPTARG ;;
        a) both=$OPTARG ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
[[ -n $out && -n $lb && $# -ge 2 ]] || usage
[[ -x $lb ]] || { echo "$(basename "$0"): $lb is not an executable llama-bench" >&2; exit 1; }
model=$1
shift
[[ -f $model ]] || { echo "$(basename "$0"): no model file $model" >&2; exit 1; }
harness=${HARNESS:-harness}
mkdir -p "$out"
{ # appended: several calls may fill one folder
    echo "$command"
    echo "# $(date -u +%FT%TZ) model $model, rounds $rounds, caches $caches, args $both, depths $*"
} >> "$out/command.txt"

run() { # engine cache depth round
    local f="$out/$1-$2-d$3-$4"
    echo "== $1 $2 d$3 round $4 $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/load.txt"
    if [[ $1 == ours ]]; then
        # shellcheck disable=SC2086
        $harness bench "$model" $both -d "$3" -ctk "$2" -ctv "$2" -o json > "$f.json" 2> "$f.err"
    else
        # shellcheck disable=SC2086
        "$lb" -m "$model" $both -d "$3" -fa 1 -ctk "$2" -ctv "$2" -o json > "$f.json" 2> "$f.err"
    fi
}

for ((round = 1; round <= rounds; round++)); do
    for cache in $caches; do
        for d in "$@"; do
            if ((round % 2)); then run ours "$cache" "$d" "$round"; run llama.cpp "$cache" "$d" "$round"
            else run llama.cpp "$cache" "$d" "$round"; run ours "$cache" "$d" "$round"; fi
        done
    done
done
echo "== end $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/load.txt"

python3 - "$out" <<'PY' | tee "$out/table.txt"
import glob, json, os, statistics, sys
cells = {}
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*-d*-*.json"))):
    engine, cache, depth, _ = os.path.basename(f)[:-5].rsplit("-", 3)
    for r in json.load(open(f)):
        test = f"pp{r['n_prompt']}" if r["n_prompt"] else f"tg{r['n_gen']}"
        cells.setdefault((cache, int(depth[1:]), test), {}).setdefault(engine, []).append(r["avg_ts"])
print("| KV cache | depth | test | ours t/s | llama.cpp -fa 1 t/s | ours / llama.cpp | samples |")
print("|---|---:|---|---:|---:|---:|---:|")
for (cache, depth, test), v in sorted(cells.items()):
    o, l = v.get("ours"), v.get("llama.cpp")
    if o and l:
        mo, ml = statistics.median(o), statistics.median(l)
        print(f"| {cache} | {depth} | {test} | {mo:.2f} | {ml:.2f} | {mo / ml:.2f} | {len(o)} / {len(l)} |")
    else:
        print(f"| {cache} | {depth} | {test} | {o} | {l} | - | - |")
PY
