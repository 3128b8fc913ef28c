#!/usr/bin/env bash
# pp512 and tg128 at context depths, ours against llama.cpp's flash-attention configuration, both with
# an F16 KV cache, one engine after the other per depth (ours first), one repetition each:
#   LB=PATH/TO/llama-bench reports/comparisons/2026-12-06-depth/run.sh MODEL.gguf [DEPTH ...]
# Writes ours-<depth>.json, llama.cpp-<depth>.json (+ .err) and load.txt beside this script.
set -euo pipefail
LB=${LB:?set LB to the llama-bench of llama.cpp}
m=${1:?usage: run.sh MODEL.gguf [DEPTH ...]}
shift
depths=("${@:-4096 16384}")
out=$(cd "$(dirname "$0")" && pwd)
for d in ${depths[*]}; do
    echo "== ours d$d $(date -u +%H:%M:%S) $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/load.txt"
    harness bench "$m" -p 512 -n 128 -r 1 -t 2 -d "$d" -ctk f16 -ctv f16 -o json > "$out/ours-$d.json" 2> "$out/ours-$d.err"
    echo "== llama.cpp d$d $(date -u +%H:%M:%S) $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/load.txt"
    "$LB" -m "$m" -p 512 -n 128 -r 1 -t 2 -d "$d" -fa 1 -ctk f16 -ctv f16 -o json > "$out/llama.cpp-$d.json" 2> "$out/llama.cpp-$d.err"
done
echo "== end $(date -u +%H:%M:%S) $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/load.txt"
python - "$out" <<'PY' | tee "$out/table.txt"
import json, sys, glob, os
rows = {}
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*-*.json"))):
    eng, d = os.path.basename(f)[:-5].rsplit("-", 1)
    for r in json.load(open(f)):
        t = f"pp{r['n_prompt']}" if r["n_prompt"] else f"tg{r['n_gen']}"
        rows.setdefault((int(d), t), {})[eng] = r["avg_ts"]
print("| depth | test | ours t/s | llama.cpp -fa 1 t/s | ours / llama.cpp |")
print("|---:|---|---:|---:|---:|")
for (d, t), v in sorted(rows.items()):
    o, l = v.get("ours"), v.get("llama.cpp")
    print(f"| {d} | {t} | {o:.2f} | {l:.2f} | {o / l:.2f} |" if o and l else f"| {d} | {t} | {o} | {l} | - |")
PY
